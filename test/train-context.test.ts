/**
 * The context hooks receive (contract §5, docs/api.md): every field is an own, enumerable
 * property in the documented order — `lastLossValue` and `smoothLoss` too, although they read
 * the loss from the device on demand — so a hook may spread, enumerate or proxy it, and
 * `readLossLater` works detached from it.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Callback } from '../src/loop/callback.js';
import { newTrainContext, type TrainContext } from '../src/loop/context.js';
import { tinyLearner } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const FIELDS = [
  'stage', 'epoch', 'nEpochs', 'iteration', 'batchIndex', 'nBatches', 'train', 'lastInput', 'lastTarget', 'lastOutput',
  'lastLoss', 'lastLossValue', 'smoothLoss', 'lastMetrics', 'controls', 'error', 'learn', 'readLossLater',
];

describe('the train context', () => {
  it('outside a run: own enumerable fields in order, no loss yet', () => {
    const ctx = newTrainContext({} as never, 3, 7);
    expect(Object.keys(ctx)).toEqual(FIELDS);
    expect({ ...ctx }).toMatchObject({ nEpochs: 3, nBatches: 7, lastLossValue: null });
    expect(Number.isNaN(ctx.smoothLoss)).toBe(true);
    const { readLossLater } = ctx;
    const got: unknown[] = [];
    readLossLater((loss, smooth) => got.push(loss, smooth));
    expect(got).toEqual([null, Number.NaN]);
  });

  it('in a run: spread, enumerated, proxied or detached, the loss fields give this batch’s loss', async () => {
    const rows: Array<Record<string, unknown>> = [];
    class Looks extends Callback {
      onBatchEnd(ctx: TrainContext) {
        if (!ctx.train) return;
        const spread = { ...ctx };
        const { readLossLater } = ctx;
        let later: number | null = null;
        readLossLater((loss) => (later = loss));
        rows.push({
          keys: Object.keys(ctx).join(),
          spread: spread.lastLossValue,
          proxied: new Proxy(ctx, {}).lastLossValue,
          derived: Object.create(ctx).smoothLoss === ctx.smoothLoss,
          direct: ctx.lastLoss!.dataSync()[0],
          later,
        });
      }
    }
    const learn = tinyLearner([new Looks()]);
    await learn.fit(1);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r.keys).toBe(FIELDS.join());
      expect(r.spread).toBe(r.direct);
      expect(r.proxied).toBe(r.direct);
      expect(r.later).toBe(r.direct);
      expect(r.derived).toBe(true);
    }
  });
});
