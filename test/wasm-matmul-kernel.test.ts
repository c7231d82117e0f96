/**
 * trainchart's wasm BatchMatMul / _FusedMatMul kernels and its BatchMatMul gradient, checked
 * against references that do not use them: the definition of a (batch-broadcast) matrix
 * product written as plain loops, tfjs's stock wasm kernels (toggled in the same process) and
 * tfjs's cpu backend.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { selectBackend } from '../src/backend/selectBackend.js';
import { getKernelSet, setKernelSet, useStockKernels, useTrainchartKernels } from '../src/backend/kernelSet.js';
import { ConfigError } from '../src/errors.js';
import { Rng } from '../src/rng.js';
import { makeCase, randomValues, referenceMatMul, relErr, size, type Case } from './support/matMulReference.js';

const rng = new Rng(12);
const int = (lo: number, hi: number) => lo + rng.nextInt(hi - lo + 1);
const values = (shape: number[]) => randomValues(rng, shape);

/** Random cases: every flag combination with every kind of batching, small and large matrices. */
function randomCases(): Case[] {
  const batchings: Array<() => [number[], number[]]> = [
    () => [[], []], // rank 2
    () => [[int(2, 4)], []], // a batched, b a matrix
    () => [[], [int(2, 4)]], // b batched, a a matrix
    () => [[1], [int(2, 3)]],
    () => {
      const s = int(2, 4);
      return [[s], [s]]; // equal batches
    },
    () => [[2, 1], [1, 3]], // true broadcast on both sides
    () => [[int(2, 3), 2], [2]], // b broadcast along a leading dim
    () => [[3, 1, 2], [1, 4, 1]],
  ];
  const cases: Case[] = [];
  for (const batching of batchings) {
    for (const [tA, tB] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      const [ba, bb] = batching();
      // Small products (stock loop path) and ones above the per-batch threshold (27k+ MACs).
      cases.push(makeCase(ba, bb, int(1, 9), int(1, 9), int(1, 9), tA, tB));
      cases.push(makeCase(ba, bb, int(28, 40), int(28, 40), int(28, 40), tA, tB));
    }
  }
  // The shapes of an MLP's backward pass.
  cases.push(makeCase([], [], 784, 64, 128, true, false), makeCase([], [], 64, 128, 784, false, true));
  return cases;
}

const caseName = (c: Case) => `[${c.a}]${c.tA ? 'ᵀ' : ''} · [${c.b}]${c.tB ? 'ᵀ' : ''}`;

/** Whether tfjs's stock kernels pair batches as numpy does (they use index modulo batch size). */
function stockBatchesRight(c: Case): boolean {
  const ba = size(c.a.slice(0, -2));
  const bb = size(c.b.slice(0, -2));
  return ba === 1 || bb === 1 || tf.util.arraysEqual(c.a.slice(0, -2), c.b.slice(0, -2));
}

