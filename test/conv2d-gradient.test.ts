import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { registerConv2dGradient, stockConv2dGradient } from '../src/backend/conv2dGradient.js';
import { selectBackend } from '../src/backend/selectBackend.js';
import { ConfigError } from '../src/errors.js';
import { cnn } from '../src/models/presets.js';
import { Rng } from '../src/rng.js';

type Shape4 = [number, number, number, number];
type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

interface Case {
  x: Shape4; // NHWC (or NCHW when dataFormat says so)
  f: Shape4; // [kh, kw, cin, cout]
  strides: number | [number, number];
  pad: Pad;
  dataFormat?: 'NHWC' | 'NCHW';
}

function randomTensor(shape: number[], rng: Rng): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.nextFloat() * 2 - 1;
  return tf.tensor(v, shape);
}

/** max |a − b| relative to the largest |b|, so the tolerance does not depend on the scale. */
function relErr(a: tf.Tensor, b: tf.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  const av = a.dataSync();
  const bv = b.dataSync();
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < av.length; i++) {
    diff = Math.max(diff, Math.abs(av[i]! - bv[i]!));
    scale = Math.max(scale, Math.abs(bv[i]!));
  }
  return diff / Math.max(scale, 1e-12);
}

/** Gradients through the registered Conv2D gradient, with dy = `dy`. */
function autodiffGrads(x: tf.Tensor4D, f: tf.Tensor4D, dy: tf.Tensor, c: Case, dilations: number | [number, number] = 1) {
  const g = tf.grads((xx: tf.Tensor, ff: tf.Tensor) =>
    tf.sum(tf.mul(tf.conv2d(xx as tf.Tensor4D, ff as tf.Tensor4D, c.strides, c.pad, c.dataFormat ?? 'NHWC', dilations), dy)),
  );
  const [dx, df] = g([x, f]);
  return { dx: dx!, df: df! };
}

const stockCases: Case[] = [
  { x: [2, 5, 5, 3], f: [3, 3, 3, 4], strides: 1, pad: 'same' },
  { x: [2, 6, 6, 3], f: [3, 3, 3, 2], strides: 2, pad: 'same' },
  { x: [2, 7, 7, 2], f: [3, 3, 2, 3], strides: 2, pad: 'same' },
  { x: [3, 7, 6, 2], f: [2, 2, 2, 5], strides: 2, pad: 'same' }, // even kernel: asymmetric 'same'
  { x: [2, 8, 8, 3], f: [4, 4, 3, 2], strides: 2, pad: 'same' },
  { x: [2, 9, 10, 2], f: [5, 3, 2, 2], strides: [3, 2], pad: 'same' },
  { x: [2, 7, 7, 3], f: [3, 3, 3, 4], strides: 1, pad: 'valid' },
  { x: [2, 8, 7, 3], f: [3, 3, 3, 2], strides: 2, pad: 'valid' }, // trailing rows never read
  { x: [4, 9, 9, 1], f: [5, 3, 1, 2], strides: [3, 2], pad: 'valid' },
  { x: [2, 6, 6, 1], f: [6, 6, 1, 3], strides: 1, pad: 'valid' }, // kernel covers the whole image
  { x: [4, 28, 28, 1], f: [3, 3, 1, 16], strides: 1, pad: 'valid' }, // cnn() first layer
  { x: [2, 7, 7, 2], f: [3, 3, 2, 3], strides: 2, pad: 1 },
  { x: [2, 7, 8, 2], f: [3, 3, 2, 3], strides: 2, pad: [[0, 0], [1, 2], [2, 0], [0, 0]] },
  { x: [2, 3, 7, 7], f: [3, 3, 3, 2], strides: 2, pad: 'same', dataFormat: 'NCHW' },
  { x: [2, 3, 8, 6], f: [2, 2, 3, 2], strides: 1, pad: 'valid', dataFormat: 'NCHW' },
];

const caseName = (c: Case) =>
  `x ${c.x.join('x')} f ${c.f.join('x')} stride ${String(c.strides)} pad ${JSON.stringify(c.pad)} ${c.dataFormat ?? 'NHWC'}`;

