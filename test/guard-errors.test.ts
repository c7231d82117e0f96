/**
 * A guard is a predicate: it returns true or false. Anything else (1, 'yes', undefined, a
 * Promise) is a ControlError naming the callback, the stage and the control — never read as
 * "no". A guard that throws fails the run with a StageError that says it was a guard, naming
 * the guard's control (phase `guard <control>`), not a hook.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ControlError, StageError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import { stagesOf, tinyLearner, TraceCallback, type TraceEntry } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('guards return booleans; a guard that throws is reported as a guard', () => {
  for (const value of [1, 'yes', undefined, null, {}, Promise.resolve(true)]) {
    it(`a guard returning ${value instanceof Promise ? 'a Promise' : JSON.stringify(value) ?? 'undefined'}: ControlError naming callback, stage and control`, async () => {
      const trace: TraceEntry[] = [];
      const g = new TraceCallback('picky', trace);
      g.guards = { stopEpoch: (ctx: TrainContext) => (ctx.stage === 'batchEnd' && ctx.batchIndex === 1 ? value : false) as boolean };
      const learn = tinyLearner([g]);
      const before = tf.memory().numTensors;
      const err = (await learn.fit(1).catch((e: unknown) => e)) as ControlError;
      expect(err).toBeInstanceOf(ControlError);
      expect(err.code).toBe('CONTROL');
      expect(err.callback).toBe('picky');
      expect(err.stage).toBe('batchEnd');
      expect(err.key).toBe('stopEpoch');
      expect(err.message).toMatch(/guard stopEpoch of callback picky .*at batchEnd.*returned .*; a guard returns true or false/);
      // The run failed there: trainEnd ran next, and nothing leaked (the optimizer's momentum is state, not a leak).
      expect(stagesOf(trace, 'picky').slice(-2)).toEqual(['batchEnd', 'trainEnd']);
      expect(tf.memory().numTensors).toBe(before + learn.optimizer.numTensors);
    });
  }

  it('a guard that throws: StageError with phase "guard <control>", the message says guard', async () => {
    const boom = new Error('bad guard');
    const g = new TraceCallback('g', []);
    g.guards = {
      stopTraining: (ctx: TrainContext) => {
        if (ctx.iteration === 1 && ctx.stage === 'lossBegin') throw boom;
        return false;
      },
    };
    const err = (await tinyLearner([g]).fit(1).catch((e: unknown) => e)) as StageError;
    expect(err).toBeInstanceOf(StageError);
    expect(err.callback).toBe('g');
    expect(err.stage).toBe('lossBegin');
    expect(err.phase).toBe('guard stopTraining');
    expect(err.cause).toBe(boom);
    expect(err.message).toMatch(/callback g, guard stopTraining \(read at stage lossBegin\): bad guard/);
    expect(err.message).not.toMatch(/hook/);
  });

  it('a hook that throws is still reported as a hook', async () => {
    const t = new TraceCallback('h', [], 0, {
      epochEnd: () => {
        throw new Error('oops');
      },
    });
    const err = (await tinyLearner([t]).fit(1).catch((e: unknown) => e)) as StageError;
    expect(err.phase).toBe('hook');
    expect(err.message).toMatch(/callback h, hook of stage epochEnd: oops/);
  });
});
