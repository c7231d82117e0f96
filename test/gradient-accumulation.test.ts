import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { GradientAccumulation } from '../callbacks/gradientAccumulation.js';
import { Callback } from '../src/loop/callback.js';
import { DataLoader } from '../src/data/dataLoader.js';
import { ConfigError } from '../src/errors.js';
import { Learner } from '../src/learner.js';
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

describe("GradientAccumulation, reduce: 'sum': one step on the summed gradient", () => {
  it('n = 2 over 5 batches: steps at batches 1, 3 and 4 (last of the epoch), each on the sum of its group’s gradients', async () => {
    const lr = 0.3;
    const batches = new Batches();
    const steps = new StepWatch();
    const acc = new GradientAccumulation({ nBatches: 2, reduce: 'sum' });
    const learn = tinyLearner([batches, acc, steps], { optimizer: sgd() }, 10, 4);
    const before = tf.memory().numTensors;
    await learn.fit(1, { lr });
    learn.smoothLossState(); // reads the losses no callback read (held for the fit's smoothed loss)
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

describe("GradientAccumulation, reduce: 'mean' (the default, as fastai): one step on the mean of the group's gradients", () => {
  it('the default is the mean: with nothing but nBatches given, the weights are the mean reference’s', async () => {
    const lr = 0.5;
    const batches = new Batches();
    const acc = new GradientAccumulation({ nBatches: 2 });
    expect(acc.reduce).toBe('mean');
    expect(new GradientAccumulation().reduce).toBe('mean');
    const learn = tinyLearner([batches, acc], { optimizer: sgd() }, 10, 4);
    await learn.fit(1, { lr });
    expectWeights(learn, reference(batches.batches, [[0, 1], [2, 3], [4]], lr, learn.loss.fn, 'mean'));
  });

  it('n = 2 over 5 batches: the shorter last group is averaged over its own size', async () => {
    const lr = 0.5;
    const batches = new Batches();
    const steps = new StepWatch();
    const learn = tinyLearner([batches, new GradientAccumulation({ nBatches: 2, reduce: 'mean' }), steps], { optimizer: sgd() }, 10, 4);
    const before = tf.memory().numTensors;
    await learn.fit(1, { lr });
    learn.smoothLossState(); // reads the losses no callback read (held for the fit's smoothed loss)
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

/**
 * A cancelled batch (cancelBatch from any hook or guard, before or after this callback's own
 * backwardEnd hook) is not part of any group: it neither counts toward the group's n nor
 * leaves its gradient behind, and the group it fell in is completed by the next batches that
 * are not cancelled. So every step is on the gradients of exactly the non-cancelled batches
 * since the previous step (at most n of them), divided by their number.
 *
 * The reference is closed form, in float64: a linear model y = x·w + b with the mean squared
 * error over the batch, whose gradient is ∂L/∂w = (2/B)·Σ (x·w + b − y)·x, ∂L/∂b = (2/B)·Σ (x·w + b − y),
 * and plain SGD (w ← w − lr·g) at each step.
 */
describe('GradientAccumulation with cancelled batches: groups never merge', () => {
  const D = 3;
  const data = (n: number) => {
    const x = new Float32Array(n * D);
    const y = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < D; j++) x[i * D + j] = Math.sin(1.7 * i + 0.9 * j + 0.3);
      y[i] = Math.cos(0.8 * i);
    }
    return { x, y };
  };
  const W0 = [0.4, -0.3, 0.2];

  function linearLearner(callbacks: Callback[], nTrain: number) {
    const { x, y } = data(nTrain);
    const model = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [D], units: 1, kernelInitializer: tf.initializers.zeros(), biasInitializer: tf.initializers.zeros() })],
    });
    const [kernel] = model.getWeights();
    const w0 = tf.tensor(W0, kernel!.shape);
    model.layers[0]!.setWeights([w0, tf.zeros([1])]);
    w0.dispose();
    return new Learner({
      model,
      data: { train: DataLoader.fromArrays(x, y, { batchSize: 2, xShape: [D], yShape: [1] }) },
      loss: 'meanSquaredError',
      optimizer: sgd(),
      callbacks,
      recorder: false,
    });
  }

  /** Closed-form SGD on the mean of each group's batch gradients; batch k holds samples 2k, 2k+1. */
  function closedForm(nTrain: number, groups: number[][], lr: number): { w: number[]; b: number } {
    const { x, y } = data(nTrain);
    let w = W0.slice();
    let b = 0;
    const gradOf = (k: number) => {
      const g = new Array<number>(D).fill(0);
      let gb = 0;
      const rows = [2 * k, 2 * k + 1];
      for (const i of rows) {
        const xi = Array.from(x.subarray(i * D, (i + 1) * D), Number);
        const r = xi.reduce((s, v, j) => s + v * w[j]!, b) - y[i]!;
        xi.forEach((v, j) => (g[j]! += (2 / rows.length) * r * v));
        gb += (2 / rows.length) * r;
      }
      return { g, gb };
    };
    for (const group of groups) {
      const grads = group.map(gradOf); // all at the weights the group started from
      w = w.map((wj, j) => wj - (lr * grads.reduce((s, q) => s + q.g[j]!, 0)) / group.length);
      b -= (lr * grads.reduce((s, q) => s + q.gb, 0)) / group.length;
    }
    return { w, b };
  }

  function expectLinear(learn: Learner, expected: { w: number[]; b: number }) {
    const [kernel, bias] = learn.model.getWeights();
    Array.from(kernel!.dataSync()).forEach((v, j) => expect(v).toBeCloseTo(expected.w[j]!, 6));
    expect(bias!.dataSync()[0]).toBeCloseTo(expected.b, 6);
  }

  /** Cancels the train batches with these run-wide indices from backwardEnd (order > the accumulation's −20: it runs after). */
  class CancelAt extends Callback {
    constructor(
      readonly at: number[],
      order = 0,
    ) {
      super();
      this.order = order;
    }
    onBackwardEnd(ctx: TrainContext) {
      if (this.at.includes(ctx.iteration)) return { cancelBatch: true };
    }
  }

  const lr = 0.3;

  it('the closed form is the loop’s own SGD (no accumulation, no cancel)', async () => {
    const learn = linearLearner([], 10);
    await learn.fit(1, { lr });
    expectLinear(learn, closedForm(10, [[0], [1], [2], [3], [4]], lr));
  });

  it('n = 2, the stepping batch 1 cancelled by a later hook: groups [0, 2] and [3, 4], not [0, 2, 3] / 2', async () => {
    const steps = new StepWatch();
    const learn = linearLearner([new GradientAccumulation({ nBatches: 2 }), new CancelAt([1]), steps], 10);
    await learn.fit(1, { lr });
    expect(steps.stepped).toEqual([false, false, true, false, true]);
    expectLinear(learn, closedForm(10, [[0, 2], [3, 4]], lr));
  });

  it('n = 2, the accumulating batch 0 cancelled by a later hook: groups [1, 2] and [3, 4], each the mean of two gradients', async () => {
    const steps = new StepWatch();
    const learn = linearLearner([new GradientAccumulation({ nBatches: 2 }), new CancelAt([0]), steps], 10);
    await learn.fit(1, { lr });
    expect(steps.stepped).toEqual([false, false, true, false, true]);
    expectLinear(learn, closedForm(10, [[1, 2], [3, 4]], lr));
  });

  it('the same with the cancel coming from an earlier hook (order −30) and from a guard', async () => {
    const early = linearLearner([new GradientAccumulation({ nBatches: 2 }), new CancelAt([1], -30)], 10);
    await early.fit(1, { lr });
    expectLinear(early, closedForm(10, [[0, 2], [3, 4]], lr));

    class CancelGuard extends Callback {
      constructor() {
        super();
        this.guards = { cancelBatch: (ctx: TrainContext) => ctx.stage === 'backwardEnd' && ctx.iteration === 1 };
      }
    }
    const guarded = linearLearner([new GradientAccumulation({ nBatches: 2 }), new CancelGuard()], 10);
    await guarded.fit(1, { lr });
    expectLinear(guarded, closedForm(10, [[0, 2], [3, 4]], lr));
  });

  it('a skipBackward batch contributes no gradient either: n = 2 with batch 1 skipped gives groups [0, 2] and [3, 4]', async () => {
    class SkipBackwardAt extends Callback {
      onBackwardBegin(ctx: TrainContext) {
        if (ctx.iteration === 1) return { skipBackward: true };
      }
    }
    const learn = linearLearner([new GradientAccumulation({ nBatches: 2 }), new SkipBackwardAt()], 10);
    await learn.fit(1, { lr });
    expectLinear(learn, closedForm(10, [[0, 2], [3, 4]], lr));
  });

  it("reduce: 'sum' with a cancelled stepping batch: the next group is n gradients, not the previous group's too", async () => {
    const learn = linearLearner([new GradientAccumulation({ nBatches: 2, reduce: 'sum' }), new CancelAt([1])], 10);
    await learn.fit(1, { lr });
    // Both groups have 2 batches: their sum is the mean reference at twice the lr.
    expectLinear(learn, closedForm(10, [[0, 2], [3, 4]], 2 * lr));
  });

  it('n = 3, the last batch of epoch 0 cancelled: its group [3] continues in epoch 1 as [3, 5, 6]; no tensor leaks', async () => {
    const steps = new StepWatch();
    const learn = linearLearner([new GradientAccumulation({ nBatches: 3 }), new CancelAt([4]), steps], 10);
    const before = tf.memory().numTensors;
    await learn.fit(2, { lr });
    learn.smoothLossState(); // reads the losses no callback read (held for the fit's smoothed loss)
    expect(tf.memory().numTensors).toBe(before + learn.optimizer.numTensors);
    // Epoch 1: batch 5 and 6 complete the group of 3; batches 7, 8 and 9 (last) are the next one.
    expect(steps.stepped).toEqual([false, false, true, false, false, false, true, false, false, true]);
    // In data batches (5 per epoch, not shuffled): run batch 5 is data batch 0 again.
    expectLinear(learn, closedForm(10, [[0, 1, 2], [3, 0, 1], [2, 3, 4]], lr));
  });
});
