/**
 * fit(n, { startEpoch }): startEpoch must leave an epoch to train (startEpoch < n), and the
 * result's `iterations` counts the train batches this fit ran — the epochs it started past
 * are not batches — while ctx.iteration stays the run's count (contract §5: train batches
 * done in the whole run).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { tinyLearner, TraceCallback, type TraceEntry } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('fit(n, { startEpoch })', () => {
  for (const [n, start] of [
    [2, 2],
    [2, 5],
    [1, 1],
  ] as const) {
    it(`startEpoch ${start} with ${n} epochs trains nothing: a ConfigError, the learner unchanged`, async () => {
      const trace: TraceEntry[] = [];
      const learn = tinyLearner([new TraceCallback('t', trace)]);
      const weights = learn.params.map((p) => p.dataSync().slice());
      const err = (await learn.fit(n, { startEpoch: start }).catch((e: unknown) => e)) as ConfigError;
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(new RegExp(`startEpoch ${start} .*${n} epoch.*no epoch to train.*startEpoch < ${n}`));
      expect(trace).toEqual([]);
      expect(learn.params.map((p) => p.dataSync().slice())).toEqual(weights);
      await expect(learn.fit(1)).resolves.toMatchObject({ status: 'completed' });
    });
  }

  it('iterations counts the batches this fit trained; ctx.iteration counts the whole run', async () => {
    const trace: TraceEntry[] = [];
    const learn = tinyLearner([new TraceCallback('t', trace)]);
    const result = await learn.fit(3, { startEpoch: 1 });
    const trainBatchEnds = trace.filter((e) => e.stage === 'batchEnd' && e.train);
    // 3 train batches per epoch, epochs 1 and 2 ran.
    expect(trainBatchEnds).toHaveLength(6);
    expect(result.iterations).toBe(6);
    expect(result.epochs).toBe(2);
    expect(trainBatchEnds.map((e) => e.iteration)).toEqual([3, 4, 5, 6, 7, 8]);
  });

  it('without startEpoch, iterations is every train batch (cancelled ones too)', async () => {
    const learn = tinyLearner([new TraceCallback('t', [], 0, { batchBegin: (ctx) => (ctx.train && ctx.batchIndex === 1 ? { cancelBatch: true } : undefined) })]);
    await expect(learn.fit(2)).resolves.toMatchObject({ iterations: 6, epochs: 2 });
  });
});
