import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { DataLoader } from '../src/data/dataLoader.js';
import { ConfigError, DataError } from '../src/errors.js';
import { checkTargets, resolveLoss, type LossFn, type LossName } from '../src/losses.js';
import { resolveMetric, type Metric, type MetricName } from '../src/metrics.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const PROBS = [
  [0.7, 0.2, 0.1],
  [0.1, 0.8, 0.1],
  [0.25, 0.25, 0.5],
  [0.0, 1.0, 0.0], // exact 0 on the true class → clipped
];
const LABELS = [0, 2, 2, 0];
const ONE_HOT = LABELS.map((l) => [0, 1, 2].map((c) => (c === l ? 1 : 0)));

function scalarOf(f: () => tf.Scalar): number {
  const before = tf.memory().numTensors;
  const s = f();
  const v = s.dataSync()[0]!;
  s.dispose();
  // The loss/metric must not leave intermediates behind.
  expect(tf.memory().numTensors).toBe(before);
  return v;
}

function errorOf(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw');
}

describe('losses', () => {
  const ce = resolveLoss('categoricalCrossentropy');
  const sparse = resolveLoss('sparseCategoricalCrossentropy');
  const mse = resolveLoss('meanSquaredError');

  it('categoricalCrossentropy = mean over the batch of −log p(true class), clipped at 1e-7', () => {
    const expected = -(Math.log(0.7) + Math.log(0.1) + Math.log(0.5) + Math.log(1e-7)) / 4;
    const yPred = tf.tensor2d(PROBS);
    const yTrue = tf.tensor2d(ONE_HOT);
    expect(ce.name).toBe('categoricalCrossentropy');
    expect(scalarOf(() => ce.fn(yPred, yTrue))).toBeCloseTo(expected, 4);
    tf.dispose([yPred, yTrue]);
  });

  it('categoricalCrossentropy weighs soft targets', () => {
    const yPred = tf.tensor2d([[0.6, 0.4]]);
    const yTrue = tf.tensor2d([[0.3, 0.7]]);
    expect(scalarOf(() => ce.fn(yPred, yTrue))).toBeCloseTo(-(0.3 * Math.log(0.6) + 0.7 * Math.log(0.4)), 6);
    tf.dispose([yPred, yTrue]);
  });

  it('categoricalCrossentropy gradient wrt the probabilities is −yTrue/(p·batch) where unclipped', () => {
    const yPred = tf.tensor2d(PROBS.slice(0, 3));
    const yTrue = tf.tensor2d(ONE_HOT.slice(0, 3));
    const g = tf.grad((p: tf.Tensor) => ce.fn(p, yTrue))(yPred);
    const expected = ONE_HOT.slice(0, 3).flatMap((row, i) => row.map((t, c) => (-t / PROBS[i]![c]!) / 3));
    Array.from(g.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 4));
    tf.dispose([yPred, yTrue, g]);
  });

  it('sparseCategoricalCrossentropy equals categorical on the one-hot labels, for [b] and [b,1], int and float labels', () => {
    const yPred = tf.tensor2d(PROBS);
    const oneHot = tf.tensor2d(ONE_HOT);
    const want = scalarOf(() => ce.fn(yPred, oneHot));
    const variants = [
      tf.tensor1d(LABELS, 'int32'),
      tf.tensor2d(LABELS.map((l) => [l]), [4, 1], 'int32'),
      tf.tensor1d(LABELS, 'float32'),
    ];
    for (const labels of variants) expect(scalarOf(() => sparse.fn(yPred, labels))).toBeCloseTo(want, 6);
    tf.dispose([yPred, oneHot, ...variants]);
  });

  it('meanSquaredError is the mean over all elements', () => {
    const yPred = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    const yTrue = tf.tensor2d([
      [1.5, 2],
      [1, 7],
    ]);
    expect(scalarOf(() => mse.fn(yPred, yTrue))).toBeCloseTo((0.25 + 0 + 4 + 9) / 4, 6);
    tf.dispose([yPred, yTrue]);
  });

  it('meanSquaredError reshapes a [b] target for a [b,1] output instead of broadcasting to [b,b]', () => {
    const yPred = tf.tensor2d([[1], [2], [3]]);
    const yTrue = tf.tensor1d([1, 2, 5]);
    expect(scalarOf(() => mse.fn(yPred, yTrue))).toBeCloseTo(4 / 3, 6);
    tf.dispose([yPred, yTrue]);
  });

  it('the losses refuse mismatched shapes with a DataError instead of broadcasting', () => {
    const yPred = tf.tensor2d(PROBS);
    const labels = tf.tensor1d(LABELS, 'int32');
    const wide = tf.zeros([4, 5]);
    const e1 = errorOf(() => ce.fn(yPred, labels));
    expect(e1).toBeInstanceOf(DataError);
    expect(e1.message).toMatch(/shaped like the predictions \[4, 3\], got targets of shape \[4\].*labels: 'sparse'/);
    expect(errorOf(() => ce.fn(yPred, wide)).message).toMatch(/\[4, 5\]/);
    const oneHot = tf.tensor2d(ONE_HOT);
    const e2 = errorOf(() => sparse.fn(yPred, oneHot));
    expect(e2).toBeInstanceOf(DataError);
    expect(e2.message).toMatch(/labels of shape \[4\].*got labels of shape \[4, 3\]; these look one-hot/);
    expect(errorOf(() => mse.fn(yPred, wide))).toBeInstanceOf(DataError);
    tf.dispose([yPred, labels, wide, oneHot]);
  });

  it('resolveLoss passes custom functions through and rejects unknown names', () => {
    const myLoss: LossFn = (p, t) => tf.mean(tf.abs(tf.sub(p, t)));
    expect(resolveLoss(myLoss)).toEqual({ name: 'myLoss', fn: myLoss });
    expect(resolveLoss((p, t) => tf.mean(tf.sub(p, t))).name).toBe('customLoss');
    const e = errorOf(() => resolveLoss('crossEntropy' as LossName));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toBe(
      "unknown loss 'crossEntropy'; use one of 'categoricalCrossentropy', 'sparseCategoricalCrossentropy', " +
        "'meanSquaredError', or pass a function (yPred, yTrue) => tf.Scalar",
    );
    expect(errorOf(() => resolveLoss('toString' as LossName))).toBeInstanceOf(ConfigError);
  });
});