const wasm = () => tf.backend() as unknown as BackendWasm;
/** Bytes of the wasm heap (an Emscripten module property tfjs's module type leaves out). */
const heapBytes = () => (wasm().wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.length;

beforeAll(async () => {
  await selectBackend('wasm');
});

afterAll(() => {
  useTrainchartKernels();
});

describe('wasm BatchMatMul (trainchart kernel set)', () => {
  const cases = randomCases();

  it('is what selectBackend installed, and setKernelSet swaps it for the stock kernel and back', () => {
    expect(getKernelSet()).toBe('trainchart');
    const ours = tf.getKernel('BatchMatMul', 'wasm');
    useStockKernels();
    expect(getKernelSet()).toBe('stock');
    const stock = tf.getKernel('BatchMatMul', 'wasm');
    expect(stock).not.toBe(ours);
    useTrainchartKernels();
    useTrainchartKernels(); // idempotent
    expect(tf.getKernel('BatchMatMul', 'wasm')).toBe(ours);
    expect(() => setKernelSet('fast' as never)).toThrow(ConfigError);
  });

  it('a second selectBackend keeps the active backend and the chosen kernel set', async () => {
    const backend = tf.backend();
    const t = tf.tensor([1, 2, 3]);
    useStockKernels();
    await selectBackend('wasm');
    expect(getKernelSet()).toBe('stock');
    expect(tf.backend()).toBe(backend);
    expect(Array.from(t.dataSync())).toEqual([1, 2, 3]);
    useTrainchartKernels();
    await selectBackend('wasm');
    expect(getKernelSet()).toBe('trainchart');
    t.dispose();
  });

  it.each(cases.map((c) => [caseName(c), c] as const))('%s equals the definition and the stock kernel', (_, c) => {
    const av = values(c.a);
    const bv = values(c.b);
    const want = referenceMatMul(av, c.a, bv, c.b, c.tA, c.tB);
    const a = tf.tensor(av, c.a);
    const b = tf.tensor(bv, c.b);
    try {
      useTrainchartKernels();
      const ours = tf.matMul(a, b, c.tA, c.tB);
      expect(ours.shape).toEqual(want.shape);
      expect(relErr(ours.dataSync(), want.values)).toBeLessThan(2e-6);
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

  it('frees every temporary: no tensor and no wasm data left behind', () => {
    const tensors = cases.map((c) => [tf.tensor(values(c.a), c.a), tf.tensor(values(c.b), c.b)] as const);
    const run = () => {
      for (let i = 0; i < cases.length; i++) tf.matMul(tensors[i]![0], tensors[i]![1], cases[i]!.tA, cases[i]!.tB).dispose();
    };
    run(); // warm-up: the heap may grow once
    const before = { tensors: tf.memory().numTensors, dataIds: wasm().numDataIds(), heap: heapBytes() };
    for (let r = 0; r < 3; r++) run();
    expect(tf.memory().numTensors).toBe(before.tensors);
    expect(wasm().numDataIds()).toBe(before.dataIds);
    expect(heapBytes()).toBe(before.heap);
    tf.dispose(tensors.flat());
  });
});

describe('wasm _FusedMatMul (trainchart kernel set)', () => {
  const activations = ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu'] as const;
  interface FusedCase extends Case {
    activation: (typeof activations)[number];
    bias: boolean;
  }
  const fusedCases: FusedCase[] = [];
  for (const [ba, bb] of [
    [[], []],
    [[3], []],
    [[3], [3]],
    [[], [2]],
  ] as Array<[number[], number[]]>) {
    for (const [tA, tB] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      const activation = activations[rng.nextInt(activations.length)]!;
      fusedCases.push({ ...makeCase(ba, bb, int(2, 30), int(2, 30), int(2, 30), tA, tB), activation, bias: rng.nextFloat() < 0.75 });
    }
  }
  // The Dense-layer forward pass: untransposed, b a matrix, rank-1 bias.
  fusedCases.push({ ...makeCase([], [], 64, 784, 128, false, false), activation: 'relu', bias: true });

  /** tf.fused.matMul on the current backend; the operands are rank 3, as tfjs-core passes them. */
  function fused(c: FusedCase, av: Float32Array, bv: Float32Array, biasV: Float32Array, alphaV: Float32Array) {
    return tf.tidy(() => {
      const n = c.tB ? c.b[c.b.length - 2]! : c.b[c.b.length - 1]!;
      return tf.fused.matMul({
        a: tf.tensor(av, c.a),
        b: tf.tensor(bv, c.b),
        transposeA: c.tA,
        transposeB: c.tB,
        bias: c.bias ? tf.tensor(biasV, [n]) : undefined,
        activation: c.activation,
        preluActivationWeights: c.activation === 'prelu' ? tf.tensor(alphaV, [n]) : undefined,
        leakyreluAlpha: 0.3,
      });
    });
  }

  it.each(fusedCases.map((c) => [`${caseName(c)} ${c.activation}${c.bias ? ' + bias' : ''}`, c] as const))(
    '%s equals the cpu backend',
    async (_, c) => {
      const n = c.tB ? c.b[c.b.length - 2]! : c.b[c.b.length - 1]!;
      const av = values(c.a);
      const bv = values(c.b);
      const biasV = values([n]);
      const alphaV = values([n]).map((v) => Math.abs(v));
      await tf.setBackend('cpu');
      const want = fused(c, av, bv, biasV, alphaV);
      const wantV = want.dataSync();
      const wantShape = want.shape;
      want.dispose();
      await tf.setBackend('wasm');
      const before = wasm().numDataIds();
      const got = fused(c, av, bv, biasV, alphaV);
      expect(got.shape).toEqual(wantShape);
      expect(relErr(got.dataSync(), wantV)).toBeLessThan(2e-6);
      got.dispose();
      expect(wasm().numDataIds()).toBe(before);
    },
  );
});

describe('BatchMatMul gradient', () => {
  /** loss = Σ w ⊙ matMul(a, b); returns [dL/da, dL/db] as arrays. */
  function grads(c: Case, av: Float32Array, bv: Float32Array, wv: Float32Array, outShape: number[], explicitBroadcast: boolean) {
    return tf.tidy(() => {
      const a = tf.tensor(av, c.a);
      const b = tf.tensor(bv, c.b);
      const w = tf.tensor(wv, outShape);
      const batch = outShape.slice(0, -2);
      const f = (x: tf.Tensor, y: tf.Tensor) => {
        // The reference broadcasts explicitly (tf.broadcastTo's own gradient sums), so that the
        // matmul it differentiates has equal batch shapes, which the stock gradient handles.
        const xx = explicitBroadcast ? tf.broadcastTo(x, [...batch, ...c.a.slice(-2)]) : x;
        const yy = explicitBroadcast ? tf.broadcastTo(y, [...batch, ...c.b.slice(-2)]) : y;
        return tf.sum(tf.mul(tf.matMul(xx, yy, c.tA, c.tB), w));
      };
      const [da, db] = tf.grads(f)([a, b]);
      return [Array.from(da!.dataSync()), Array.from(db!.dataSync())];
    });
  }

  const broadcastCases: Case[] = [
    makeCase([3], [], 4, 5, 6, false, false), // a Dense layer applied to a sequence
    makeCase([3], [], 4, 5, 6, false, true),
    makeCase([3], [], 4, 5, 6, true, false),
    makeCase([2, 3], [], 30, 31, 32, false, false),
    makeCase([], [4], 3, 5, 2, true, true),
    makeCase([2, 1], [1, 3], 4, 3, 5, false, true),
    makeCase([1], [3], 4, 3, 5, true, false),
  ];

  it.each(broadcastCases.map((c) => [caseName(c), c] as const))(
    '%s: sums over the broadcast batches (stock gradient on explicitly broadcast operands, cpu)',
    async (_, c) => {
      const outShape = referenceMatMul(new Float32Array(size(c.a)), c.a, new Float32Array(size(c.b)), c.b, c.tA, c.tB).shape;
      const av = values(c.a);
      const bv = values(c.b);
      const wv = values(outShape);
      try {
        useStockKernels();
        await tf.setBackend('cpu');
        const [wantA, wantB] = grads(c, av, bv, wv, outShape, true);
        useTrainchartKernels();
        await tf.setBackend('wasm');
        const [gotA, gotB] = grads(c, av, bv, wv, outShape, false);
        expect(relErr(gotA!, wantA!)).toBeLessThan(2e-6);
        expect(relErr(gotB!, wantB!)).toBeLessThan(2e-6);
      } finally {
        useTrainchartKernels();
        await tf.setBackend('wasm');
      }
    },
  );

  it('without broadcasting computes exactly what the stock gradient does (cpu, same kernels, bit for bit)', async () => {
    await tf.setBackend('cpu');
    // Only the gradient function differs between the two runs: the kernels stay trainchart's
    // (the kernel set also swaps the cpu matmul kernels, which round differently).
    useStockKernels();
    const stockGrad = tf.getGradient('BatchMatMul');
    useTrainchartKernels();
    const oursGrad = tf.getGradient('BatchMatMul');
    expect(oursGrad).not.toBe(stockGrad);
    try {
      for (const c of [makeCase([], [], 5, 7, 3, false, false), makeCase([2], [2], 5, 7, 3, true, true)]) {
        const outShape = [...c.a.slice(0, -2), 5, 3];
        const av = values(c.a);
        const bv = values(c.b);
        const wv = values(outShape);
        tf.registerGradient(stockGrad);
        const stock = grads(c, av, bv, wv, outShape, false);
        tf.registerGradient(oursGrad);
        const ours = grads(c, av, bv, wv, outShape, false);
        expect(ours).toEqual(stock);
      }
    } finally {
      tf.registerGradient(oursGrad);
      useTrainchartKernels();
      await tf.setBackend('wasm');
    }
  });
});
