/**
 * trainchart's cpu BatchMatMul / _FusedMatMul kernels, checked against references that do not
 * use them: the definition of a (batch-broadcast) matrix product written as float64 loops, and
 * tfjs's stock cpu kernels (toggled in the same process).
 *
 * The kernel sums each output in float64 in the order k = 0, 1, …, K−1 and rounds once, which is
 * exactly what the definition computes: so it must equal the definition rounded to float32 bit
 * for bit (a product of two float32 values is exact in float64), with or without bias.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend/selectBackend.js';
import { getKernelSet, useStockKernels, useTrainchartKernels } from '../src/backend/kernelSet.js';
import { Rng } from '../src/rng.js';
import { makeCase, randomValues, referenceMatMul, relErr, size, type Case } from './support/matMulReference.js';

const rng = new Rng(21);
const int = (lo: number, hi: number) => lo + rng.nextInt(hi - lo + 1);
const values = (shape: number[]) => randomValues(rng, shape);

const FLAGS = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const;

/** Every flag combination with every kind of batching; sizes around the 4×4 blocks' edges. */
function cases(): Case[] {
  const batchings: Array<[number[], number[]]> = [
    [[], []],
    [[3], []],
    [[], [3]],
    [[2], [2]],
    [[1], [3]],
    [[2, 1], [1, 3]],
    [[3, 1], [2]], // b's batches alternate across the output's: 0, 1, 0, 1, …
    [[3, 1, 2], [1, 4, 1]],
  ];
  const out: Case[] = [];
  for (const [ba, bb] of batchings) {
    for (const [tA, tB] of FLAGS) {
      out.push(makeCase(ba, bb, int(1, 9), int(1, 9), int(1, 9), tA, tB));
      out.push(makeCase(ba, bb, int(13, 23), int(13, 40), int(13, 23), tA, tB));
    }
  }
  // Exact multiples of the block, a single row, a single column, K = 1.
  out.push(makeCase([], [], 8, 12, 16, false, false), makeCase([], [], 1, 30, 9, false, true), makeCase([], [], 9, 30, 1, true, false));
  out.push(makeCase([], [], 5, 1, 7, false, false));
  // The shapes of an MLP 784-128-10's training step at batch 64.
  out.push(makeCase([], [], 64, 784, 128, false, false), makeCase([], [], 784, 64, 128, true, false), makeCase([], [], 64, 10, 128, false, true));
  return out;
}

const caseName = (c: Case) => `[${c.a}]${c.tA ? 'ᵀ' : ''} · [${c.b}]${c.tB ? 'ᵀ' : ''}`;
const nOf = (c: Case) => (c.tB ? c.b[c.b.length - 2]! : c.b[c.b.length - 1]!);

/** Whether tfjs's stock kernels pair batches as numpy does (they use index modulo batch size). */
function stockBatchesRight(c: Case): boolean {
  return size(c.a.slice(0, -2)) === 1 || size(c.b.slice(0, -2)) === 1 || tf.util.arraysEqual(c.a.slice(0, -2), c.b.slice(0, -2));
}

interface CpuBackend {
  numDataIds(): number;
}
const cpu = () => tf.backend() as unknown as CpuBackend;

beforeAll(async () => {
  await selectBackend('cpu');
});

afterAll(() => {
  useTrainchartKernels();
});