describe('checkTargets', () => {
  it('accepts matching targets', () => {
    expect(() => checkTargets('categoricalCrossentropy', [10], [10], 'float32')).not.toThrow();
    expect(() => checkTargets('sparseCategoricalCrossentropy', [10], [], 'int32')).not.toThrow();
    expect(() => checkTargets('sparseCategoricalCrossentropy', [10], [1], 'float32')).not.toThrow();
    expect(() => checkTargets('meanSquaredError', [3], [3], 'float32')).not.toThrow();
    expect(() => checkTargets('meanSquaredError', [1], [], 'float32')).not.toThrow();
    expect(() => checkTargets('myCustomLoss', [10], [7, 7], 'string')).not.toThrow();
  });

  const cases: Array<[string, Parameters<typeof checkTargets>, RegExp]> = [
    [
      'int labels with categorical',
      ['categoricalCrossentropy', [10], [], 'int32'],
      /needs one-hot targets of shape \[10\] but the targets are class labels of shape \[\]; use labels: 'sparse' with sparseCategoricalCrossentropy/,
    ],
    [
      'one-hot width ≠ classes',
      ['categoricalCrossentropy', [10], [5], 'float32'],
      /one-hot targets of shape \[5\] do not match the model output \[10\] \(10 classes\)/,
    ],
    [
      'one-hot labels with sparse',
      ['sparseCategoricalCrossentropy', [10], [10], 'float32'],
      /shape \[\] or \[1\] per sample for a model output of \[10\], got targets of shape \[10\]; these look one-hot/,
    ],
    [
      'sparse labels with a non-class output',
      ['sparseCategoricalCrossentropy', [1], [], 'int32'],
      /needs a model output of class probabilities.*the model outputs \[1\]/,
    ],
    ['categorical on a 2-D output', ['categoricalCrossentropy', [4, 4], [4, 4], 'float32'], /the model outputs \[4, 4\]/],
    ['bool labels with sparse', ['sparseCategoricalCrossentropy', [3], [], 'bool'], /got bool targets; cast them to int32/],
    [
      'MSE shape mismatch',
      ['meanSquaredError', [3], [2], 'float32'],
      /meanSquaredError needs targets shaped like the model output \[3\], got targets of shape \[2\]/,
    ],
    ['string targets', ['meanSquaredError', [1], [1], 'string'], /needs numeric targets, got string targets/],
  ];
  for (const [name, args, msg] of cases) {
    it(`rejects ${name} with a DataError`, () => {
      const e = errorOf(() => checkTargets(...args));
      expect(e).toBeInstanceOf(DataError);
      expect((e as DataError).code).toBe('DATA');
      expect(e.message).toMatch(msg);
    });
  }
});

