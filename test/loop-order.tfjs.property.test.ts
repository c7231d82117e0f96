/**
 * The same event-order property with real tensors: random scenarios (1–3 epochs, 1–3 train
 * and 0–2 validation batches, 0–4 callbacks with random controls, guards, throws and learn.stop() calls) run by
 * `Learner.fit` on a tiny tfjs model (cpu backend), judged by the same oracle. In half the
 * scenarios the work itself throws at its n-th call: the model's forward pass (a layer of
 * the model), the loss function or the optimizer's step. With real tensors two more things
 * are checked: the weights change in exactly the train batches where the rules say a step is
 * applied, and on every run — failed ones included — every tensor the loop made is gone
 * afterwards (only the optimizer's slots remain).
 *
 * Replay a failure with FC_SEED / FC_PATH, as for test/loop-order.property.test.ts (README).
 */
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { Callback } from '../src/loop/callback.js';
import { Learner } from '../src/learner.js';
import { categoricalCrossentropy } from '../src/losses.js';
import type { TrainContext } from '../src/loop/context.js';
import { createOptimizer, type Optimizer } from '../src/optim/optimizer.js';
import { configOf, fcParameters, ScenarioCallback, scenarioArbitrary, type Scenario } from './support/orderProperties.js';
import { checkTrace, type GuardCall, type HookCall, type WorkFault } from './support/traceChecker.js';
import { tinyProblem } from './support/tracing.js';

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

/** The work that may throw: the model's forward pass, the loss, the optimizer's step. */
type WorkSite = 'forward' | 'loss' | 'step';

/** Throw from the `call`-th call (1-based) of the work at `site`. */
interface WorkFaultPlan {
  site: WorkSite;
  call: number;
}

/**
 * Counts the calls of each piece of work and throws at the planned one. The forward pass and
 * the loss call it after making their tensor, so a failure path that forgets to free what the
 * work made shows as a leak; the step calls it before touching anything (what a failing
 * optimizer made is the optimizer's to free). Records where in the trace the exception fell,
 * as the oracle needs.
 */
class WorkFaults {
  readonly calls: Record<WorkSite, number> = { forward: 0, loss: 0, step: 0 };
  fired: WorkFault | null = null;
  constructor(
    private readonly plan: WorkFaultPlan | null,
    private readonly hookCalls: () => number,
  ) {}

  hit(site: WorkSite): void {
    const n = ++this.calls[site];
    if (this.plan?.site !== site || this.plan.call !== n || this.fired) return;
    const error = new Error(`${site} failed (call ${n})`);
    this.fired = { afterCalls: this.hookCalls(), error };
    throw error;
  }
}

/** An identity layer between the model's two dense layers: the forward pass runs through it. */
class FaultyIdentity extends tf.layers.Layer {
  static className = 'FaultyIdentity';
  constructor(private readonly faults: WorkFaults) {
    super({});
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    const y = tf.mul(x, 1);
    this.faults.hit('forward');
    return y;
  }
  override computeOutputShape(shape: tf.Shape | tf.Shape[]) {
    return shape;
  }
}

/** tinyModel's architecture and initial weights, with the faulty identity layer in the middle. */
function faultyModel(faults: WorkFaults, seed = 7) {
  return tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [4], units: 5, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
      new FaultyIdentity(faults),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }),
    ],
  });
}

/** The optimizer, with its step going through the fault plan first (before any variable changes). */
function faultyOptimizer(inner: Optimizer, faults: WorkFaults): Optimizer {
  return {
    get kind() {
      return inner.kind;
    },
    get hp() {
      return inner.hp;
    },
    step(params, grads, names) {
      faults.hit('step');
      inner.step(params, grads, names);
    },
    bind: (names) => inner.bind(names),
    getState: () => inner.getState(),
    setState: (state) => inner.setState(state),
    get numTensors() {
      return inner.numTensors;
    },
    dispose: () => inner.dispose(),
  };
}

// Call numbers up to 4 reach every site in most runs (a run has at most 15 forward passes
// and losses and 9 steps), yet also fall past the end of short ones, which then run clean.
const workFaultArb: fc.Arbitrary<WorkFaultPlan | null> = fc.option(
  fc.record({ site: fc.constantFrom<WorkSite>('forward', 'loss', 'step'), call: fc.integer({ min: 1, max: 4 }) }),
  { nil: null, freq: 2 },
);

const tfjsScenario = fc.record({
  // The fake engine's faults are for the tensor-free suite; here the real work throws instead.
  scenario: scenarioArbitrary({ epochs: [1, 3], trainBatches: [1, 3], validBatches: [0, 2], maxCallbacks: 4, workFaults: false, stops: true }),
  optimizer: fc.constantFrom('sgd' as const, 'adam' as const),
  workFault: workFaultArb,
});

