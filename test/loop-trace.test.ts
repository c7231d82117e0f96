import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectedRun, stagesOf, tinyLearner, TraceCallback, type TraceEntry } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('the stage trace of fit', () => {
  it('fit(2) over 3 train and 2 valid batches: every stage in contract order, callbacks by ascending order', async () => {
    const trace: TraceEntry[] = [];
    // Given first but with the higher order: must run second at every stage.
    const late = new TraceCallback('late', trace, 10);
    const early = new TraceCallback('early', trace, -5);
    const learn = tinyLearner([late, early]);
    const result = await learn.fit(2);

    expect(result.status).toBe('completed');
    expect(result.epochs).toBe(2);
    expect(result.iterations).toBe(6);
    const expected = expectedRun(2, 3, 2);
    expect(stagesOf(trace, 'early')).toEqual(expected);
    expect(stagesOf(trace, 'late')).toEqual(expected);
    // Interleaving: each stage runs early then late, never the other way round.
    expect(trace.map((e) => e.callback)).toEqual(expected.flatMap(() => ['early', 'late']));
  });

  it('context counters: epoch, batchIndex within the pass, iteration over the run, train flag', async () => {
    const trace: TraceEntry[] = [];
    const learn = tinyLearner([new TraceCallback('t', trace)]);
    await learn.fit(2);
    const trainBatchEnds = trace.filter((e) => e.stage === 'batchEnd' && e.train);
    expect(trainBatchEnds.map((e) => [e.epoch, e.batchIndex, e.iteration])).toEqual([
      [0, 0, 0],
      [0, 1, 1],
      [0, 2, 2],
      [1, 0, 3],
      [1, 1, 4],
      [1, 2, 5],
    ]);
    const validBatchEnds = trace.filter((e) => e.stage === 'batchEnd' && !e.train);
    expect(validBatchEnds.map((e) => [e.epoch, e.batchIndex])).toEqual([
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
    ]);
    for (const e of trace.filter((e) => e.stage === 'epochEnd' || e.stage === 'epochBegin')) expect(e.train).toBe(true);
  });

  it('without validation data there is no validation pass', async () => {
    const trace: TraceEntry[] = [];
    const learn = tinyLearner([new TraceCallback('t', trace)], {}, 6, 0);
    await learn.fit(1);
    expect(stagesOf(trace, 't')).toEqual(expectedRun(1, 3, 0, false));
  });

  it('hands the hooks the loss, its smoothed average and the validation metrics', async () => {
    const seen: Array<{ loss: number | null; smooth: number; metrics: Record<string, number> | null; stage: string }> = [];
    const learn = tinyLearner([]);
    learn.addCallback(
      new (class extends TraceCallback {
        constructor() {
          super('probe', [], 0, {
            batchEnd: (ctx) => void seen.push({ loss: ctx.lastLossValue, smooth: ctx.smoothLoss, metrics: ctx.lastMetrics, stage: 'batchEnd' }),
            validateEnd: (ctx) => void seen.push({ loss: null, smooth: ctx.smoothLoss, metrics: ctx.lastMetrics, stage: 'validateEnd' }),
          });
        }
      })(),
    );
    await learn.fit(1);
    const losses = seen.filter((s) => s.stage === 'batchEnd').slice(0, 3).map((s) => s.loss!);
    // fastai's debiased EMA, β = 0.98
    let avg = 0;
    losses.forEach((l, i) => {
      avg = 0.98 * avg + 0.02 * l;
      expect(seen[i]!.smooth).toBeCloseTo(avg / (1 - 0.98 ** (i + 1)), 10);
    });
    const end = seen.find((s) => s.stage === 'validateEnd')!;
    expect(Object.keys(end.metrics!).sort()).toEqual(['accuracy', 'validLoss']);
    expect(end.metrics!.accuracy).toBeGreaterThanOrEqual(0);
    expect(end.metrics!.accuracy).toBeLessThanOrEqual(1);
  });
});
