/**
 * A wasm `BatchMatMul` kernel that never takes the wasm backend's slow path.
 *
 * Why: the stock wasm kernel hands a product to XNNPACK (packed, SIMD, ~13–28 GFLOP/s here)
 * only when neither operand is transposed and both have batch size 1; every other call —
 * any `transposeA`/`transposeB`, any batch — runs a naive blocked triple loop at ~2 GFLOP/s.
 * The gradients of `matMul` and of the fused matmul every Dense layer uses are exactly the
 * transposed forms (dW = xᵀ·dy, dx = dy·Wᵀ), so on wasm the backward pass of an MLP spent
 * most of its time there: `matMul(x, dy, true, false)` 5.7 ms where `matMul(transpose(x), dy)`
 * takes 0.56 ms for the same [64,784]ᵀ·[64,128].
 *
 * So this kernel rewrites every call into the stock kernel's fast form:
 *
 * - a transposed operand is first transposed by the wasm `Transpose` kernel (a linear-time
 *   copy, small next to the product);
 * - when only `a` is batched (b has batch 1 — a Dense layer on rank-3 input), a's batches are
 *   stacked as rows: one [B·M, K]·[K, N] product;
 * - when only `b` is batched, b's batches are laid side by side as columns:
 *   [M, K]·[K, B·N], then the result's columns are split back into batches (two transposes);
 * - when both are batched, each output batch is one fast product of the two matching slices
 *   (batch dimensions broadcast as numpy/TensorFlow do); for small matrices, where a call's
 *   fixed cost beats the slow loop's, both are expanded to the output's batch and the stock
 *   kernel does them in one call.
 *
 * Every temporary is freed before returning (`backend.disposeData`); nothing is cached.
 * Numerically the results equal the stock kernel's within float32 rounding (XNNPACK sums in
 * another order), and are deterministic run to run.
 */
import * as tf from '@tensorflow/tfjs';
import { copyFloats, free, transpose, view, type BackendWasm, type Info } from './wasmTensorOps.js';
import { broadcastBatchIndex, planMatMul, type MatMulPlan } from './matMulPlan.js';

export { broadcastBatchIndex, planMatMul, type MatMulPlan } from './matMulPlan.js';

export const BATCH_MAT_MUL = 'BatchMatMul';

/**
 * Below this many multiply-adds per matrix product (M·K·N), a batch with both operands
 * batched goes to the stock kernel in one call: a fast product per batch costs a few kernel
 * calls and an XNNPACK operator setup (tens of µs), more than the slow loop needs for a
 * product this small. Measured on this 2-core machine: 32³ per batch is already 2× faster
 * per batch-loop than in the slow loop.
 */
export const PER_BATCH_MIN_MACS = 16 * 1024;

/** A kernel function with the signature of the stock wasm `BatchMatMul`. */
export type MatMulKernelFunc = (args: {
  inputs: { a: Info; b: Info };
  backend: BackendWasm;
  attrs: { transposeA: boolean; transposeB: boolean };
}) => Info;

/**
 * `a` as [batch, M, K] row-major (transposing when `transposeA`); pushes what it allocates
 * onto `temps`.
 */
function rowsOf(backend: BackendWasm, a: Info, batch: number, m: number, k: number, transposed: boolean, temps: Info[]): Info {
  if (!transposed) return view(a, [batch, m, k]);
  const t = transpose(backend, view(a, [batch, k, m]), [0, 2, 1]);
  temps.push(t);
  return t;
}

/** `b` as [batch, K, N] row-major (transposing when `transposeB`). */
function colsOf(backend: BackendWasm, b: Info, batch: number, k: number, n: number, transposed: boolean, temps: Info[]): Info {
  if (!transposed) return view(b, [batch, k, n]);
  const t = transpose(backend, view(b, [batch, n, k]), [0, 2, 1]);
  temps.push(t);
  return t;
}

/** A copy of `x` ([batch, r, c]) expanded to the output's batches by `index`. */
function expandBatches(backend: BackendWasm, x: Info, index: Int32Array, block: number): Info {
  const out = backend.makeOutput([index.length, ...x.shape.slice(1)], 'float32');
  for (let i = 0; i < index.length; i++) copyFloats(backend, x, index[i]! * block, out, i * block, block);
  return out;
}

/**
 * `a · b` (with the flags) through the stock kernel's fast path only; returns a new tensor of
 * shape [...outBatch, M, N]. `stock` is the stock wasm `BatchMatMul` kernel function.
 */
