/**
 * Hyper-parameter scalars are uploaded to the device only when their value changes (issue 10:
 * "hyper-parameter scalars are not re-uploaded when unchanged"). Counted, not timed. A tensor
 * made from host values goes through tfjs's `Engine.makeTensor` (`tf.tensor`, `tf.scalar`,
 * `tf.ones`, `tf.zeros`, a number converted to a tensor, …); `tf.fill`, `tf.range` and
 * `tf.linspace` instead run a kernel with no tensor input (Fill, Range, LinSpace). Both are
 * wrapped and counted; a kernel computing from tensors already on the device is not an upload.
 *
 * References:
 * - the update rules (PyTorch's SGD / Adam / AdamW, as src/optim documents them) say which
 *   hyper-parameters each step reads: SGD lr, momentum, wd; Adam β1 (= momentum), β2, the L2 wd,
 *   and lr and ε only through the bias-corrected step size lr·√(1 − β2ᵗ)/(1 − β1ᵗ) and ε̂,
 *   which depend on the step count t and so change at every step whatever the
 *   hyper-parameters; AdamW the decoupled factor 1 − lr·wd. So a step with no hyper-parameter
 *   changed may upload at most what changes with t (SGD nothing); changing one uploads the
 *   scalars it enters, once. That bound is the reference; the exact Adam figures below (2 a
 *   step; lr and ε changing uploads nothing more) pin how src/optim folds lr and ε into those
 *   two per-step scalars, so a regression that uploads more is caught.
 * - a hand loop (the same data, forward and loss, `tf.variableGrads`, no loop): what one batch
 *   uploads outside the optimizer step (the data, and what tfjs's gradients make). A fit's train
 *   batch may upload exactly that plus what a step may (above), plus the scalars of a scheduled
 *   hyper-parameter when its value changes, and nothing for one set to the value it already has.
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ParamScheduler } from '../callbacks/paramScheduler.js';
import { DataLoader } from '../src/data/dataLoader.js';
import { forward } from '../src/engine/forward.js';
import { Learner } from '../src/learner.js';
import { Callback } from '../src/loop/callback.js';
import type { TrainContext } from '../src/loop/context.js';
import { resolveLoss } from '../src/losses.js';
import { mlp } from '../src/models/presets.js';
import { stableParamNames } from '../src/models/paramNames.js';
import { createOptimizer, type HyperParams, type Optimizer, type OptimizerKind } from '../src/optim/optimizer.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

let restore: (() => void) | null = null;
afterEach(() => {
  restore?.();
  restore = null;
});

type Engine = Record<'makeTensor' | 'runKernel', (...args: unknown[]) => unknown>;

/**
 * Counts every upload to the device from now on: each `makeTensor`, and each kernel run with no
 * tensor input (Fill, Range, LinSpace make their output from attributes alone). One counter at a
 * time; `restore` puts the engine back as it was.
 */
function countUploads(): { n: number } {
  if (restore) throw new Error('countUploads: a counter is already installed; restore it first');
  const engine = tf.engine() as unknown as Engine;
  const count = { n: 0 };
  const originals = (['makeTensor', 'runKernel'] as const).map((key) => {
    const own = Object.prototype.hasOwnProperty.call(engine, key);
    const original = engine[key];
    engine[key] =
      key === 'makeTensor'
        ? function (this: unknown, ...args: unknown[]) {
            count.n += 1;
            return original.apply(this, args);
          }
        : function (this: unknown, ...args: unknown[]) {
            const inputs = args[1] as Record<string, unknown> | undefined;
            if (!inputs || Object.keys(inputs).length === 0) count.n += 1;
            return original.apply(this, args);
          };
    return { key, own, original };
  });
  restore = () => {
    for (const { key, own, original } of originals) {
      if (own) engine[key] = original;
      else delete (engine as Partial<Engine>)[key];
    }
  };
  return count;
}

it('the counter counts uploads and only uploads', () => {
  const a = tf.scalar(2);
  const count = countUploads();
  const made = [tf.scalar(1), tf.tensor1d([1, 2]), tf.ones([2]), tf.fill([2], 3), tf.range(0, 3), tf.linspace(0, 1, 3)];
  expect(count.n, 'six tensors made from host values').toBe(6);
  const computed = [a.add(a), tf.exp(a), a.reshape([1])];
  expect(count.n, 'kernels on tensors already on the device').toBe(6);
  expect(() => countUploads()).toThrow(/already installed/);
  tf.dispose([a, ...made, ...computed]);
});

// What a step with nothing changed may upload: SGD nothing; Adam(W) the step size and ε̂ of the
// parameters' one step count t (bias corrections 1 − β1ᵗ, 1 − β2ᵗ change with t).
const perStep: Record<OptimizerKind, number> = { sgd: 0, adam: 2, adamw: 2 };

