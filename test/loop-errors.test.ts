import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { StageError } from '../src/errors.js';
import { Learner } from '../src/learner.js';
import type { TrainContext } from '../src/loop/context.js';
import { stagesOf, tinyModel, tinyLearner, tinyProblem, TraceCallback, TRAIN_BATCH, type TraceEntry } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('the error path (contract §4)', () => {
  it('a hook that throws: no further stage but trainEnd (once), fit rejects naming stage and callback', async () => {
    const trace: TraceEntry[] = [];
    let errorAtTrainEnd: Error | null = null;
    const thrower = new TraceCallback('thrower', trace, 0, {
      lossBegin: (ctx) => {
        if (ctx.train && ctx.epoch === 0 && ctx.batchIndex === 1) throw new Error('boom');
      },
      trainEnd: (ctx) => {
        errorAtTrainEnd = ctx.error;
      },
    });
    const after = new TraceCallback('after', trace, 1);
    const learn = tinyLearner([thrower, after]);
    const before = tf.memory().numTensors;
    const err = (await learn.fit(2).catch((e: unknown) => e)) as StageError;

    expect(err).toBeInstanceOf(StageError);
    expect(err.stage).toBe('lossBegin');
    expect(err.callback).toBe('thrower');
    expect(err.message).toContain('thrower');
    expect(err.message).toContain('lossBegin');
    expect(err.message).toContain('boom');
    expect((err.cause as Error).message).toBe('boom');
    expect(errorAtTrainEnd).toBe(err);

    const head = ['trainBegin', 'epochBegin', ...TRAIN_BATCH, 'batchBegin'];
    expect(stagesOf(trace, 'thrower')).toEqual([...head, 'lossBegin', 'trainEnd']);
    // The callback after the thrower never sees the failing stage.
    expect(stagesOf(trace, 'after')).toEqual([...head, 'trainEnd']);
    expect(trace.filter((e) => e.stage === 'trainEnd')).toHaveLength(2);
    // Tensors made by the loop are disposed on this path too (SGD without momentum owns none).
    expect(tf.memory().numTensors).toBe(before + learn.optimizer.numTensors);
  });

  it('an exception from the loss (not a hook) names the stage and no callback', async () => {
    const { train, valid } = tinyProblem();
    const trace: TraceEntry[] = [];
    let calls = 0;
    const learn = new Learner({
      model: tinyModel(),
      data: { train, valid },
      loss: (yPred, yTrue) => {
        if (++calls === 2) throw new Error('loss exploded');
        return tf.losses.meanSquaredError(yTrue, yPred) as tf.Scalar;
      },
      optimizer: 'sgd',
      callbacks: [new TraceCallback('t', trace)],
      recorder: false,
    });
    const err = (await learn.fit(1).catch((e: unknown) => e)) as StageError;
    expect(err).toBeInstanceOf(StageError);
    expect(err.stage).toBe('backwardBegin');
    expect(err.callback).toBeNull();
    expect(err.message).toContain('loss exploded');
    expect(stagesOf(trace, 't')).toEqual(['trainBegin', 'epochBegin', ...TRAIN_BATCH, 'batchBegin', 'lossBegin', 'trainEnd']);
  });

  it('an exception in trainEnd itself: trainEnd ran once, the run is failed', async () => {
    const trace: TraceEntry[] = [];
    const learn = tinyLearner([
      new TraceCallback('t', trace, 0, {
        trainEnd: () => {
          throw new Error('cleanup failed');
        },
      }),
    ]);
    const err = (await learn.fit(1).catch((e: unknown) => e)) as StageError;
    expect(err).toBeInstanceOf(StageError);
    expect(err.stage).toBe('trainEnd');
    expect(trace.filter((e) => e.stage === 'trainEnd')).toHaveLength(1);
  });

  it('a guard that throws fails the run naming the callback', async () => {
    const t = new TraceCallback('g', []);
    t.guards = {
      stopEpoch: (ctx: TrainContext) => {
        if (ctx.iteration === 1) throw new Error('bad guard');
        return false;
      },
    };
    const err = (await tinyLearner([t]).fit(1).catch((e: unknown) => e)) as StageError;
    expect(err).toBeInstanceOf(StageError);
    expect(err.callback).toBe('g');
    expect(err.message).toContain('bad guard');
  });

  it('the learner can fit again after a failed fit', async () => {
    let fail = true;
    const learn = tinyLearner([
      new TraceCallback('t', [], 0, {
        epochBegin: () => {
          if (fail) throw new Error('first time');
        },
      }),
    ]);
    await expect(learn.fit(1)).rejects.toThrow('first time');
    fail = false;
    await expect(learn.fit(1)).resolves.toMatchObject({ status: 'completed' });
  });
});
