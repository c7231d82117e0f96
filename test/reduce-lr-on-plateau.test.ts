import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ReduceLROnPlateau } from '../callbacks/reduceLrOnPlateau.js';
import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import { ScriptedMetrics } from './support/scripted.js';
import { tinyLearner } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** The lr each epoch trained with, read at its first batch. */
class LrPerEpoch extends Callback {
  lrs: number[] = [];
  onBatchBegin(ctx: TrainContext) {
    if (ctx.train && ctx.batchIndex === 0) this.lrs.push(this.learn.lr);
  }
}

describe('ReduceLROnPlateau (lr ← max(lr·factor, minLr) after `patience` epochs without improvement)', () => {
  it('reduces at the epochs worked out by hand, restarts the count, and stops at minLr', async () => {
    // validLoss: e0 1.00 best   e1 0.90 best   e2 0.95 wait 1   e3 0.96 wait 2 → lr 0.1·0.5 = 0.05, wait 0
    //            e4 0.97 wait 1 e5 0.85 best   e6 0.90 wait 1   e7 0.91 wait 2 → lr max(0.025, 0.03) = 0.03
    const validLoss = [1.0, 0.9, 0.95, 0.96, 0.97, 0.85, 0.9, 0.91];
    const rlr = new ReduceLROnPlateau({ patience: 2, factor: 0.5, minLr: 0.03 });
    const lrs = new LrPerEpoch();
    const learn = tinyLearner([new ScriptedMetrics({ validLoss }), rlr, lrs]);
    const result = await learn.fit(8, { lr: 0.1 });
    expect(result.status).toBe('completed');
    expect(lrs.lrs).toEqual([0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]);
    expect(learn.lr).toBe(0.03);
    expect(rlr.reductions).toEqual([
      { epoch: 3, lr: 0.05 },
      { epoch: 7, lr: 0.03 },
    ]);
  });

  it('at minLr already: no further change', async () => {
    const rlr = new ReduceLROnPlateau({ patience: 1, factor: 0.1, minLr: 0.01 });
    const learn = tinyLearner([new ScriptedMetrics({ validLoss: [1, 2, 3, 4] }), rlr]);
    await learn.fit(4, { lr: 0.01 });
    expect(learn.lr).toBe(0.01);
    expect(rlr.reductions).toEqual([]);
  });

  it('max mode (accuracy) with the Keras default factor 0.1', async () => {
    const rlr = new ReduceLROnPlateau({ monitor: 'accuracy' });
    const learn = tinyLearner([new ScriptedMetrics({ accuracy: [0.5, 0.4, 0.6] }), rlr]);
    await learn.fit(3, { lr: 0.1 });
    // e1 did not beat 0.5 → one reduction (patience 1), e2 improved.
    expect(learn.lr).toBeCloseTo(0.01, 15);
  });

  it("refuses a dividing factor and points to fastai's convention", () => {
    expect(() => new ReduceLROnPlateau({ factor: 10 })).toThrow(ConfigError);
    expect(() => new ReduceLROnPlateau({ factor: 10 })).toThrow(/use factor: 0.1/);
    expect(() => new ReduceLROnPlateau({ minLr: -1 })).toThrow(/minLr/);
    expect(() => new ReduceLROnPlateau({ patience: 1.5 })).toThrow(/patience/);
  });
});
