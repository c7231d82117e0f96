import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { GradientAccumulation } from '../callbacks/gradientAccumulation.js';
import { GradientClipping } from '../callbacks/gradientClipping.js';
import { Callback } from '../src/loop/callback.js';
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
    learn.smoothLossState(); // reads the losses no callback read (held for the fit's smoothed loss)
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

  it('at or below maxNorm: the gradients keep their exact values (multiplied by exactly 1)', async () => {
    const pre = new GradProbe(-15);
    const post = new GradProbe(0);
    const clip = new GradientClipping({ maxNorm: 1e6 });
    await tinyLearner([pre, clip, post]).fit(1);
    expect(post.seen.length).toBe(3);
    pre.seen.forEach(({ values }, i) => expect(post.seen[i]!.values).toEqual(values));
    expect(clip.clippedSteps).toBe(0);
    expect(clip.lastNorm).toBeCloseTo(globalNorm(pre.seen.at(-1)!.values), 6);
  });

  it('a non-finite norm leaves the gradients as they are (Infinity and NaN stay, the rest unscaled)', async () => {
    /** Puts an Infinity into one gradient and a NaN into another at iteration 1. */
    class Poison extends Callback {
      override order = -20;
      onBackwardEnd(ctx: TrainContext) {
        if (ctx.iteration !== 1) return;
        const grads = this.learn.grads!;
        const [a, b] = Object.keys(grads);
        const poisoned = (g: tf.Tensor, v: number) => tf.tidy(() => tf.concat([tf.fill([1], v), g.flatten().slice(1)]).reshape(g.shape));
        this.learn.grads = { ...grads, [a!]: poisoned(grads[a!]!, Infinity), [b!]: poisoned(grads[b!]!, Number.NaN) };
      }
    }
    const pre = new GradProbe(-15);
    const post = new GradProbe(0);
    const clip = new GradientClipping({ maxNorm: 1e-4 });
    const learn = tinyLearner([new Poison(), pre, clip, post]);
    const before = tf.memory().numTensors;
    await learn.fit(1);
    learn.smoothLossState(); // reads the losses no callback read (held for the fit's smoothed loss)
    expect(tf.memory().numTensors).toBe(before + learn.optimizer.numTensors);
    expect(pre.seen[1]!.values.some((g) => g.some((v) => v === Infinity))).toBe(true);
    expect(post.seen[1]!.values).toEqual(pre.seen[1]!.values);
    expect(clip.clippedSteps).toBe(1); // batch 0 only: after it the weights are not finite
  });

  it('a batch an earlier hook at backwardEnd asked to skipStep or cancelBatch is not clipped, whichever callback asked', async () => {
    /** Asks for `control` at backwardEnd of the given iterations, before the clipping runs. */
    class AskFor extends Callback {
      override order = -15;
      constructor(
        readonly control: 'skipStep' | 'cancelBatch',
        readonly at: number[],
      ) {
        super();
      }
      onBackwardEnd(ctx: TrainContext) {
        if (this.at.includes(ctx.iteration)) return { [this.control]: true };
      }
    }
    const pre = new GradProbe(-16);
    const post = new GradProbe(0);
    const clip = new GradientClipping({ maxNorm: 1e-4 });
    await tinyLearner([new AskFor('skipStep', [0, 3]), new AskFor('cancelBatch', [4]), pre, clip, post]).fit(2);
    expect(post.seen.length).toBe(6);
    post.seen.forEach(({ values }, i) => {
      if ([0, 3, 4].includes(i)) expect(values, `iteration ${i}`).toEqual(pre.seen[i]!.values);
      else expect(globalNorm(values), `iteration ${i}`).toBeCloseTo(1e-4, 8);
    });
    expect(clip.clippedSteps).toBe(3);
  });

  it('reads nothing back from the device per batch; lastNorm and clippedSteps are up to date at each epochEnd', async () => {
    const clip = new GradientClipping({ maxNorm: 1e-4 });
    const backend = tf.backend();
    const readSync = backend.readSync;
    let reads = 0;
    const hook = clip.onBackwardEnd.bind(clip);
    // An own property wins over the prototype's hook: the loop runs this wrapper.
    clip.onBackwardEnd = (ctx: TrainContext) => {
      backend.readSync = function (this: typeof backend, ...args: Parameters<typeof readSync>) {
        reads += 1;
        return readSync.apply(this, args);
      };
      try {
        hook(ctx);
      } finally {
        backend.readSync = readSync;
      }
    };
    /** What the clipping reports at each epochEnd, after it ran there. */
    class Report extends Callback {
      override order = 100;
      rows: Array<[number, number | null]> = [];
      onEpochEnd() {
        this.rows.push([clip.clippedSteps, clip.lastNorm]);
      }
    }
    const pre = new GradProbe(-15);
    const report = new Report();
    await tinyLearner([pre, clip, report]).fit(2);
    expect(reads).toBe(0);
    expect(report.rows.map(([n]) => n)).toEqual([3, 6]);
    expect(report.rows[0]![1]).toBeCloseTo(globalNorm(pre.seen[2]!.values), 5);
    expect(report.rows[1]![1]).toBeCloseTo(globalNorm(pre.seen[5]!.values), 5);
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

  it('its state is lastNorm and clippedSteps (maxNorm is an option); a checkpoint mid-epoch counts the steps not yet read back', async () => {
    const clip = new GradientClipping({ maxNorm: 1e-4 });
    /** Takes the clipping's state at the last batchEnd of epoch 0, before that epochEnd reads anything back. */
    class Checkpoint extends Callback {
      state: Record<string, unknown> | null = null;
      onBatchEnd(ctx: TrainContext) {
        if (ctx.train && ctx.epoch === 0 && ctx.batchIndex === ctx.nBatches - 1) this.state = clip.getState();
      }
    }
    const checkpoint = new Checkpoint();
    await tinyLearner([clip, checkpoint]).fit(2);
    expect(Object.keys(checkpoint.state!).sort()).toEqual(['clippedSteps', 'lastNorm']);
    expect(checkpoint.state!.clippedSteps).toBe(3);
    expect(clip.getState()).toEqual({ lastNorm: clip.lastNorm, clippedSteps: 6 });
    expect(() => clip.setState({ maxNorm: 5 })).toThrow(ConfigError);
  });
});
