/**
 * trainchart's cpu Transpose and MaxPoolGrad kernels against tfjs's stock cpu kernels (toggled
 * in the same process) and, for the transpose, its definition: out[i_perm] = x[i].
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend/selectBackend.js';
import { useStockKernels, useTrainchartKernels } from '../src/backend/kernelSet.js';
import { Rng } from '../src/rng.js';
import { randomValues, relErr, size } from './support/matMulReference.js';

const rng = new Rng(44);
const int = (lo: number, hi: number) => lo + rng.nextInt(hi - lo + 1);
const cpu = () => tf.backend() as unknown as { numDataIds(): number };

function shuffled(n: number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

/** The definition: the element at coordinates c of x lands at (c[perm[0]], c[perm[1]], …). */
function referenceTranspose(x: ArrayLike<number>, shape: number[], perm: number[]): number[] {
  const outShape = perm.map((p) => shape[p]!);
  const out = new Array<number>(size(shape));
  const coords = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < out.length; i++) {
    let rest = i;
    for (let d = shape.length - 1; d >= 0; d--) {
      coords[d] = rest % shape[d]!;
      rest = Math.floor(rest / shape[d]!);
    }
    let o = 0;
    for (let d = 0; d < perm.length; d++) o = o * outShape[d]! + coords[perm[d]!]!;
    out[o] = x[i]!;
  }
  return out;
}

beforeAll(async () => {
  await selectBackend('cpu');
});

afterAll(() => {
  useTrainchartKernels();
});

describe('cpu Transpose (trainchart kernel set)', () => {
  const cases: Array<{ shape: number[]; perm: number[]; dtype: 'float32' | 'int32' | 'bool' }> = [];
  for (let t = 0; t < 30; t++) {
    const rank = 1 + (t % 5); // rank 5 goes to the stock kernel
    const shape = Array.from({ length: rank }, () => int(1, 6));
    cases.push({ shape, perm: shuffled(rank), dtype: (['float32', 'int32', 'bool'] as const)[t % 3]! });
  }
  cases.push({ shape: [64, 13, 13, 16], perm: [3, 1, 2, 0], dtype: 'float32' }, { shape: [64, 11, 11, 32], perm: [1, 2, 0, 3], dtype: 'float32' });

  it('is installed by selectBackend; the stock set puts tfjs-backend-cpu’s back', () => {
    const ours = tf.getKernel('Transpose', 'cpu');
    useStockKernels();
    const stock = tf.getKernel('Transpose', 'cpu');
    useTrainchartKernels();
    expect(stock.kernelFunc.name).toBe('transpose');
    expect(ours.kernelFunc.name).not.toBe('transpose');
  });

  it.each(cases.map((c) => [`[${c.shape}] perm [${c.perm}] ${c.dtype}`, c] as const))('%s is the definition and the stock kernel, exactly', (_, c) => {
    const v = randomValues(rng, c.shape).map((x) => (c.dtype === 'float32' ? x : c.dtype === 'int32' ? Math.round(x * 100) : x > 0 ? 1 : 0));
    const x = c.dtype === 'float32' ? tf.tensor(v, c.shape) : tf.tensor(Array.from(v), c.shape, c.dtype);
    const before = cpu().numDataIds();
    const ours = tf.transpose(x, c.perm);
    expect(ours.shape).toEqual(c.perm.map((p) => c.shape[p]));
    expect(ours.dtype).toBe(c.dtype);
    const got = Array.from(ours.dataSync());
    expect(got).toEqual(referenceTranspose(x.dataSync(), c.shape, c.perm));
    useStockKernels();
    const stock = tf.transpose(x, c.perm);
    useTrainchartKernels();
    expect(got).toEqual(Array.from(stock.dataSync()));
    tf.dispose([ours, stock]);
    expect(cpu().numDataIds()).toBe(before);
    x.dispose();
  });
});

describe('cpu MaxPoolGrad (trainchart kernel set)', () => {
  type Pair = [number, number];
  const cases: Array<{ shape: [number, number, number, number]; pool: Pair; stride: Pair; pad: 'valid' | 'same' }> = [];
  for (let t = 0; t < 24; t++) {
    // Square windows and strides, then (t ≥ 12) rectangular ones: rows and columns each their own.
    const square = t < 12;
    const ph = int(1, 3);
    const pool: Pair = square ? [ph, ph] : [ph, int(1, 3)];
    const sh = int(1, 3);
    const stride: Pair = square ? [sh, sh] : [sh, int(1, 3)];
    cases.push({ shape: [int(1, 3), int(pool[0], 9), int(pool[1], 9), int(1, 4)], pool, stride, pad: t % 2 ? 'same' : 'valid' });
  }
  cases.push({ shape: [8, 26, 26, 16], pool: [2, 2], stride: [2, 2], pad: 'valid' });

  it.each(cases.map((c) => [`[${c.shape}] pool ${c.pool} stride ${c.stride} ${c.pad}`, c] as const))('%s matches the stock kernel', (_, c) => {
    // Ties and all-negative windows on purpose: values on a coarse grid, some windows all < 0.
    const xv = randomValues(rng, c.shape).map((v) => Math.round(v * 4) / 4 - 0.3);
    const x = tf.tensor4d(xv, c.shape);
    const outShape = tf.tidy(() => tf.maxPool(x, c.pool, c.stride, c.pad).shape);
    const up = tf.tensor4d(randomValues(rng, outShape), outShape);
    const grad = () => tf.tidy(() => Array.from(tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(xx as tf.Tensor4D, c.pool, c.stride, c.pad), up)))(x).dataSync()));
    const before = cpu().numDataIds();
    const ours = grad();
    expect(cpu().numDataIds()).toBe(before);
    useStockKernels();
    const stock = grad();
    useTrainchartKernels();
    if (c.stride[0] >= c.pool[0] && c.stride[1] >= c.pool[1]) expect(ours).toEqual(stock); // windows do not overlap: exactly
    else expect(relErr(ours, stock)).toBeLessThan(2e-6);
    tf.dispose([x, up]);
  });
});