describe('cpu BatchMatMul (trainchart kernel set)', () => {
  const all = cases();

  it('is installed by selectBackend, and the stock set puts the stock kernels back', () => {
    expect(getKernelSet()).toBe('trainchart');
    const ours = [tf.getKernel('BatchMatMul', 'cpu'), tf.getKernel('_FusedMatMul', 'cpu')];
    useStockKernels();
    const stock = [tf.getKernel('BatchMatMul', 'cpu'), tf.getKernel('_FusedMatMul', 'cpu')];
    // tfjs-backend-cpu's own kernel functions, by the names they have there.
    expect(stock.map((k) => k.kernelFunc.name)).toEqual(['batchMatMul', '_fusedMatMul']);
    expect(ours.map((k) => k.kernelFunc.name)).not.toContain('batchMatMul');
    useTrainchartKernels();
    expect([tf.getKernel('BatchMatMul', 'cpu'), tf.getKernel('_FusedMatMul', 'cpu')]).toEqual(ours);
  });

  it.each(all.map((c) => [caseName(c), c] as const))('%s is the definition rounded once, and matches the stock kernel', (_, c) => {
    const av = values(c.a);
    const bv = values(c.b);
    const want = referenceMatMul(av, c.a, bv, c.b, c.tA, c.tB);
    const a = tf.tensor(av, c.a);
    const b = tf.tensor(bv, c.b);
    try {
      const ours = tf.matMul(a, b, c.tA, c.tB);
      expect(ours.shape).toEqual(want.shape);
      expect(Array.from(ours.dataSync())).toEqual(Array.from(Float32Array.from(want.values)));
      if (stockBatchesRight(c)) {
        useStockKernels();
        const stock = tf.matMul(a, b, c.tA, c.tB);
        expect(relErr(ours.dataSync(), stock.dataSync())).toBeLessThan(2e-6);
        stock.dispose();
      }
      ours.dispose();
    } finally {
      useTrainchartKernels();
      tf.dispose([a, b]);
    }
  });

  it('is deterministic and leaves no tensor or cpu data behind', () => {
    const tensors = all.map((c) => [tf.tensor(values(c.a), c.a), tf.tensor(values(c.b), c.b)] as const);
    const run = () => all.map((c, i) => tf.tidy(() => Array.from(tf.matMul(tensors[i]![0], tensors[i]![1], c.tA, c.tB).dataSync())));
    const first = run();
    const before = { tensors: tf.memory().numTensors, dataIds: cpu().numDataIds() };
    expect(run()).toEqual(first);
    expect(tf.memory().numTensors).toBe(before.tensors);
    expect(cpu().numDataIds()).toBe(before.dataIds);
    tf.dispose(tensors.flat());
  });

  it('float32 tensors whose storage is not a Float32Array (a cast of int32) go to the stock kernel, correctly', () => {
    const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32').cast('float32');
    const b = tf.tensor2d([1, 0, 2, 1, 0, 3], [3, 2], 'float32');
    const y = tf.matMul(a, b);
    expect(Array.from(y.dataSync())).toEqual([5, 11, 14, 23]);
    tf.dispose([a, b, y]);
  });

  it('hands what it does not multiply to the stock kernel: int32 operands', () => {
    const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32');
    const b = tf.tensor2d([1, 0, 2, 1, 0, 3], [3, 2], 'int32');
    const y = tf.matMul(a, b);
    expect(y.dtype).toBe('int32');
    expect(Array.from(y.dataSync())).toEqual([5, 11, 14, 23]);
    tf.dispose([a, b, y]);
  });
});

