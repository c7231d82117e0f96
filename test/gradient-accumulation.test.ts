import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { GradientAccumulation } from '../callbacks/gradientAccumulation.js';
import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import { createOptimizer } from '../src/optim/optimizer.js';
import { tinyLearner, tinyModel } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

interface Batch {
  x: Float32Array;
  xShape: number[];
  y: Float32Array;
  yShape: number[];
}

/** Copies each train batch as it was loaded (before any other hook), in order. */
class Batches extends Callback {
  override order = -100;
  batches: Batch[] = [];
  onBatchBegin(ctx: TrainContext) {
    if (!ctx.train) return;
    const x = ctx.lastInput!;
    const y = ctx.lastTarget!;
    this.batches.push({ x: x.dataSync().slice() as Float32Array, xShape: x.shape, y: y.dataSync().slice() as Float32Array, yShape: y.shape });
  }
}

/** Which train batches stepped: the weights changed between its batchBegin and batchEnd. */
class StepWatch extends Callback {
  stepped: boolean[] = [];
  private before: Float32Array[] = [];
  onBatchBegin(ctx: TrainContext) {
    if (ctx.train) this.before = this.learn.params.map((p) => p.dataSync().slice() as Float32Array);
  }
  onBatchEnd(ctx: TrainContext) {
    if (!ctx.train) return;
    const now = this.learn.params.map((p) => p.dataSync());
    this.stepped.push(now.some((w, i) => w.some((v, j) => v !== this.before[i]![j])));
  }
}

/**
 * The reference: plain SGD (no momentum) on an independent copy of the model, one step per
 * group on the sum (or the mean) of the group's gradients, each taken with tf.variableGrads
 * at the weights the group started from, added up in float64.
 */
function reference(
  batches: Batch[],
  groups: number[][],
  lr: number,
  lossFn: (p: tf.Tensor, t: tf.Tensor) => tf.Scalar,
  reduce: 'sum' | 'mean',
) {
  const model = tinyModel(); // same seeded initialization as tinyLearner's model
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  for (const group of groups) {
    const sums = vars.map((v) => new Float64Array(v.size));
    for (const b of group) {
      const batch = batches[b]!;
      const x = tf.tensor(batch.x, batch.xShape);
      const y = tf.tensor(batch.y, batch.yShape);
      const { value, grads } = tf.variableGrads(() => lossFn(model.apply(x) as tf.Tensor, y), vars);
      vars.forEach((v, i) => grads[v.name]!.dataSync().forEach((g, j) => (sums[i]![j]! += g)));
      tf.dispose([x, y, value, grads]);
    }
    vars.forEach((v, i) => {
      const w = v.dataSync();
      const divisor = reduce === 'mean' ? group.length : 1;
      const next = Float32Array.from(w, (wj, j) => wj - (lr * sums[i]![j]!) / divisor);
      v.assign(tf.tensor(next, v.shape));
    });
  }
  const out = vars.map((v) => v.dataSync().slice() as Float32Array);
  model.dispose();
  return out;
}

function expectWeights(learn: ReturnType<typeof tinyLearner>, expected: Float32Array[]) {
  learn.params.forEach((p, i) => {
    const got = p.dataSync();
    expected[i]!.forEach((v, j) => expect(got[j]).toBeCloseTo(v, 6));
  });
}

const sgd = () => createOptimizer({ kind: 'sgd', momentum: 0 });

describe("GradientAccumulation, reduce: 'sum' (the default): one step on the summed gradient", () => {
  it('n = 2 over 5 batches: steps at batches 1, 3 and 4 (last of the epoch), each on the sum of its group’s gradients', async () => {
    const lr = 0.3;
    const batches = new Batches();
    const steps = new StepWatch();
    const acc = new GradientAccumulation({ nBatches: 2 });
    expect(acc.reduce).toBe('sum');
    const learn = tinyLearner([batches, acc, steps], { optimizer: sgd() }, 10, 4);
    const before = tf.memory().numTensors;
    await learn.fit(1, { lr });
    expect(tf.memory().numTensors).toBe(before + learn.optimizer.numTensors);
    expect(steps.stepped).toEqual([false, true, false, true, true]);
    expectWeights(learn, reference(batches.batches, [[0, 1], [2, 3], [4]], lr, learn.loss.fn, 'sum'));
  });

  it('n = 3 over two epochs of 3 batches: one step per epoch on the sum of its 3 gradients', async () => {
    const lr = 0.2;
    const batches = new Batches();
    const steps = new StepWatch();
    const learn = tinyLearner([batches, new GradientAccumulation({ nBatches: 3, reduce: 'sum' }), steps], { optimizer: sgd() });
    await learn.fit(2, { lr });
    expect(steps.stepped).toEqual([false, false, true, false, false, true]);
    expectWeights(learn, reference(batches.batches, [[0, 1, 2], [3, 4, 5]], lr, learn.loss.fn, 'sum'));
  });

  it('the sum and the mean give different weights here (so each comparison can fail)', async () => {
    const batches = new Batches();
    const learn = tinyLearner([batches], { optimizer: sgd() });
    await learn.fit(1, { lr: 0.2 });
    const sum = reference(batches.batches, [[0, 1, 2]], 0.2, learn.loss.fn, 'sum');
    const mean = reference(batches.batches, [[0, 1, 2]], 0.2, learn.loss.fn, 'mean');
    expect(sum.some((w, i) => w.some((v, j) => Math.abs(v - mean[i]![j]!) > 1e-4))).toBe(true);
  });
});

