/**
 * A wasm `Sum` kernel that sums over *leading* axes without transposing first.
 *
 * Why: every bias gradient is a sum over the leading axes — `dy [64,26,26,16]` summed to
 * `[16]` for a conv layer's bias, `dy [64,256]` to `[256]` for a Dense layer's. The stock wasm
 * kernel can only reduce the innermost axes, so it first transposes the whole tensor to put
 * the summed axes last (a full copy), then sums: 2.8 ms per batch for the `cnn` preset's first
 * conv bias. Summing the rows of the [R, C] matrix the tensor already is takes one pass.
 *
 * The columns are accumulated in float64 and rounded once, so results match the stock kernel
 * within float32 rounding (and are never less accurate). Other reductions (innermost axes,
 * mixed axes, other dtypes) go to the stock kernel.
 *
 * (Not as 1ᵀ·X through the matmul kernel: XNNPACK packs its right operand on every call, and
 * packing a fresh [43264, 16] takes longer than this loop; with a tensor it has seen before it
 * looks 4× faster, which is a cache effect training never sees.)
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm, Info } from './wasmTensorOps.js';

export const SUM = 'Sum';

/** out[c] = Σ_r x[r·C + c], accumulated in float64. */
export function sumRowsInto(out: Float32Array, x: Float32Array, rows: number, cols: number): void {
  const acc = new Float64Array(cols);
  for (let r = 0, p = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++, p++) acc[c]! += x[p]!;
  }
  out.set(acc);
}

/** Replaces the stock wasm `Sum` (see the file comment). */
export function wasmSumKernel(stock: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: SUM,
    backendName: 'wasm',
    setupFunc: stock.setupFunc,
    kernelFunc: (args) => {
      const { x } = args.inputs as { x: Info };
      const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
      const rank = x.shape.length;
      if (x.dtype !== 'float32' || rank < 2) return stock.kernelFunc(args);
      const axes = [...new Set(tf.util.parseAxisParam(axis, x.shape))].sort((p, q) => p - q);
      // Only a leading block of axes [0, 1, …, k−1] that leaves some axis unsummed.
      const k = axes.length;
      if (k === 0 || k === rank || axes[k - 1] !== k - 1) return stock.kernelFunc(args);
      const rows = tf.util.sizeFromShape(x.shape.slice(0, k));
      const kept = x.shape.slice(k);
      const cols = tf.util.sizeFromShape(kept);
      if (rows * cols === 0) return stock.kernelFunc(args);
      const backend = args.backend as unknown as BackendWasm;
      const outShape = keepDims ? [...new Array<number>(k).fill(1), ...kept] : kept;
      const out = backend.makeOutput(outShape, 'float32');
      // Views taken after the allocation: an allocation may grow (replace) the heap's buffer.
      sumRowsInto(backend.typedArrayFromHeap(out) as Float32Array, backend.typedArrayFromHeap(x) as Float32Array, rows, cols);
      return out;
    },
  };
}