describe('Conv2D gradient from forward convolutions (cpu)', () => {
  beforeAll(async () => {
    await selectBackend('cpu');
  });

  it('replaces the stock gradient and keeps it reachable', () => {
    registerConv2dGradient(); // idempotent: a second call must not lose the stock gradient
    const stock = stockConv2dGradient();
    expect(stock?.kernelName).toBe('Conv2D');
    expect(tf.getGradient('Conv2D')).not.toBe(stock);
  });

  it.each(stockCases.map((c) => [caseName(c), c] as const))('matches the stock gradient: %s', (_name, c) => {
    tf.tidy(() => {
      const rng = new Rng(c.x.concat(c.f).reduce((a, b) => a * 31 + b, 7));
      const x = randomTensor(c.x, rng) as tf.Tensor4D;
      const f = randomTensor(c.f, rng) as tf.Tensor4D;
      const yShape = tf.conv2d(x, f, c.strides, c.pad, c.dataFormat ?? 'NHWC').shape;
      const dy = randomTensor(yShape, rng);

      const ours = autodiffGrads(x, f, dy, c);
      const stock = stockConv2dGradient()!.gradFunc(dy, [x, f], {
        strides: c.strides,
        pad: c.pad,
        dataFormat: c.dataFormat ?? 'NHWC',
        dilations: 1,
      } as unknown as tf.NamedAttrMap);
      expect(relErr(ours.dx, stock['x']!())).toBeLessThan(1e-4);
      expect(relErr(ours.df, stock['filter']!())).toBeLessThan(1e-4);
    });
  });

  // The stock gradient rejects dilations > 1; check against the same convolution written with
  // an explicitly dilated filter (zeros between taps), which the stock gradient handles.
  it.each([
    ['same', 'same' as const],
    ['valid', 'valid' as const],
  ])('handles dilations with stride 1 (%s)', (_name, pad) => {
    tf.tidy(() => {
      const rng = new Rng(99);
      const x = randomTensor([2, 9, 8, 2], rng) as tf.Tensor4D;
      const f = randomTensor([3, 2, 2, 3], rng) as tf.Tensor4D;
      const d = 2;
      const y = tf.conv2d(x, f, 1, pad, 'NHWC', d);
      const dy = randomTensor(y.shape, rng);
      const ours = autodiffGrads(x, f, dy, { x: [2, 9, 8, 2], f: [3, 2, 2, 3], strides: 1, pad }, d);

      // filter [3,2] dilated by 2 → [5,3] with taps at even positions
      const big = tf.buffer([5, 3, 2, 3]);
      const fv = f.bufferSync();
      for (let a = 0; a < 3; a++)
        for (let b = 0; b < 2; b++)
          for (let i = 0; i < 2; i++) for (let o = 0; o < 3; o++) big.set(fv.get(a, b, i, o), a * d, b * d, i, o);
      const fBig = big.toTensor() as tf.Tensor4D;
      expect(relErr(y, tf.conv2d(x, fBig, 1, pad))).toBeLessThan(1e-5);
      const stock = stockConv2dGradient()!.gradFunc(dy, [x, fBig], {
        strides: 1,
        pad,
        dataFormat: 'NHWC',
        dilations: 1,
      } as unknown as tf.NamedAttrMap);
      expect(relErr(ours.dx, stock['x']!())).toBeLessThan(1e-4);
      const dfBig = stock['filter']!() as tf.Tensor4D;
      const dfTaps = tf.stridedSlice(dfBig, [0, 0, 0, 0], [5, 3, 2, 3], [d, d, 1, 1]);
      expect(relErr(ours.df, dfTaps)).toBeLessThan(1e-4);
    });
  });
});

describe('Conv2D gradient limits (cpu)', () => {
  beforeAll(async () => {
    await selectBackend('cpu');
  });

  it('rejects strides and dilations both > 1 (which tf.conv2d never produces) with a ConfigError', () => {
    const x = tf.ones([1, 9, 9, 1]);
    const f = tf.ones([2, 2, 1, 1]);
    const attrs = { strides: 2, dilations: 2, pad: 'valid', dataFormat: 'NHWC' };
    const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.engine().runKernel('Conv2D', { x: xx, filter: f }, attrs) as tf.Tensor));
    expect(() => g(x)).toThrow(ConfigError);
  });
});