describe("GradientAccumulation, reduce: 'mean': one step on the mean of the group's gradients", () => {
  it('n = 2 over 5 batches: the shorter last group is averaged over its own size', async () => {
    const lr = 0.5;
    const batches = new Batches();
    const steps = new StepWatch();
    const learn = tinyLearner([batches, new GradientAccumulation({ nBatches: 2, reduce: 'mean' }), steps], { optimizer: sgd() }, 10, 4);
    const before = tf.memory().numTensors;
    await learn.fit(1, { lr });
    expect(tf.memory().numTensors).toBe(before + learn.optimizer.numTensors);
    expect(steps.stepped).toEqual([false, true, false, true, true]);
    expectWeights(learn, reference(batches.batches, [[0, 1], [2, 3], [4]], lr, learn.loss.fn, 'mean'));
  });

  it('n = 3 over two epochs of 3 batches', async () => {
    const lr = 0.5;
    const batches = new Batches();
    const learn = tinyLearner([batches, new GradientAccumulation({ nBatches: 3, reduce: 'mean' })], { optimizer: sgd() });
    await learn.fit(2, { lr });
    expectWeights(learn, reference(batches.batches, [[0, 1, 2], [3, 4, 5]], lr, learn.loss.fn, 'mean'));
  });
});

describe('GradientAccumulation: the reference, state and options', () => {
  it('the reference differs from stepping every batch (so the comparisons above can fail)', async () => {
    const batches = new Batches();
    const learn = tinyLearner([batches], { optimizer: sgd() });
    await learn.fit(1, { lr: 0.5 });
    const perBatch = reference(batches.batches, [[0], [1], [2]], 0.5, learn.loss.fn, 'sum');
    const grouped = reference(batches.batches, [[0, 1, 2]], 0.5, learn.loss.fn, 'mean');
    expectWeights(learn, perBatch);
    expect(grouped.some((w, i) => w.some((v, j) => Math.abs(v - perBatch[i]![j]!) > 1e-4))).toBe(true);
  });

  it('a restored count is what the resumed run continues from (restored after onTrainBegin resets it)', async () => {
    // 3 batches an epoch, n = 3. Fresh, epoch 1 steps only at its last batch; with one batch
    // already counted, the group completes at batch 1, and batch 2 (last of the epoch) steps alone.
    const run = async (callbackStates?: Record<string, Record<string, unknown>>) => {
      const steps = new StepWatch();
      const learn = tinyLearner([new GradientAccumulation({ nBatches: 3 }), steps], { optimizer: sgd() });
      await learn.fit(2, { startEpoch: 1, ...(callbackStates ? { callbackStates } : {}) });
      return steps.stepped;
    };
    expect(await run()).toEqual([false, false, true]);
    expect(await run({ GradientAccumulation: { count: 1, accumulating: true } })).toEqual([false, true, true]);
  });

  it('nBatches must be an integer ≥ 1, reduce sum or mean', () => {
    expect(() => new GradientAccumulation({ nBatches: 0 })).toThrow(ConfigError);
    expect(() => new GradientAccumulation({ nBatches: 2.5 })).toThrow(/nBatches/);
    expect(() => new GradientAccumulation({ reduce: 'avg' as never })).toThrow(/reduce must be 'sum' or 'mean'/);
  });

  it('its state is count and accumulating; nBatches and reduce are options', () => {
    const acc = new GradientAccumulation({ nBatches: 4, reduce: 'mean' });
    expect(acc.getState()).toEqual({ count: 0, accumulating: false });
    expect(() => acc.setState({ nBatches: 2 })).toThrow(ConfigError);
    expect(acc.nBatches).toBe(4);
  });
});