export function fastMatMul(
  backend: BackendWasm,
  a: Info,
  b: Info,
  transposeA: boolean,
  transposeB: boolean,
  plan: MatMulPlan,
  stock: MatMulKernelFunc,
): Info {
  const { m, k, n, outBatch, batchA, batchB, batchOut } = plan;
  const flat = { transposeA: false, transposeB: false };
  const temps: Info[] = [];
  let out: Info | undefined;
  let done = false;
  try {
    if (batchB === 1) {
      // a's batches stacked as rows; b is one matrix.
      const rows = rowsOf(backend, a, batchA, m, k, transposeA, temps);
      const mat = colsOf(backend, b, 1, k, n, transposeB, temps);
      out = stock({ inputs: { a: view(rows, [1, batchA * m, k]), b: mat }, backend, attrs: flat });
    } else if (batchA === 1) {
      // b's batches side by side as columns: [K, B, N] (one transpose whether or not b was
      // transposed), then the result [M, B, N] is split back into [B, M, N].
      const rows = rowsOf(backend, a, 1, m, k, transposeA, temps);
      const side = transposeB
        ? transpose(backend, view(b, [batchB, n, k]), [2, 0, 1])
        : transpose(backend, view(b, [batchB, k, n]), [1, 0, 2]);
      temps.push(side);
      const wide = stock({ inputs: { a: rows, b: view(side, [1, k, batchB * n]) }, backend, attrs: flat });
      temps.push(wide);
      out = transpose(backend, view(wide, [m, batchB, n]), [1, 0, 2]);
    } else if (m * k * n >= PER_BATCH_MIN_MACS) {
      // One fast product per output batch, each on copies of the two slices it needs.
      const rows = rowsOf(backend, a, batchA, m, k, transposeA, temps);
      const cols = colsOf(backend, b, batchB, k, n, transposeB, temps);
      const ia = broadcastBatchIndex(outBatch, a.shape.slice(0, -2));
      const ib = broadcastBatchIndex(outBatch, b.shape.slice(0, -2));
      out = backend.makeOutput([batchOut, m, n], 'float32');
      for (let i = 0; i < batchOut; i++) {
        const sa = backend.makeOutput([1, m, k], 'float32');
        const sb = backend.makeOutput([1, k, n], 'float32');
        try {
          copyFloats(backend, rows, ia[i]! * m * k, sa, 0, m * k);
          copyFloats(backend, cols, ib[i]! * k * n, sb, 0, k * n);
          const r = stock({ inputs: { a: sa, b: sb }, backend, attrs: flat });
          copyFloats(backend, r, 0, out, i * m * n, m * n);
          backend.disposeData(r.dataId);
        } finally {
          free(backend, [sa, sb]);
        }
      }
    } else {
      // Small products: the stock loop in one call, on operands expanded to the output's
      // batches when they broadcast (the stock kernel pairs batches by index modulo size,
      // which is numpy broadcasting only when one side has batch 1).
      let a3 = view(a, [batchA, ...a.shape.slice(-2)]);
      let b3 = view(b, [batchB, ...b.shape.slice(-2)]);
      if (batchA !== batchOut) {
        a3 = expandBatches(backend, a3, broadcastBatchIndex(outBatch, a.shape.slice(0, -2)), m * k);
        temps.push(a3);
      }
      if (batchB !== batchOut) {
        b3 = expandBatches(backend, b3, broadcastBatchIndex(outBatch, b.shape.slice(0, -2)), k * n);
        temps.push(b3);
      }
      out = stock({ inputs: { a: a3, b: b3 }, backend, attrs: { transposeA, transposeB } });
    }
    done = true;
    return { dataId: out.dataId, shape: [...outBatch, m, n], dtype: 'float32' };
  } finally {
    free(backend, temps);
    if (!done && out !== undefined) backend.disposeData(out.dataId);
  }
}

/** The kernel config that replaces the stock wasm `BatchMatMul` (see the file comment). */
export function wasmBatchMatMulKernel(stock: tf.KernelConfig): tf.KernelConfig {
  const stockFunc = stock.kernelFunc as unknown as MatMulKernelFunc;
  return {
    kernelName: BATCH_MAT_MUL,
    backendName: 'wasm',
    // The stock kernel's setup binds its wasm function; run it whenever the backend sets up
    // kernels, since this kernel calls the stock one.
    setupFunc: stock.setupFunc,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as Parameters<MatMulKernelFunc>[0];
      const { a, b } = inputs;
      const { transposeA, transposeB } = attrs;
      const plan = planMatMul(a, b, transposeA, transposeB);
      if (plan === null || (!transposeA && !transposeB && plan.batchOut === 1)) {
        return stockFunc({ inputs, backend, attrs });
      }
      return fastMatMul(backend, a, b, transposeA, transposeB, plan, stockFunc);
    },
  };
}
