/**
 * trainchart's smaller wasm kernels — MaxPoolGrad, Sum over leading axes, Identity / Cast
 * without copies — checked against tfjs's cpu backend (an independent implementation) and
 * for what they leave on the wasm heap.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { selectBackend } from '../src/backend/selectBackend.js';
import { getKernelSet, useStockKernels, useTrainchartKernels } from '../src/backend/kernelSet.js';
import { Rng } from '../src/rng.js';

const rng = new Rng(7);
const int = (lo: number, hi: number) => lo + rng.nextInt(hi - lo + 1);
const size = (s: readonly number[]) => s.reduce((p, q) => p * q, 1);
const wasm = () => tf.backend() as unknown as BackendWasm;

/** Values from a few levels only, so that pooling windows have ties and all-negative windows. */
function coarse(shape: number[]): Float32Array {
  return Float32Array.from({ length: size(shape) }, () => int(-3, 2));
}
function fine(shape: number[]): Float32Array {
  return Float32Array.from({ length: size(shape) }, () => rng.nextFloat() * 2 - 1);
}

async function onBackend<T>(name: 'cpu' | 'wasm', fn: () => T): Promise<T> {
  await tf.setBackend(name);
  return fn();
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

beforeAll(async () => {
  await selectBackend('wasm');
  expect(getKernelSet()).toBe('trainchart');
});

describe('wasm MaxPoolGrad', () => {
  type Pad = 'valid' | 'same' | number;
  interface PoolCase {
    x: [number, number, number, number];
    filter: [number, number];
    strides: [number, number];
    pad: Pad;
  }
  const cases: PoolCase[] = [
    { x: [4, 26, 26, 16], filter: [2, 2], strides: [2, 2], pad: 'valid' }, // the cnn preset's first pool
    { x: [4, 11, 11, 32], filter: [2, 2], strides: [2, 2], pad: 'valid' }, // odd size: last row/col unused
  ];
  for (let i = 0; i < 14; i++) {
    const f: [number, number] = [int(1, 3), int(1, 3)];
    const pad: Pad = (['valid', 'same', 1] as const)[i % 3]!;
    // Explicit padding must stay below the filter size (tfjs's rule).
    const p = pad === 1 && (f[0] < 2 || f[1] < 2) ? 'same' : pad;
    let strides: [number, number] = [int(1, 3), int(1, 3)];
    // The stock wasm *forward* MaxPool writes out of bounds with explicit padding and a stride
    // larger than the filter (tfjs-backend-wasm 4.22, e.g. x [2,7,4,5], 2x2, strides 3x2, pad 1).
    if (p === 1) strides = [Math.min(strides[0], f[0]), Math.min(strides[1], f[1])];
    cases.push({ x: [int(1, 3), int(f[0], 9), int(f[1], 9), int(1, 5)], filter: f, strides, pad: p });
  }

  const name = (c: PoolCase) => `x [${c.x}] filter ${c.filter.join('x')} strides ${c.strides.join('x')} pad ${c.pad}`;

  /** dL/dx of L = Σ w ⊙ maxPool(x), through the backend's MaxPoolGrad kernel. */
  function poolGrad(c: PoolCase, xv: Float32Array, wv: Float32Array | null) {
    return tf.tidy(() => {
      const x = tf.tensor4d(xv, c.x);
      const g = tf.grad((t: tf.Tensor) => {
        const y = tf.maxPool(t as tf.Tensor4D, c.filter, c.strides, c.pad);
        return tf.sum(tf.mul(y, wv ? tf.tensor(wv, y.shape) : tf.onesLike(y)));
      })(x);
      return g.dataSync();
    });
  }

  it.each(cases.map((c) => [name(c), c] as const))('%s: equals the cpu backend, ties and negative windows included', async (_, c) => {
    const xv = coarse(c.x);
    const yShape = await onBackend('cpu', () => tf.tidy(() => tf.maxPool(tf.tensor4d(xv, c.x), c.filter, c.strides, c.pad).shape));
    const wv = fine(yShape);
    // tfjs's stock cpu kernel: trainchart's cpu MaxPoolGrad shares the loop under test.
    useStockKernels();
    let want: Awaited<ReturnType<typeof poolGrad>>;
    try {
      want = await onBackend('cpu', () => poolGrad(c, xv, wv));
    } finally {
      useTrainchartKernels();
    }
    const before = await onBackend('wasm', () => wasm().numDataIds());
    const got = poolGrad(c, xv, wv);
    const overlap = c.strides[0] < c.filter[0] || c.strides[1] < c.filter[1];
    // Non-overlapping windows: one contribution per element, so exactly equal.
    expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(overlap ? 1e-6 : 0);
    expect(wasm().numDataIds()).toBe(before);
  });
});

describe('wasm Sum', () => {
  const cases: Array<{ shape: number[]; axis: number[]; keepDims: boolean }> = [
    { shape: [64, 26, 26, 16], axis: [0, 1, 2], keepDims: false }, // a conv bias gradient
    { shape: [64, 256], axis: [0], keepDims: false }, // a Dense bias gradient
    { shape: [3, 4, 5], axis: [1, 0], keepDims: true },
    { shape: [3, 4, 5], axis: [-1], keepDims: false }, // innermost: the stock path
    { shape: [3, 4, 5], axis: [0, 2], keepDims: false }, // mixed: the stock path
    { shape: [3, 4, 5], axis: [0, 1, 2], keepDims: false }, // everything: the stock path
    { shape: [7, 1], axis: [0], keepDims: true },
  ];
  it.each(cases.map((c) => [`sum of [${c.shape}] over [${c.axis}]${c.keepDims ? ' keepDims' : ''}`, c] as const))(
    '%s equals the cpu backend',
    async (_, c) => {
      const v = fine(c.shape);
      const run = () =>
        tf.tidy(() => {
          const s = tf.sum(tf.tensor(v, c.shape), c.axis, c.keepDims);
          return { shape: s.shape, values: s.dataSync() };
        });
      const want = await onBackend('cpu', run);
      const before = await onBackend('wasm', () => wasm().numDataIds());
      const got = run();
      expect(got.shape).toEqual(want.shape);
      const scale = Math.sqrt(size(c.shape));
      expect(maxAbsDiff(got.values, want.values)).toBeLessThan(1e-6 * scale * 4);
      expect(wasm().numDataIds()).toBe(before);
    },
  );
});

describe('wasm Identity and Cast', () => {
  it('clone shares the data: no new wasm buffer, and it outlives the original', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor([1.5, -2, 3], [3]);
    const before = wasm().numDataIds();
    const y = tf.clone(x);
    const z = tf.cast(x, 'float32');
    expect(wasm().numDataIds()).toBe(before);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1.5, -2, 3]);
    expect(Array.from(z.dataSync())).toEqual([1.5, -2, 3]);
    y.dispose();
    expect(Array.from(z.dataSync())).toEqual([1.5, -2, 3]);
    z.dispose();
    expect(wasm().numDataIds()).toBe(before - 1);
  });

  it('a real cast still converts (and copies)', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor([1.5, -2.5, 3]);
    const before = wasm().numDataIds();
    const i = tf.cast(x, 'int32');
    expect(i.dtype).toBe('int32');
    expect(wasm().numDataIds()).toBe(before + 1);
    const want = await onBackend('cpu', () => Array.from(tf.cast(tf.tensor([1.5, -2.5, 3]), 'int32').dataSync()));
    await tf.setBackend('wasm');
    expect(Array.from(i.dataSync())).toEqual(want);
    tf.dispose([x, i]);
  });
});
