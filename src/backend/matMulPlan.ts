/**
 * What one `BatchMatMul` / `_FusedMatMul` call multiplies, with its batch dimensions split off
 * and broadcast: shared by trainchart's wasm and cpu matmul kernels, which both rewrite a call
 * into plain row-major matrix products.
 */
import * as tf from '@tensorflow/tfjs';

type Info = tf.TensorInfo;
const sizeOf = (shape: readonly number[]): number => tf.util.sizeFromShape(shape as number[]);

/** What one `BatchMatMul` call multiplies, with the batch dimensions split off. */
export interface MatMulPlan {
  m: number;
  k: number;
  n: number;
  /** Batch dimensions of the output: a's and b's, broadcast. */
  outBatch: number[];
  batchA: number;
  batchB: number;
  batchOut: number;
}

/**
 * The plan for `a · b`, or null when the stock kernel must handle (or reject) the call
 * itself: a non-float32 dtype, rank < 2, mismatched inner dimensions, an empty operand.
 * Throws tfjs's own error for batch shapes that do not broadcast.
 */
export function planMatMul(a: Info, b: Info, transposeA: boolean, transposeB: boolean): MatMulPlan | null {
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || ra < 2 || rb < 2) return null;
  const m = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const k = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const kb = transposeB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const n = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if (k !== kb || m * k * n === 0) return null;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const outBatch = tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
  return { m, k, n, outBatch, batchA: sizeOf(outerA), batchB: sizeOf(outerB), batchOut: sizeOf(outBatch) };
}

/**
 * For each output batch (row-major over `outBatch`), the index of the operand's batch that
 * feeds it, with numpy broadcasting: the operand's batch dims are right-aligned with the
 * output's and a dim of 1 is repeated.
 */
export function broadcastBatchIndex(outBatch: readonly number[], operandBatch: readonly number[]): Int32Array {
  const r = outBatch.length;
  const dims = [...new Array<number>(r - operandBatch.length).fill(1), ...operandBatch];
  const out = new Int32Array(sizeOf(outBatch));
  for (let i = 0; i < out.length; i++) {
    let rest = i;
    let index = 0;
    let stride = 1;
    for (let d = r - 1; d >= 0; d--) {
      const coord = rest % outBatch[d]!;
      rest = (rest - coord) / outBatch[d]!;
      if (dims[d] !== 1) index += coord * stride;
      stride *= dims[d]!;
    }
    out[i] = index;
  }
  return out;
}
