/**
 * learn.validate / getPreds / predict / dispose, against independent references: tfjs's own
 * `model.predict` (inference mode) and `tf.metrics` formulas over the whole dataset at once,
 * a twin learner that never called them (nothing changed), and tf.memory() counts.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Callback } from '../src/loop/callback.js';
import { DataLoader } from '../src/data/dataLoader.js';
import { ConfigError, DataError, StageError } from '../src/errors.js';
import { Learner, type LearnerOptions } from '../src/learner.js';
import type { TrainContext } from '../src/loop/context.js';
import { SeededDropout, rngStatefulLayers } from '../src/models/seededDropout.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const FEATURES = 4;
const CLASSES = 3;

/** n samples of 4 features; labels from a fixed rule so a model can learn something. */
function samples(n: number, offset: number) {
  const x = new Float32Array(n * FEATURES);
  const labels = new Int32Array(n);
  const oneHot = new Float32Array(n * CLASSES);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < FEATURES; j++) x[i * FEATURES + j] = Math.sin((i + offset) * 1.7 + j * 0.9);
    labels[i] = (i * 7 + offset) % CLASSES;
    oneHot[i * CLASSES + labels[i]!] = 1;
  }
  return { x, labels, oneHot, n };
}

/** 4 → 6 relu → SeededDropout(0.5) → 3 softmax: the dropout makes inference mode and the rng stream observable. */
function model(seed = 11) {
  return tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [FEATURES], units: 6, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
      new SeededDropout({ rate: 0.5, seed: 5 }),
      tf.layers.dense({ units: CLASSES, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }),
    ],
  });
}

const TRAIN = samples(14, 0);
const VALID = samples(10, 100); // batch 4: batches of 4, 4 and 2, so a plain mean of batch means would be wrong

function learner(extra: Partial<LearnerOptions> = {}) {
  const train = DataLoader.fromArrays(TRAIN.x, TRAIN.oneHot, { batchSize: 4, xShape: [FEATURES], yShape: [CLASSES], shuffle: true, seed: 9 });
  const valid = DataLoader.fromArrays(VALID.x, VALID.oneHot, { batchSize: 4, xShape: [FEATURES], yShape: [CLASSES] });
  return new Learner({
    model: model(),
    data: { train, valid },
    loss: 'categoricalCrossentropy',
    optimizer: 'adam',
    metrics: ['accuracy', 'errorRate'],
    seed: 3,
    ...extra,
  });
}

/** The reference: tfjs's model.predict over all of x at once, and tf.metrics' per-sample formulas averaged over all samples. */
function reference(m: tf.LayersModel, x: Float32Array, oneHot: Float32Array, n: number) {
  return tf.tidy(() => {
    const xs = tf.tensor2d(x, [n, FEATURES]);
    const ys = tf.tensor2d(oneHot, [n, CLASSES]);
    const preds = m.predict(xs) as tf.Tensor;
    return {
      validLoss: tf.mean(tf.metrics.categoricalCrossentropy(ys, preds)).dataSync()[0]!,
      accuracy: tf.mean(tf.metrics.categoricalAccuracy(ys, preds)).dataSync()[0]!,
      preds: preds.arraySync() as number[][],
    };
  });
}

const bytesOf = (m: tf.LayersModel) => m.getWeights().map((w) => Buffer.from((w.dataSync() as Float32Array).slice().buffer));

