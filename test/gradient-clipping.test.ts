import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { GradientAccumulation } from '../callbacks/gradientAccumulation.js';
import { GradientClipping } from '../callbacks/gradientClipping.js';
import { Callback } from '../src/callback.js';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import { tinyLearner } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Reads the gradients at backwardEnd, as plain arrays, and keeps the map object seen. */
class GradProbe extends Callback {
  seen: Array<{ values: Float64Array[]; map: tf.NamedTensorMap }> = [];
  constructor(order: number) {
    super();
    this.order = order;
  }
  onBackwardEnd(_ctx: TrainContext) {
    const grads = this.learn.grads!;
    const values = this.learn.params.map((p) => Float64Array.from(grads[p.name]!.dataSync()));
    this.seen.push({ values, map: grads });
  }
}

/** The global norm sqrt(Σ g²) over every gradient, in float64. */
function globalNorm(gs: Float64Array[]): number {
  let s = 0;
  for (const g of gs) for (const v of g) s += v * v;
  return Math.sqrt(s);
}

describe('GradientClipping (global norm)', () => {
  it('above maxNorm: every gradient is scaled by maxNorm / norm, so the global norm becomes maxNorm', async () => {
    const maxNorm = 0.05;
    const pre = new GradProbe(-15);
    const post = new GradProbe(0);
    const clip = new GradientClipping({ maxNorm });
    const learn = tinyLearner([pre, clip, post]);
    const before = tf.memory().numTensors;
    await learn.fit(2, { lr: 0.1 });
    expect(tf.memory().numTensors).toBe(before + learn.optimizer.numTensors);
    expect(pre.seen.length).toBe(6);
    let clipped = 0;
    pre.seen.forEach(({ values: g }, i) => {
      const norm = globalNorm(g);
      const after = post.seen[i]!.values;
      if (norm <= maxNorm) return;
      clipped += 1;
      expect(globalNorm(after)).toBeCloseTo(maxNorm, 6);
      g.forEach((arr, k) => arr.forEach((v, j) => expect(after[k]![j]).toBeCloseTo((v * maxNorm) / norm, 7)));
    });
    expect(clipped).toBe(6); // the test's maxNorm is small enough that every step is clipped
    expect(clip.clippedSteps).toBe(6);
  });

  it('at or below maxNorm: the very same gradient tensors are used, untouched', async () => {
    const pre = new GradProbe(-15);
    const post = new GradProbe(0);
    const clip = new GradientClipping({ maxNorm: 1e6 });
    await tinyLearner([pre, clip, post]).fit(1);
    pre.seen.forEach(({ map }, i) => expect(post.seen[i]!.map).toBe(map));
    expect(clip.clippedSteps).toBe(0);
    expect(clip.lastNorm).toBeCloseTo(globalNorm(pre.seen.at(-1)!.values), 6);
  });

  it('with GradientAccumulation only the stepping batches are clipped (the averaged gradient)', async () => {
    const clip = new GradientClipping({ maxNorm: 1e-4 });
    const post = new GradProbe(0);
    // 3 batches per epoch, n = 2: steps at batches 1 and 2 of each epoch; batch 0 only accumulates.
    await tinyLearner([new GradientAccumulation({ nBatches: 2 }), clip, post]).fit(2);
    expect(clip.clippedSteps).toBe(4);
    post.seen.forEach(({ values }, i) => {
      const stepping = i % 3 !== 0;
      if (stepping) expect(globalNorm(values)).toBeCloseTo(1e-4, 8);
      else expect(globalNorm(values)).toBeGreaterThan(1e-3);
    });
  });

  it('maxNorm must be a positive number', () => {
    expect(() => new GradientClipping({ maxNorm: 0 })).toThrow(ConfigError);
    expect(() => new GradientClipping({ maxNorm: Number.NaN })).toThrow(/maxNorm/);
  });
});