describe('cpu _FusedMatMul (trainchart kernel set)', () => {
  const activations = ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu'] as const;
  type Activation = (typeof activations)[number];
  const ACT: Record<Activation, (x: number, alpha: number) => number> = {
    linear: (x) => x,
    relu: (x) => Math.max(0, x),
    relu6: (x) => Math.min(6, Math.max(0, x)),
    elu: (x) => (x >= 0 ? x : Math.exp(x) - 1),
    sigmoid: (x) => 1 / (1 + Math.exp(-x)),
    leakyrelu: (x) => (x >= 0 ? x : 0.3 * x),
    prelu: (x, alpha) => (x >= 0 ? x : alpha * x),
  };
  interface FusedCase extends Case {
    activation: Activation;
    /** 'column' ([n]) and 'row' ([1, n]): one bias per output column (a Dense layer's); 'full': one per output element. */
    bias: 'none' | 'column' | 'row' | 'full';
  }
  const fusedCases: FusedCase[] = [];
  for (const [ba, bb] of [
    [[], []],
    [[3], []],
    [[3], [3]],
    [[], [2]],
  ] as Array<[number[], number[]]>) {
    for (const [tA, tB] of FLAGS) {
      for (const activation of activations) {
        const bias = (['none', 'column', 'row', 'full'] as const)[rng.nextInt(4)]!;
        fusedCases.push({ ...makeCase(ba, bb, int(1, 14), int(1, 20), int(1, 14), tA, tB), activation, bias });
      }
    }
  }
  // The Dense-layer forward pass.
  fusedCases.push({ ...makeCase([], [], 64, 784, 128, false, false), activation: 'relu', bias: 'column' });
  fusedCases.push({ ...makeCase([], [], 64, 128, 10, false, false), activation: 'linear', bias: 'column' });
  // A full bias under relu: added first, then clipped (never the other way round).
  fusedCases.push({ ...makeCase([], [], 9, 11, 6, false, false), activation: 'relu', bias: 'full' });
  fusedCases.push({ ...makeCase([2], [], 5, 11, 6, true, false), activation: 'relu', bias: 'row' });

  it.each(fusedCases.map((c) => [`${caseName(c)} ${c.activation}, bias ${c.bias}`, c] as const))('%s equals the definition and the stock kernel', (_, c) => {
    const n = nOf(c);
    const av = values(c.a);
    const bv = values(c.b);
    const mm = referenceMatMul(av, c.a, bv, c.b, c.tA, c.tB);
    const biasShape = c.bias === 'column' ? [n] : c.bias === 'row' ? [1, n] : mm.shape;
    const biasV = values(biasShape);
    const alphaV = values([n]).map((v) => Math.abs(v));
    // A per-column bias is added to the exact sum (one rounding); a full one to the rounded product.
    const want = mm.values.map((s, i) => {
      const j = i % n;
      const biased = c.bias === 'none' ? s : c.bias === 'full' ? Math.fround(Math.fround(s) + biasV[i]!) : s + biasV[j]!;
      return ACT[c.activation](biased, alphaV[j]!);
    });
    const run = () =>
      tf.tidy(() =>
        tf.fused.matMul({
          a: tf.tensor(av, c.a),
          b: tf.tensor(bv, c.b),
          transposeA: c.tA,
          transposeB: c.tB,
          bias: c.bias === 'none' ? undefined : tf.tensor(biasV, biasShape),
          activation: c.activation,
          preluActivationWeights: c.activation === 'prelu' ? tf.tensor(alphaV, [n]) : undefined,
          leakyreluAlpha: 0.3,
        }),
      );
    const before = cpu().numDataIds();
    const got = run();
    expect(got.shape).toEqual(mm.shape);
    expect(relErr(got.dataSync(), want)).toBeLessThan(2e-6);
    if (c.activation === 'linear' || c.activation === 'relu') {
      // The definition bit for bit: summed, biased and clipped in float64, rounded once.
      expect(Array.from(got.dataSync())).toEqual(Array.from(Float32Array.from(want)));
    }
    got.dispose();
    expect(cpu().numDataIds()).toBe(before);
    if (stockBatchesRight(c)) {
      try {
        useStockKernels();
        const stock = run();
        expect(relErr(stock.dataSync(), want)).toBeLessThan(2e-6);
        stock.dispose();
      } finally {
        useTrainchartKernels();
      }
    }
  });

  it('the gradient through a fused Dense layer matches the stock kernels', () => {
    const x = tf.tensor(values([16, 30]), [16, 30]);
    const w = tf.tensor(values([30, 7]), [30, 7]);
    const bias = tf.tensor(values([7]), [7]);
    const up = tf.tensor(values([16, 7]), [16, 7]);
    const grads = () =>
      tf.tidy(() => {
        const f = (ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(tf.fused.matMul({ a: x, b: ww, bias: bb, activation: 'relu' }), up));
        return tf.grads(f)([w, bias]).map((g) => Array.from(g.dataSync()));
      });
    const ours = grads();
    useStockKernels();
    const stock = grads();
    useTrainchartKernels();
    expect(relErr(ours[0]!, stock[0]!)).toBeLessThan(2e-6);
    expect(relErr(ours[1]!, stock[1]!)).toBeLessThan(2e-6);
    tf.dispose([x, w, bias, up]);
  });
});