describe('learn.validate', () => {
  it('equals the loss and metrics computed directly over the whole valid set (batch-size weighted), after training', async () => {
    const learn = learner();
    const fit = await learn.fit(2, { lr: 0.05 });
    const got = learn.validate();
    const ref = reference(learn.model, VALID.x, VALID.oneHot, VALID.n);
    expect(Object.keys(got).sort()).toEqual(['accuracy', 'errorRate', 'validLoss']);
    expect(got.validLoss).toBeCloseTo(ref.validLoss, 6);
    expect(got.accuracy).toBeCloseTo(ref.accuracy, 6);
    expect(got.errorRate).toBeCloseTo(1 - ref.accuracy, 6);
    // The loop's own validation pass of the last epoch ran on these same weights.
    expect(got.validLoss).toBeCloseTo(fit.metrics!.validLoss!, 6);
    expect(got.accuracy).toBe(fit.metrics!.accuracy);
    learn.dispose();
  });

  it('on a given loader (the shuffled train set): the loss over that set; sparse labels likewise', () => {
    const learn = learner();
    const ref = reference(learn.model, TRAIN.x, TRAIN.oneHot, TRAIN.n);
    const got = learn.validate(learn.data.train);
    expect(got.validLoss).toBeCloseTo(ref.validLoss, 6);
    expect(got.accuracy).toBeCloseTo(ref.accuracy, 6);
    learn.dispose();

    const sparseValid = DataLoader.fromArrays(VALID.x, VALID.labels, { batchSize: 3, xShape: [FEATURES] });
    const sparse = new Learner({
      model: model(),
      data: { train: sparseValid },
      loss: 'sparseCategoricalCrossentropy',
      metrics: ['accuracy'],
    });
    const r = tf.tidy(() => {
      const preds = sparse.model.predict(tf.tensor2d(VALID.x, [VALID.n, FEATURES])) as tf.Tensor;
      return {
        accuracy: tf.mean(tf.metrics.sparseCategoricalAccuracy(tf.tensor1d(VALID.labels, 'float32'), preds)).dataSync()[0]!,
        loss: tf.mean(tf.metrics.categoricalCrossentropy(tf.oneHot(tf.tensor1d(VALID.labels, 'int32'), CLASSES), preds)).dataSync()[0]!,
      };
    });
    const s = sparse.validate(sparseValid);
    expect(s.accuracy).toBeCloseTo(r.accuracy, 6);
    expect(s.validLoss).toBeCloseTo(r.loss, 6);
    sparse.dispose();
  });

  it('no validation data and no loader, or something else than a DataLoader: ConfigError; a loader of the wrong shape: DataError', () => {
    const learn = learner();
    const noValid = new Learner({ model: model(), data: { train: learn.data.train }, loss: 'categoricalCrossentropy' });
    expect(() => noValid.validate()).toThrow(ConfigError);
    expect(() => noValid.validate()).toThrow(/no validation data.*pass a DataLoader/);
    expect(() => noValid.getPreds()).toThrow(/no validation data/);
    expect(() => learn.validate({} as never)).toThrow(/loader must be a DataLoader.*got a Object/);
    const wide = DataLoader.fromArrays(new Float32Array(10), new Float32Array(2 * CLASSES), { batchSize: 2, xShape: [5], yShape: [CLASSES] });
    expect(() => learn.validate(wide)).toThrow(DataError);
    expect(() => learn.validate(wide)).toThrow(/input samples have shape \[5\] but the model expects \[4\]/);
    const sparseTargets = DataLoader.fromArrays(VALID.x, VALID.labels, { batchSize: 4, xShape: [FEATURES] });
    expect(() => learn.validate(sparseTargets)).toThrow(/categoricalCrossentropy needs one-hot targets/);
    learn.dispose();
    noValid.dispose();
  });

  it('a loss or metric that returns more than one number is a ConfigError; after any of these errors nothing leaked and the learner still fits', async () => {
    const perSample = (yPred: tf.Tensor, yTrue: tf.Tensor) => tf.sum(tf.squaredDifference(yPred, yTrue), -1) as tf.Scalar;
    const learn = learner({ loss: perSample });
    const before = tf.memory().numTensors;
    expect(() => learn.validate()).toThrow(ConfigError);
    expect(() => learn.validate()).toThrow(/the loss must return one number per batch \(a tf.Scalar, the batch mean\), got a tensor of shape \[4\]/);
    const badMetric = learner({ metrics: [{ name: 'rows', fn: (p) => tf.sum(p, -1) as tf.Scalar }] });
    expect(() => badMetric.validate()).toThrow(/metric rows must return one number per batch/);
    expect(() => badMetric.predict([1, 2, 3])).toThrow(DataError);
    expect(() => badMetric.validate({} as never)).toThrow(ConfigError);
    expect(tf.memory().numTensors).toBe(before + badMetric.model.weights.length);
    badMetric.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const ok = learner();
    await expect(ok.fit(1)).resolves.toMatchObject({ status: 'completed' });
    expect(() => ok.validate({} as never)).toThrow(ConfigError);
    expect(Object.keys(ok.validate())).toContain('validLoss');
    ok.dispose();
    learn.dispose();
  });

  it("in fit's validation too: a per-row metric fails the run naming it (never read as its first element), nothing leaked", async () => {
    const badMetric = learner({ metrics: [{ name: 'rows', fn: (p) => tf.sum(p, -1) as tf.Scalar }] });
    const before = tf.memory().numTensors;
    const err = (await badMetric.fit(1).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/metric rows must return one number per batch \(a tf.Scalar, the batch mean\), got a tensor of shape \[4\]/);
    // The optimizer's state is the fit's to keep (it made one step per train batch).
    expect(tf.memory().numTensors - badMetric.optimizer.numTensors).toBe(before);
    badMetric.dispose();
  });
});