describe('an optimizer step uploads a hyper-parameter scalar only when its value changes', () => {
  /** Three parameters trained together (one shared step count); the gradients made before counting. */
  function setup(kind: OptimizerKind, hp: Partial<HyperParams>) {
    const tensorsBefore = tf.memory().numTensors;
    // Made in a tidy: the variables' initial values and the gradients' intermediates are freed.
    const { params, grads } = tf.tidy(() => {
      const params = [tf.variable(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3])), tf.variable(tf.tensor1d([1, -2, 3])), tf.variable(tf.tensor1d([0.5]))];
      const grads = Object.fromEntries(params.map((p) => [p.name, tf.onesLike(p).mul(0.1)]));
      return { params, grads };
    });
    const opt = createOptimizer(kind, hp);
    const names = new Map(params.map((p, i) => [p, `p${i}`] as const));
    const count = countUploads();
    const step = (change?: (hp: HyperParams) => void) => {
      change?.(opt.hp);
      const before = count.n;
      opt.step(params, grads, names);
      return count.n - before;
    };
    const dispose = () => {
      opt.dispose();
      tf.dispose([...params, ...Object.values(grads)]);
      expect(tf.memory().numTensors, 'tensors left by the test').toBe(tensorsBefore);
    };
    return { step, dispose };
  }

  // One hyper-parameter changed → the scalars of the update rule it enters, uploaded once.
  const onChange: Record<OptimizerKind, Partial<Record<keyof HyperParams, number>>> = {
    sgd: { lr: 1, momentum: 1, wd: 1 },
    // β1 enters as β1 and 1 − β1, β2 as β2 and 1 − β2, the L2 wd as itself; lr and ε only
    // through the per-step step size and ε̂.
    adam: { lr: 0, momentum: 2, beta2: 2, wd: 1, eps: 0 },
    // The decay is decoupled: 1 − lr·wd, one scalar, changed by lr or by wd.
    adamw: { lr: 1, momentum: 2, beta2: 2, wd: 1, eps: 0 },
  };

  for (const kind of ['sgd', 'adam', 'adamw'] as const) {
    it(`${kind}: none for unchanged hyper-parameters (steps 2–5), the changed one's scalars once, then none again`, () => {
      const { step, dispose } = setup(kind, { lr: 0.01, momentum: 0.9, wd: 0.01 });
      try {
        step(); // the first step makes the cached scalars
        for (let s = 2; s <= 5; s++) expect(step()).toBe(perStep[kind]);
        // Set to the value it already has: nothing to upload.
        expect(step((hp) => (hp.lr = hp.lr))).toBe(perStep[kind]);
        for (const [key, extra] of Object.entries(onChange[kind]) as Array<[keyof HyperParams, number]>) {
          expect(step((hp) => (hp[key] = hp[key] * 0.5)), `after changing ${key}`).toBe(perStep[kind] + extra);
          expect(step(), `the step after changing ${key}`).toBe(perStep[kind]);
        }
      } finally {
        dispose();
      }
    });
  }

  it('sgd: a schedule changing lr at every step uploads one scalar a step, not one per parameter', () => {
    const { step, dispose } = setup('sgd', { lr: 0.01, momentum: 0.9, wd: 0.01 });
    try {
      step();
      for (let s = 1; s <= 4; s++) expect(step((hp) => (hp.lr = 0.01 / (1 + s)))).toBe(1);
    } finally {
      dispose();
    }
  });
});