/** The oracle's complaints about one run, and where (if anywhere) the work failed. */
async function violationsOf(s: Scenario, optimizer: 'sgd' | 'adam', workFault: WorkFaultPlan | null): Promise<{ violations: string[]; failedIn: WorkSite | null }> {
  const trace: HookCall[] = [];
  const guardCalls: GuardCall[] = [];
  const callbacks = s.callbacks.map((spec) => new ScenarioCallback(spec, trace, guardCalls as never));
  const watch = new WeightWatch();
  const faults = new WorkFaults(workFault, () => trace.length);
  // Learner needs samples: batches of 2; no validation loader when the scenario has no validation batches.
  const nValid = s.validate ? s.nValid : 0;
  const { train, valid } = tinyProblem(2 * s.nTrain, 2 * nValid, 2);
  const tensorsBefore = tf.memory().numTensors;
  const model = faultyModel(faults);
  const opt = faultyOptimizer(createOptimizer(optimizer), faults);
  const loss = (yPred: tf.Tensor, yTrue: tf.Tensor) => {
    const value = categoricalCrossentropy(yPred, yTrue);
    faults.hit('loss');
    return value;
  };
  const learn = new Learner({ model, data: { train, valid }, loss, optimizer: opt, metrics: ['accuracy'], callbacks: [...callbacks, watch], recorder: false });
  const modelTensors = tf.memory().numTensors - tensorsBefore;
  let outcome: { status: string; error: unknown };
  try {
    const result = await learn.fit(s.nEpochs);
    outcome = { status: result.status, error: null };
  } catch (e) {
    outcome = { status: 'failed', error: e };
  }
  const config = { ...configOf(s), nValid, validate: nValid > 0 };
  const { violations, batches } = checkTrace({ trace, config, outcome, guardCalls, workFault: faults.fired });
  for (const b of batches) {
    const key = `e${b.epoch}b${b.batchIndex}`;
    const [before, after] = [watch.before.get(key), watch.after.get(key)];
    if (!before || !after) continue; // a hook before the watch threw in that stage
    const changed = before.some((w, i) => w.some((x, j) => x !== after[i]![j]));
    if (changed !== (b.stepWith !== null)) {
      violations.push(`§3 weights ${changed ? 'changed' : 'did not change'} in train batch ${key}, where the rules say ${b.stepWith ? `a step with [${b.stepWith.join(', ')}]` : 'no step'}`);
    }
  }
  // A run nobody read holds its losses for its smoothed loss (one tensor) until asked: ask.
  learn.smoothLossState();
  const leaked = tf.memory().numTensors - tensorsBefore - modelTensors - learn.optimizer.numTensors;
  const how = faults.fired ? `failed in the ${workFault!.site}` : outcome.status;
  if (leaked !== 0) violations.push(`§4 ${leaked} tensor(s) made by the loop outlived the run (${how})`);
  learn.optimizer.dispose();
  model.dispose();
  return { violations, failedIn: faults.fired ? workFault!.site : null };
}

type TfjsCase = { scenario: Scenario; optimizer: 'sgd' | 'adam'; workFault: WorkFaultPlan | null };

describe('the loop keeps the contract with a real tfjs model (fast-check)', () => {
  it('trace, weight changes and tensor memory on random runs of Learner.fit, the work failing in half of them (80 runs)', async () => {
    await fc.assert(
      fc.asyncProperty(tfjsScenario, async ({ scenario, optimizer, workFault }) => {
        const { violations } = await violationsOf(scenario, optimizer, workFault);
        if (violations.length) throw new Error(`${violations.length} violation(s):\n  - ${violations.join('\n  - ')}`);
      }),
      fcParameters<[TfjsCase]>(80),
    );
  });

  it('the random runs do make the forward pass, the loss and the step fail, so the property above covers failed runs', async () => {
    // A fixed sample, so the count is the same on every run of the suite.
    const failedIn: Record<WorkSite, number> = { forward: 0, loss: 0, step: 0 };
    for (const { scenario, optimizer, workFault } of fc.sample(tfjsScenario, { numRuns: 60, seed: 42 })) {
      const r = await violationsOf(scenario, optimizer, workFault);
      expect(r.violations).toEqual([]);
      if (r.failedIn) failedIn[r.failedIn] += 1;
    }
    for (const [site, n] of Object.entries(failedIn)) expect(n, `runs that failed in the ${site}: ${n} of 60`).toBeGreaterThanOrEqual(3);
  });
});
