/**
 * trainchart's patch-matrix `Conv2DBackpropFilter` for wasm, checked against tfjs's cpu
 * kernel (an independent implementation of the same derivative).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { selectBackend } from '../src/backend/selectBackend.js';
import { useStockKernels, useTrainchartKernels } from '../src/backend/kernelSet.js';
import { IM2COL_MAX_TAPS } from '../src/backend/wasmConv2dFilterGrad.js';
import { Rng } from '../src/rng.js';
import { relErr } from './support/matMulReference.js';

const rng = new Rng(31);
const int = (lo: number, hi: number) => lo + rng.nextInt(hi - lo + 1);
const size = (s: readonly number[]) => s.reduce((p, q) => p * q, 1);
const fine = (shape: number[]) => Float32Array.from({ length: size(shape) }, () => rng.nextFloat() * 2 - 1);


type Pad = 'valid' | 'same' | number;
interface Case {
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: [number, number];
  pad: Pad;
}

const cases: Case[] = [{ x: [8, 28, 28, 1], filter: [3, 3, 1, 16], strides: [1, 1], pad: 'valid' }]; // the cnn preset's conv1
for (let i = 0; i < 12; i++) {
  const kh = int(1, 3);
  const kw = int(1, 3);
  const cin = int(1, 3);
  cases.push({
    x: [int(1, 3), int(kh, 10), int(kw, 10), cin],
    filter: [kh, kw, cin, int(1, 6)],
    strides: [int(1, 3), int(1, 3)],
    pad: (['valid', 'same', 1] as const)[i % 3]!,
  });
}

/** The kernel on the current backend, on copies of the given values. */
function backpropFilter(c: Case, xv: Float32Array, dyv: Float32Array, dyShape: number[]) {
  return tf.tidy(() => {
    const out = tf.engine().runKernel(
      'Conv2DBackpropFilter',
      { x: tf.tensor(xv, c.x), dy: tf.tensor(dyv, dyShape) },
      { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape: c.filter } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor;
    return { shape: out.shape, values: out.dataSync() };
  });
}

beforeAll(async () => {
  await selectBackend('wasm');
});

describe('wasm Conv2DBackpropFilter as one patch-matrix product', () => {
  it.each(cases.map((c) => [`x [${c.x}] filter [${c.filter}] strides ${c.strides} pad ${c.pad}`, c] as const))(
    '%s equals the cpu kernel',
    async (_, c) => {
      expect(c.filter[0] * c.filter[1] * c.filter[2]).toBeLessThan(IM2COL_MAX_TAPS);
      await tf.setBackend('cpu');
      const dyShape = tf.tidy(() => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(c.filter) as tf.Tensor4D, c.strides, c.pad).shape);
      const xv = fine(c.x);
      const dyv = fine(dyShape);
      const want = backpropFilter(c, xv, dyv, dyShape);
      await tf.setBackend('wasm');
      const wasm = tf.backend() as unknown as BackendWasm;
      const before = wasm.numDataIds();
      const got = backpropFilter(c, xv, dyv, dyShape);
      expect(got.shape).toEqual(want.shape);
      expect(relErr(got.values, want.values)).toBeLessThan(2e-6);
      expect(wasm.numDataIds()).toBe(before);
      // The forward-convolution kernel it replaced agrees too.
      useStockKernels();
      try {
        expect(relErr(backpropFilter(c, xv, dyv, dyShape).values, want.values)).toBeLessThan(2e-6);
      } finally {
        useTrainchartKernels();
      }
    },
  );

  it("is what trainchart's Conv2D gradient uses on wasm", async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor(fine([2, 9, 9, 1]), [2, 9, 9, 1]) as tf.Tensor4D;
    const info = await tf.profile(() => {
      const g = tf.grad((f: tf.Tensor) => tf.sum(tf.conv2d(x, f as tf.Tensor4D, 1, 'valid')))(tf.ones([3, 3, 1, 4]));
      g.dispose();
    });
    expect(info.kernels.map((k) => k.name)).toContain('Conv2DBackpropFilter');
    x.dispose();
  });
});