describe('learn.getPreds', () => {
  it('matches model.predict over the valid set, targets in loader order; the caller owns both tensors', () => {
    const learn = learner();
    const before = tf.memory().numTensors;
    const { preds, targets } = learn.getPreds();
    expect(tf.memory().numTensors).toBe(before + 2);
    const ref = reference(learn.model, VALID.x, VALID.oneHot, VALID.n);
    expect(preds.shape).toEqual([VALID.n, CLASSES]);
    const got = preds.arraySync() as number[][];
    got.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(ref.preds[i]![j]!, 6)));
    expect(Array.from(targets.dataSync())).toEqual(Array.from(VALID.oneHot));
    tf.dispose([preds, targets]);
    expect(tf.memory().numTensors).toBe(before);
    learn.dispose();
  });

  it('on a shuffled loader: its current epoch order, each prediction beside its own target', () => {
    const learn = learner();
    const train = learn.data.train;
    train.startEpoch(4);
    const { preds, targets } = learn.getPreds(train);
    // Where each target's sample sits in TRAIN: samples are distinct, so match by features of the x batches.
    const xs: number[][] = [];
    for (let b = 0; b < train.nBatches; b++) {
      const { x, y } = train.batch(b);
      xs.push(...(x.arraySync() as number[][]));
      tf.dispose([x, y]);
    }
    const order = xs.map((row) => {
      for (let i = 0; i < TRAIN.n; i++) if (row.every((v, j) => v === TRAIN.x[i * FEATURES + j])) return i;
      return -1;
    });
    expect(order.slice().sort((a, b) => a - b)).toEqual([...Array(TRAIN.n).keys()]);
    expect(order).not.toEqual([...Array(TRAIN.n).keys()]); // really shuffled
    const ref = reference(learn.model, TRAIN.x, TRAIN.oneHot, TRAIN.n);
    const p = preds.arraySync() as number[][];
    const t = targets.arraySync() as number[][];
    order.forEach((src, i) => {
      p[i]!.forEach((v, j) => expect(v).toBeCloseTo(ref.preds[src]![j]!, 6));
      expect(t[i]).toEqual(Array.from(TRAIN.oneHot.subarray(src * CLASSES, (src + 1) * CLASSES)));
    });
    tf.dispose([preds, targets]);
    learn.dispose();
  });
});