describe('checkTargets with the labels\' range (sparse labels must be 0 … classes − 1)', () => {
  it('label 5 with 3 classes, or a negative label, is a DataError naming the label and the classes', () => {
    const loader = DataLoader.fromArrays(new Float32Array(4 * 4), [0, 5, 2, 1], { batchSize: 2, xShape: [4] });
    const e = errorOf(() => checkTargets('sparseCategoricalCrossentropy', [3], loader.targetShape, loader.targetDtype, loader.labelRange()));
    expect(e).toBeInstanceOf(DataError);
    expect(e.message).toMatch(/the targets hold the class label 5, but the model outputs \[3\] \(3 classes, labels 0 … 2\)/);
    const negative = errorOf(() => checkTargets('sparseCategoricalCrossentropy', [3], [], 'int32', { min: -1, max: 2 }));
    expect(negative.message).toMatch(/class label -1/);
  });

  it('labels inside the range pass, and the range only matters to sparse labels', () => {
    expect(() => checkTargets('sparseCategoricalCrossentropy', [3], [], 'int32', { min: 0, max: 2 })).not.toThrow();
    expect(() => checkTargets('sparseCategoricalCrossentropy', [3], [1], 'int32', null)).not.toThrow();
    // One-hot int32 targets hold 0 and 1 whatever the classes; MSE targets are values, not labels.
    expect(() => checkTargets('categoricalCrossentropy', [3], [3], 'int32', { min: 0, max: 1 })).not.toThrow();
    expect(() => checkTargets('meanSquaredError', [1], [], 'int32', { min: 0, max: 100 })).not.toThrow();
  });

  it('the silent failure it prevents: an out-of-range label one-hot encodes to zeros, and its loss is 0', () => {
    const probs = tf.tensor2d([[0.2, 0.3, 0.5]]);
    const labels = tf.tensor1d([5], 'int32');
    expect(scalarOf(() => resolveLoss('sparseCategoricalCrossentropy').fn(probs, labels))).toBeCloseTo(0, 7);
    tf.dispose([probs, labels]);
  });
});

describe('metrics', () => {
  // argMax per row: 0, 1, 2, 1
  const yPred = () => tf.tensor2d(PROBS);

  it('accuracy against one-hot targets', () => {
    const p = yPred();
    const t = tf.tensor2d(ONE_HOT); // labels 0, 2, 2, 0 → hits on rows 0 and 2
    const acc = resolveMetric('accuracy');
    expect(acc.name).toBe('accuracy');
    expect(scalarOf(() => acc.fn(p, t))).toBeCloseTo(0.5, 6);
    tf.dispose([p, t]);
  });

  it('accuracy against int labels, [b] and [b,1], int32 and float32', () => {
    const p = yPred();
    const acc = resolveMetric('accuracy');
    const variants = [
      tf.tensor1d([0, 1, 2, 0], 'int32'), // 3 of 4
      tf.tensor2d([[0], [1], [2], [0]], [4, 1], 'int32'),
      tf.tensor1d([0, 1, 2, 0], 'float32'),
    ];
    for (const t of variants) expect(scalarOf(() => acc.fn(p, t))).toBeCloseTo(0.75, 6);
    // An int32 one-hot is still one-hot (shape decides, not dtype).
    const intOneHot = tf.tensor2d(ONE_HOT, [4, 3], 'int32');
    expect(scalarOf(() => acc.fn(p, intOneHot))).toBeCloseTo(0.5, 6);
    tf.dispose([p, intOneHot, ...variants]);
  });

  it('errorRate = 1 − accuracy', () => {
    const p = yPred();
    const t = tf.tensor1d([0, 1, 2, 0], 'int32');
    const err = resolveMetric('errorRate');
    expect(err.name).toBe('errorRate');
    expect(scalarOf(() => err.fn(p, t))).toBeCloseTo(0.25, 6);
    tf.dispose([p, t]);
  });

  it('rejects targets that are neither one-hot nor one label per sample', () => {
    const p = yPred();
    const t = tf.zeros([4, 2]);
    const e = errorOf(() => resolveMetric('accuracy').fn(p, t));
    expect(e).toBeInstanceOf(DataError);
    expect(e.message).toMatch(/one-hot targets of shape \[4, 3\] or class labels of shape \[4\], got \[4, 2\]/);
    tf.dispose([p, t]);
  });

  it('resolveMetric passes custom metrics through and rejects unknown ones', () => {
    const custom: Metric = { name: 'top1', fn: (p, t) => tf.mean(tf.sub(p, t)) };
    expect(resolveMetric(custom)).toBe(custom);
    const e = errorOf(() => resolveMetric('acc' as MetricName));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toMatch(/unknown metric 'acc'; use one of 'accuracy', 'errorRate'/);
    expect(errorOf(() => resolveMetric({ name: 'x' } as Metric))).toBeInstanceOf(ConfigError);
  });
});