describe('a fit uploads per train batch what a hand loop does outside its step, what a step may, and one scalar per changed hyper-parameter', () => {
  const N_BATCHES = 6;
  const BATCH = 8;
  const EPOCHS = 2;

  function loader() {
    const n = N_BATCHES * BATCH;
    const x = new Float32Array(n * 20);
    const y = new Float32Array(n * 3);
    let s = 7;
    for (let i = 0; i < x.length; i++) x[i] = ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
    for (let i = 0; i < n; i++) y[i * 3 + (i % 3)] = 1;
    return DataLoader.fromArrays(x, y, { batchSize: BATCH, xShape: [20], yShape: [3], shuffle: true, seed: 7 });
  }
  const model = () => mlp({ inputShape: [20], hidden: [16], classes: 3, seed: 1 });
  const spec = (kind: OptimizerKind) => ({ kind, lr: 0.01, momentum: 0.9, wd: 0.01 });

  /**
   * Uploads of one train batch of a hand loop outside its optimizer step: the data, and what
   * tfjs's gradients make (the seed of the backward pass, constants of the loss's gradient). The
   * step is left out (it runs, uncounted): what a step may upload is the first describe's
   * reference, `perStep`.
   */
  function handLoopUploadsPerBatch(kind: OptimizerKind): number {
    const train = loader();
    const m = model();
    const params = m.trainableWeights.map((w) => w.read() as tf.Variable);
    const opt: Optimizer = createOptimizer(spec(kind));
    const names = stableParamNames(m);
    const loss = resolveLoss('categoricalCrossentropy').fn;
    const count = countUploads();
    const perBatch: number[] = [];
    try {
      train.orderEpoch(0);
      for (let i = 0; i < N_BATCHES; i++) {
        const before = count.n;
        const { x, y } = train.batch(i, 0);
        const { value, grads } = tf.variableGrads(() => loss(tf.tidy(() => forward(m, x, true)), y), params);
        const beforeStep = count.n;
        opt.step(params, grads, names);
        const stepUploads = count.n - beforeStep;
        tf.dispose([value, grads, x, y]);
        perBatch.push(count.n - before - stepUploads);
      }
    } finally {
      restore?.();
      restore = null;
      opt.dispose();
      m.dispose();
    }
    const later = perBatch.slice(1);
    expect(new Set(later).size, `the hand loop's uploads per batch: ${perBatch}`).toBe(1);
    // What those are, with tfjs 4.22: the batch's x and y; the backward pass's seed, ones([]);
    // the mean's gradient, ones([8]) and the divisor 8; the sum's gradient, ones([8, 3]); the
    // clip of the probabilities, its two bounds (ε, 1 − ε). Pinned, so that an upload added to
    // the forward pass, the loss or the DataLoader (which a fit shares) is caught here too.
    expect(later[0], 'the hand loop uploads per batch (x, y and six constants of tfjs\'s gradients)').toBe(8);
    return later[0]!;
  }

  /**
   * Uploads per train batch of the fit's last epoch, from one batchEnd to the next: a whole
   * batch cycle (its batch is loaded before batchBegin's hooks run, and a scheduler sets its
   * values there). The first of them is counted from the previous epoch's last train batchEnd,
   * so what the epoch's end and the next one's beginning upload falls in it (a cache of scalars
   * dropped at every epoch shows there). Its scalars were made in the first epoch.
   */
  class UploadsPerBatch extends Callback {
    perBatch: number[] = [];
    private at: number | null = null;
    constructor(private readonly count: { n: number }) {
      super();
    }
    onBatchEnd(ctx: TrainContext) {
      if (!ctx.train) return;
      if (ctx.epoch === EPOCHS - 1) this.perBatch.push(this.count.n - this.at!);
      this.at = this.count.n;
    }
  }

  async function fitUploadsPerBatch(kind: OptimizerKind, scheds?: ConstructorParameters<typeof ParamScheduler>[0]): Promise<number[]> {
    const count = countUploads();
    const uploads = new UploadsPerBatch(count);
    const learn = new Learner({
      model: model(),
      data: { train: loader() },
      loss: 'categoricalCrossentropy',
      optimizer: spec(kind),
      progress: false,
      callbacks: [uploads, ...(scheds ? [new ParamScheduler(scheds)] : [])],
    });
    try {
      await learn.fit(EPOCHS);
    } finally {
      restore?.();
      restore = null;
      learn.dispose();
    }
    expect(uploads.perBatch).toHaveLength(N_BATCHES);
    return uploads.perBatch;
  }

  const constant = (v: number) => () => v;
  const rising = (from: number) => (pos: number) => from * (1 + pos);

  for (const kind of ['sgd', 'adam'] as const) {
    it(`${kind}: fixed hyper-parameters, or a schedule holding their values: not one upload more`, async () => {
      const base = handLoopUploadsPerBatch(kind) + perStep[kind];
      expect(await fitUploadsPerBatch(kind)).toEqual(Array(N_BATCHES).fill(base));
      expect(await fitUploadsPerBatch(kind, { lr: constant(0.01), momentum: constant(0.9), wd: constant(0.01) })).toEqual(Array(N_BATCHES).fill(base));
    });
  }

  it('sgd: lr scheduled → one more a batch; lr and momentum → two more', async () => {
    const base = handLoopUploadsPerBatch('sgd') + perStep.sgd;
    expect(await fitUploadsPerBatch('sgd', { lr: rising(0.01) })).toEqual(Array(N_BATCHES).fill(base + 1));
    expect(await fitUploadsPerBatch('sgd', { lr: rising(0.01), momentum: (pos) => 0.9 - 0.1 * pos })).toEqual(Array(N_BATCHES).fill(base + 2));
  });

  it("adam: lr scheduled → none more (it enters only the step size made every step); β1 → two more (β1, 1 − β1)", async () => {
    const base = handLoopUploadsPerBatch('adam') + perStep.adam;
    expect(await fitUploadsPerBatch('adam', { lr: rising(0.01) })).toEqual(Array(N_BATCHES).fill(base));
    expect(await fitUploadsPerBatch('adam', { beta1: (pos) => 0.9 - 0.1 * pos })).toEqual(Array(N_BATCHES).fill(base + 2));
  });
});