describe('learn.predict', () => {
  it('one sample as nested array, typed array or tensor: the output without a batch axis and its argmax class', () => {
    const learn = learner();
    const ref = reference(learn.model, VALID.x, VALID.oneHot, VALID.n);
    const row = Array.from(VALID.x.subarray(0, FEATURES));
    const refClass = ref.preds[0]!.indexOf(Math.max(...ref.preds[0]!));
    const t = tf.tensor1d(row);
    const before = tf.memory().numTensors;
    for (const input of [row, Float32Array.from(row), Float64Array.from(row), t]) {
      const p = learn.predict(input);
      expect(p.batch).toBe(false);
      expect(p.output.shape).toEqual([CLASSES]);
      Array.from(p.output.dataSync()).forEach((v, j) => expect(v).toBeCloseTo(ref.preds[0]![j]!, 6));
      expect(p.classes).toEqual([refClass]);
      expect(tf.memory().numTensors).toBe(before + 1); // only the output, which the caller owns
      p.output.dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
    expect(t.isDisposed).toBe(false); // the caller's input stays theirs
    t.dispose();
    learn.dispose();
  });

  it('a batch as tensor, nested array, flat typed array or int32 tensor: [n, classes] and one class per sample', () => {
    const learn = learner();
    const ref = reference(learn.model, VALID.x, VALID.oneHot, VALID.n);
    const refClasses = ref.preds.map((r) => r.indexOf(Math.max(...r)));
    const nested = [...Array(VALID.n).keys()].map((i) => Array.from(VALID.x.subarray(i * FEATURES, (i + 1) * FEATURES)));
    const t = tf.tensor2d(VALID.x, [VALID.n, FEATURES]);
    const before = tf.memory().numTensors;
    for (const input of [t, nested, VALID.x]) {
      const p = learn.predict(input);
      expect(p.batch).toBe(true);
      expect(p.output.shape).toEqual([VALID.n, CLASSES]);
      (p.output.arraySync() as number[][]).forEach((r, i) => r.forEach((v, j) => expect(v).toBeCloseTo(ref.preds[i]![j]!, 6)));
      expect(p.classes).toEqual(refClasses);
      p.output.dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
    const ints = tf.tensor2d([[1, 0, 2, 3]], [1, FEATURES], 'int32');
    const p = learn.predict(ints);
    const r = tf.tidy(() => (learn.model.predict(tf.tensor2d([[1, 0, 2, 3]])) as tf.Tensor).dataSync());
    Array.from(p.output.dataSync()).forEach((v, j) => expect(v).toBeCloseTo(r[j]!, 6));
    tf.dispose([p.output, ints, t]);
    learn.dispose();
  });

  it('no classes for a model trained on another loss; inputs of the wrong shape or kind are DataErrors', () => {
    const train = DataLoader.fromArrays(TRAIN.x, TRAIN.oneHot, { batchSize: 4, xShape: [FEATURES], yShape: [CLASSES] });
    const reg = new Learner({ model: model(), data: { train }, loss: 'meanSquaredError' });
    const p = reg.predict([1, 2, 3, 4]);
    expect(p.classes).toBeNull();
    p.output.dispose();
    const before = tf.memory().numTensors;
    const cases: Array<[unknown, RegExp]> = [
      [[1, 2, 3], /input has shape \[3\], but the model takes one sample of shape \[4\] or a batch of shape \[n, 4\]/],
      [[[1, 2, 3, 4], [1, 2]], /input\[1\] has length 2.*ragged/],
      [[1, 'a', 3, 4], /input\[1\] is the string "a", expected a number/],
      [new Float32Array(6), /flat typed array of 6 values is neither one sample nor a batch.*4 values each/],
      [new Float32Array(0), /flat typed array of 0 values/],
      [tf.zeros([2, 2, 4]), /input has shape \[2, 2, 4\]/],
      ['1,2,3,4', /must be a tf.Tensor, a \(nested\) array of numbers or a typed array, got the string/],
      [[], /empty dimension/],
    ];
    for (const [input, message] of cases) {
      expect(() => reg.predict(input as never), String(message)).toThrow(DataError);
      expect(() => reg.predict(input as never)).toThrow(message);
      if (input instanceof tf.Tensor) input.dispose();
    }
    const gone = tf.ones([4]);
    gone.dispose();
    expect(() => reg.predict(gone)).toThrow(/input tensor is disposed/);
    const words = tf.tensor(['a', 'b', 'c', 'd']);
    expect(() => reg.predict(words)).toThrow(/input has dtype string; pass numbers/);
    words.dispose();
    // A sample shape with an unknown dimension: a flat typed array cannot be reshaped to it, a nested array can.
    const ragged = new Learner({
      model: tf.sequential({ layers: [tf.layers.dense({ inputShape: [null, FEATURES] as never, units: 2 })] }),
      data: { train },
      loss: 'meanSquaredError',
    });
    expect(() => ragged.predict(new Float32Array(8))).toThrow(/cannot be reshaped to the model's sample shape \[\?, 4\].*unknown dimension/);
    const ok = ragged.predict([[1, 2, 3, 4], [5, 6, 7, 8]]);
    expect(ok.batch).toBe(false);
    expect(ok.output.shape).toEqual([2, 2]);
    ok.output.dispose();
    ragged.dispose();
    expect(tf.memory().numTensors).toBe(before);
    reg.dispose();
  });
});

describe('nothing changes', () => {
  it('validate, getPreds and predict between two fits leave the run exactly as without them (weights, optimizer, every random stream, the shuffle)', async () => {
    const a = learner();
    const b = learner();
    await a.fit(1, { lr: 0.05 });
    await b.fit(1, { lr: 0.05 });
    const optimizerBefore = a.optimizer.getState();
    const rngBefore = a.rng.getState();
    const dropoutBefore = rngStatefulLayers(a.model).map((l) => l.getRngState());
    const trainBefore = a.data.train.getState();
    const weightsBefore = bytesOf(a.model);
    const memBefore = tf.memory().numTensors;

    a.validate();
    a.validate(a.data.train);
    const { preds, targets } = a.getPreds(a.data.train);
    const p = a.predict(VALID.x);
    tf.dispose([preds, targets, p.output]);

    expect(tf.memory().numTensors).toBe(memBefore);
    expect(bytesOf(a.model)).toEqual(weightsBefore);
    expect(a.optimizer.getState()).toEqual(optimizerBefore);
    expect(a.rng.getState()).toEqual(rngBefore);
    expect(rngStatefulLayers(a.model).map((l) => l.getRngState())).toEqual(dropoutBefore);
    expect(a.data.train.getState()).toEqual(trainBefore);
    // The twin that never called them trains to the same bytes.
    await a.fit(2, { lr: 0.05 });
    await b.fit(2, { lr: 0.05 });
    expect(bytesOf(a.model)).toEqual(bytesOf(b.model));
    a.dispose();
    b.dispose();
  });

  it('validate, getPreds, predict, exportModel and dispose during a fit (from a hook) are refused with a ConfigError', async () => {
    for (const call of ['validate', 'getPreds', 'predict', 'exportModel', 'dispose'] as const) {
      let exported: Promise<unknown> | null = null;
      class Meddle extends Callback {
        onEpochEnd(_ctx: TrainContext) {
          const learn = this.learn as Learner;
          if (call === 'predict') learn.predict([1, 2, 3, 4]);
          // exportModel returns a promise: it rejects (and the fit goes on).
          else if (call === 'exportModel') {
            exported = learn.exportModel('/tmp/never-written');
            // Handled now, asserted after the fit: the fit yields to the event loop in between.
            exported.catch(() => {});
          }
          else learn[call]();
        }
      }
      const learn = learner({ callbacks: [new Meddle()] });
      const message = new RegExp(`learn\\.${call}: a fit is running on this learner`);
      if (call === 'exportModel') {
        await expect(learn.fit(1)).resolves.toMatchObject({ status: 'completed' });
        await expect(exported).rejects.toThrow(ConfigError);
        await expect(exported).rejects.toThrow(message);
      } else {
        const error = (await learn.fit(1).catch((e: unknown) => e)) as StageError;
        expect(error, call).toBeInstanceOf(StageError);
        expect(error.cause, call).toBeInstanceOf(ConfigError);
        expect((error.cause as Error).message).toMatch(message);
      }
      // The learner still works: the model was not disposed, a new fit runs.
      learn.removeCallback(learn.callbacks.at(-1)!);
      await expect(learn.fit(1)).resolves.toMatchObject({ status: 'completed' });
      learn.dispose();
    }
  });
});

describe('learn.dispose', () => {
  it('frees the model and the optimizer state: tensors back to the count before the model was built', async () => {
    const before = tf.memory().numTensors;
    const learn = learner();
    await learn.fit(1);
    expect(learn.optimizer.numTensors).toBeGreaterThan(0); // Adam's moments exist, and must go too
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    learn.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(learn.disposed).toBe(true);
    learn.dispose(); // a second dispose does nothing
    expect(tf.memory().numTensors).toBe(before);
  });

  it('afterwards every method throws a ConfigError saying the learner is disposed', async () => {
    const learn = learner();
    const train = learn.data.train;
    learn.dispose();
    const calls: Array<[string, () => unknown]> = [
      ['fit', () => learn.fit(1)],
      ['fitOneCycle', () => learn.fitOneCycle(1)],
      ['lrFind', () => learn.lrFind()],
      ['validate', () => learn.validate()],
      ['getPreds', () => learn.getPreds(train)],
      ['predict', () => learn.predict([1, 2, 3, 4])],
      ['exportModel', () => learn.exportModel('/tmp/never-written')],
      ['describeLoop', () => learn.describeLoop()],
      ['callbackStates', () => learn.callbackStates()],
      ['addCallback', () => learn.addCallback(new (class extends Callback {})())],
      ['removeCallback', () => learn.removeCallback(learn.callbacks[0]!)],
    ];
    for (const [name, call] of calls) {
      let error: unknown;
      try {
        const result = call();
        // The methods that return a promise reject; the others throw.
        if (['fit', 'fitOneCycle', 'lrFind', 'exportModel'].includes(name)) expect(result, name).toBeInstanceOf(Promise);
        await result;
      } catch (e) {
        error = e;
      }
      expect(error, name).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(new RegExp(`learn\\.${name}: this learner is disposed.*build a new Learner`));
    }
  });
});
