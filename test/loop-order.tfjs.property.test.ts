/**
 * The same event-order property with real tensors: random scenarios (1–3 epochs, 1–3 train
 * and 0–2 validation batches, 0–4 callbacks with random controls, guards and throws) run by
 * `Learner.fit` on a tiny tfjs model (cpu backend), judged by the same oracle. With real
 * tensors two more things are checked: the weights change in exactly the train batches where
 * the rules say a step is applied, and every tensor the loop made is gone afterwards (only
 * the optimizer's slots remain).
 *
 * Replay a failure with FC_SEED / FC_PATH, as for test/loop-order.property.test.ts (README).
 */
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { beforeAll, describe, it } from 'vitest';
import { Callback } from '../src/callback.js';
import { Learner } from '../src/learner.js';
import type { TrainContext } from '../src/loop/context.js';
import { configOf, fcParameters, ScenarioCallback, scenarioArbitrary, type Scenario } from './support/orderProperties.js';
import { checkTrace, type GuardCall, type HookCall } from './support/traceChecker.js';
import { tinyModel, tinyProblem } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Snapshots the weights as each train batch begins and ends (it runs last, and is not part of the trace). */
class WeightWatch extends Callback {
  override order = 1e9;
  readonly before = new Map<string, Float32Array[]>();
  readonly after = new Map<string, Float32Array[]>();
  private read() {
    return this.learn.params.map((p) => p.dataSync().slice() as Float32Array);
  }
  onBatchBegin(ctx: TrainContext) {
    if (ctx.train) this.before.set(`e${ctx.epoch}b${ctx.batchIndex}`, this.read());
  }
  onBatchEnd(ctx: TrainContext) {
    if (ctx.train) this.after.set(`e${ctx.epoch}b${ctx.batchIndex}`, this.read());
  }
}

const tfjsScenario = fc.record({
  scenario: scenarioArbitrary({ epochs: [1, 3], trainBatches: [1, 3], validBatches: [0, 2], maxCallbacks: 4, workFaults: false }),
  optimizer: fc.constantFrom('sgd' as const, 'adam' as const),
});

async function violationsOf(s: Scenario, optimizer: 'sgd' | 'adam'): Promise<string[]> {
  const trace: HookCall[] = [];
  const guardCalls: GuardCall[] = [];
  const callbacks = s.callbacks.map((spec) => new ScenarioCallback(spec, trace, guardCalls as never));
  const watch = new WeightWatch();
  // Learner needs samples: batches of 2; no validation loader when the scenario has no validation batches.
  const nValid = s.validate ? s.nValid : 0;
  const { train, valid } = tinyProblem(2 * s.nTrain, 2 * nValid, 2);
  const model = tinyModel();
  const learn = new Learner({ model, data: { train, valid }, loss: 'categoricalCrossentropy', optimizer, metrics: ['accuracy'], callbacks: [...callbacks, watch], recorder: false });
  const tensorsBefore = tf.memory().numTensors;
  let outcome: { status: string; error: unknown };
  try {
    const result = await learn.fit(s.nEpochs);
    outcome = { status: result.status, error: null };
  } catch (e) {
    outcome = { status: 'failed', error: e };
  }
  const config = { ...configOf(s), nValid, validate: nValid > 0 };
  const { violations, batches } = checkTrace({ trace, config, outcome, guardCalls });
  for (const b of batches) {
    const key = `e${b.epoch}b${b.batchIndex}`;
    const [before, after] = [watch.before.get(key), watch.after.get(key)];
    if (!before || !after) continue; // a hook before the watch threw in that stage
    const changed = before.some((w, i) => w.some((x, j) => x !== after[i]![j]));
    if (changed !== (b.stepWith !== null)) {
      violations.push(`§3 weights ${changed ? 'changed' : 'did not change'} in train batch ${key}, where the rules say ${b.stepWith ? `a step with [${b.stepWith.join(', ')}]` : 'no step'}`);
    }
  }
  const leaked = tf.memory().numTensors - tensorsBefore - learn.optimizer.numTensors;
  if (leaked !== 0) violations.push(`§4 ${leaked} tensor(s) made by the loop outlived the run (status ${outcome.status})`);
  learn.optimizer.dispose();
  model.dispose();
  return violations;
}

describe('the loop keeps the contract with a real tfjs model (fast-check)', () => {
  it('trace, weight changes and tensor memory on random runs of Learner.fit (50 runs)', async () => {
    await fc.assert(
      fc.asyncProperty(tfjsScenario, async ({ scenario, optimizer }) => {
        const violations = await violationsOf(scenario, optimizer);
        if (violations.length) throw new Error(`${violations.length} violation(s):\n  - ${violations.join('\n  - ')}`);
      }),
      fcParameters<[{ scenario: Scenario; optimizer: 'sgd' | 'adam' }]>(50),
    );
  });
});