describe('CNN training on wasm', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  function batch(n: number, seed: number) {
    const rng = new Rng(seed);
    const x = tf.tidy(() => tf.mul(tf.add(randomTensor([n, 28, 28, 1], rng), 1), 0.5));
    const labels = Array.from({ length: n }, () => rng.nextInt(10));
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
    return { x, y };
  }

  const lossOf = (model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, training: boolean) => () =>
    tf.mean(tf.losses.softmaxCrossEntropy(y, tf.log(tf.add(model.apply(x, { training }) as tf.Tensor, 1e-7)))) as tf.Scalar;

  it('computes the same gradients as the stock gradient on cpu', async () => {
    expect(tf.getBackend()).toBe('wasm');
    const { x, y } = batch(8, 5);
    const model = cnn({ seed: 3 });
    const ours = tf.variableGrads(lossOf(model, x, y, false));
    const oursData = Object.fromEntries(Object.entries(ours.grads).map(([k, g]) => [k, g.dataSync().slice()]));

    await tf.setBackend('cpu');
    const stock = stockConv2dGradient()!;
    const ourConfig = tf.getGradient('Conv2D');
    tf.registerGradient(stock);
    try {
      const ref = tf.variableGrads(lossOf(model, x, y, false));
      for (const [name, g] of Object.entries(ref.grads)) {
        expect(relErr(tf.tensor(oursData[name]!, g.shape), g), name).toBeLessThan(1e-4);
      }
      // conv kernels included: otherwise the test would not exercise the Conv2D gradient
      expect(Object.keys(ref.grads).filter((k) => k.includes('conv')).length).toBeGreaterThanOrEqual(2);
    } finally {
      tf.registerGradient(ourConfig);
      await tf.setBackend('wasm');
    }
  }, 60_000);

  it('trains: the loss of a fixed batch goes down over 20 steps', () => {
    expect(tf.getBackend()).toBe('wasm');
    const { x, y } = batch(16, 11);
    const model = cnn({ seed: 1 });
    const conv1Before = model.getLayer('conv1').getWeights()[0]!.dataSync().slice();
    const opt = tf.train.adam(3e-3);
    const losses: number[] = [];
    for (let step = 0; step < 20; step++) {
      const { value, grads } = tf.variableGrads(lossOf(model, x, y, true));
      opt.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
      losses.push(value.dataSync()[0]!);
      tf.dispose([value, ...Object.values(grads)]);
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[19]!).toBeLessThan(losses[0]! * 0.5);
    // the conv layers learn too (not only the dense ones)
    const conv1After = model.getLayer('conv1').getWeights()[0]!.dataSync();
    expect(conv1After.some((v, i) => Math.abs(v - conv1Before[i]!) > 1e-3)).toBe(true);
  }, 60_000);

  it('fills in the Conv2DBackpropFilter kernel wasm lacks (used by linear-activation conv layers)', async () => {
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    const rng = new Rng(21);
    const x = randomTensor([3, 9, 9, 2], rng) as tf.Tensor4D;
    const f = randomTensor([3, 3, 2, 4], rng) as tf.Tensor4D;
    const dy = randomTensor([3, 5, 5, 4], rng) as tf.Tensor4D;
    const onWasm = tf.conv2dTranspose(dy, f, [3, 9, 9, 2], 2, 'same');
    const dfWasm = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
      strides: 2,
      pad: 'same',
      dataFormat: 'NHWC',
      filterShape: [3, 3, 2, 4],
    }) as tf.Tensor;
    const [dxW, dfW] = [onWasm.dataSync().slice(), dfWasm.dataSync().slice()];
    await tf.setBackend('cpu');
    try {
      const dxC = tf.conv2dTranspose(dy, f, [3, 9, 9, 2], 2, 'same');
      const dfC = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
        strides: 2,
        pad: 'same',
        dataFormat: 'NHWC',
        filterShape: [3, 3, 2, 4],
      }) as tf.Tensor;
      expect(relErr(tf.tensor(dxW, dxC.shape), dxC)).toBeLessThan(1e-4);
      expect(relErr(tf.tensor(dfW, dfC.shape), dfC)).toBeLessThan(1e-4);
    } finally {
      await tf.setBackend('wasm');
    }
  }, 30_000);
});
