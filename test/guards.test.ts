import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import { stagesOf, tinyLearner, TraceCallback, TRAIN_BATCH, VALID_BATCH, type TraceEntry } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** The README's guard-based stopping callback: stops once the smoothed loss is low enough. */
class StopAfterIterations extends Callback {
  constructor(readonly limit: number) {
    super();
    this.guards = { stopTraining: (ctx: TrainContext) => ctx.iteration + 1 >= this.limit && ctx.stage === 'batchEnd' };
  }
}

describe('callback guards (contract §3)', () => {
  it('a guard forces stopTraining as the stage is left: same effect as the control', async () => {
    const trace: TraceEntry[] = [];
    const learn = tinyLearner([new TraceCallback('t', trace), new StopAfterIterations(2)]);
    const result = await learn.fit(3);
    expect(result.status).toBe('stopped');
    expect(result.iterations).toBe(2);
    expect(stagesOf(trace, 't')).toEqual([
      'trainBegin',
      'epochBegin',
      ...TRAIN_BATCH,
      ...TRAIN_BATCH,
      'validateBegin(valid)',
      ...VALID_BATCH,
      ...VALID_BATCH,
      'validateEnd(valid)',
      'epochEnd',
      'trainEnd',
    ]);
  });

  it('a stopEpoch guard is evaluated only where stopEpoch may come from, and resets each epoch', async () => {
    const stagesSeen = new Set<string>();
    const cb = new TraceCallback('t', []);
    cb.guards = {
      stopEpoch: (ctx) => {
        stagesSeen.add(`${ctx.stage}${ctx.train ? '' : '(valid)'}`);
        return ctx.stage === 'batchEnd' && ctx.batchIndex === 0;
      },
    };
    const trace: TraceEntry[] = [];
    const learn = tinyLearner([cb, new TraceCallback('r', trace)]);
    const result = await learn.fit(2);
    expect([...stagesSeen].sort()).toEqual(['backwardBegin', 'backwardEnd', 'batchBegin', 'batchEnd', 'epochBegin', 'lossBegin', 'stepEnd']);
    // one train batch per epoch, both epochs ran
    expect(trace.filter((e) => e.stage === 'batchBegin' && e.train)).toHaveLength(2);
    expect(result.status).toBe('completed');
  });

  it('a guard keyed by an unknown control is rejected when fit starts', async () => {
    // One instance per learner (a callback serves one learner at a time).
    const typo = () => {
      const cb = new TraceCallback('t', []);
      cb.guards = { stopTrainng: () => true } as never;
      return cb;
    };
    await expect(tinyLearner([typo()]).fit(1)).rejects.toThrow(ConfigError);
    await expect(tinyLearner([typo()]).fit(1)).rejects.toThrow(/unknown control "stopTrainng"/);
  });
});
