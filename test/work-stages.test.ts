/**
 * An exception from the work (data, model, loss, gradients, optimizer, cleanup) names the
 * stage where that work runs — read from the machine's own definition (`workStages`), not from
 * a table in the driver. The expected stages are docs/loop.md's: each stage's own work runs at
 * its entry, the step on backwardEnd → stepEnd, zeroing on stepEnd → batchEnd, the loss of a
 * train batch at backwardBegin and of a validation batch at batchEnd; cleanup leaving batchEnd
 * and at trainEnd. A machine that places a piece of work elsewhere gets its errors named there.
 */
import { describe, expect, it } from 'vitest';
import { describeMachine, workKey, workStages } from '../machines/describe.js';
import { trainLoopMachine } from '../machines/trainLoop.js';
import { WORK_NAMES, WORK_PHASE } from '../machines/work.js';
import { StageError } from '../src/errors.js';
import { HookTable } from '../src/loop/hookTable.js';
import { runLoop } from '../src/loop/runLoop.js';
import { FakeEngine, type Faultable } from './support/fakeEngine.js';
import { mutant, node } from './support/machineMutants.js';
import { bareContext } from './support/orderProperties.js';

async function failing(method: Faultable, call = 1, machine = trainLoopMachine) {
  const engine = new FakeEngine({ method, call });
  const result = await runLoop({
    engine,
    table: new HookTable([]),
    ctx: bareContext(1, 1),
    input: { nEpochs: 1, nTrainBatches: 1, nValidBatches: 1, validate: true },
    machine,
  });
  expect(result.status).toBe('failed');
  return result.error as StageError;
}

describe('work errors name the stage the machine runs that work at', () => {
  for (const [method, stage, phase, call] of [
    ['orderEpoch', 'epochBegin', 'data order', 1],
    ['loadBatch', 'batchBegin', 'data', 1],
    ['forward', 'lossBegin', 'forward pass (model)', 1],
    ['computeLoss', 'backwardBegin', 'loss', 1],
    ['keepLoss', 'backwardBegin', 'loss', 1],
    ['accumulateGradients', 'backwardEnd', 'gradients', 1],
    ['step', 'stepEnd', 'optimizer step', 1],
    ['zeroGradients', 'batchEnd', 'gradients', 1],
    ['releaseBatch', 'batchEnd', 'cleanup', 1],
    // The second loss is the validation batch's, computed as its batchEnd is entered.
    ['computeLoss', 'batchEnd', 'loss', 2],
    ['keepLoss', 'batchEnd', 'loss', 2],
    ['finalizeMetrics', 'validateEnd', 'metrics', 1],
    ['releaseRun', 'trainEnd', 'cleanup', 1],
  ] as const) {
    it(`${method}${call > 1 ? ` (call ${call})` : ''} → ${stage} (${phase})`, async () => {
      const err = await failing(method, call);
      expect(err).toBeInstanceOf(StageError);
      expect(err.callback).toBeNull();
      expect([err.stage, err.phase]).toEqual([stage, phase]);
      expect(err.message).toContain(`stage ${stage} (${phase})`);
    });
  }

  it('a machine that runs the forward pass at batchBegin gets its forward errors named batchBegin', async () => {
    const early = mutant((c) => {
      const b = node(c, 'epoch.train.batchBegin');
      const l = node(c, 'epoch.train.lossBegin');
      b.entry = ['loadBatch', 'forward', ...b.entry!.slice(1)];
      l.entry = l.entry!.filter((a) => a !== 'forward');
    });
    expect((await failing('forward', 1, early)).stage).toBe('batchBegin');
  });

  it('every piece of work the machine names has a phase label, and every labelled one runs somewhere', () => {
    const places = workStages(describeMachine(trainLoopMachine));
    const placed = new Set([...places.keys()].map((k) => k.split(':')[0]));
    // runJumpToEpoch runs in `jump`, restoreRun in `resume`: no stages; their errors name trainBegin (contract §1, §6).
    expect(WORK_NAMES.filter((w) => !placed.has(w))).toEqual(['runJumpToEpoch', 'restoreRun']);
    for (const w of WORK_NAMES) expect(typeof WORK_PHASE[w]).toBe('string');
    expect(places.get(workKey('computeLoss', true))).toBe('backwardBegin');
    expect(places.get(workKey('computeLoss', false))).toBe('batchEnd');
  });
});
