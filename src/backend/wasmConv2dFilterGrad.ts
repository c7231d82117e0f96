/**
 * A wasm `Conv2DBackpropFilter` kernel for convolutions with few filter taps per output
 * channel (kh·kw·Cin small — a CNN's first layer), as one matrix product over patches.
 *
 *   dW[a, b, ci, co] = Σ_{n,i,j} x[n, i·sh − padTop + a, j·sw − padLeft + b, ci] · dy[n, i, j, co]
 *
 * is Pᵀ·dy₂ with P the im2col matrix of x ([N·OH·OW, kh·kw·Cin], one row of taps per output
 * pixel) and dy₂ = dy as [N·OH·OW, Cout]. trainchart's general filter gradient computes the
 * same sum as a forward convolution of x's channels by dy (conv2dGradient.ts); XNNPACK then
 * gets an output of only kh·kw·Cin pixels per product — 9 for a 3×3 filter over a grey image —
 * and spends its time packing the [OH, OW, N, Cout] "filter" (plus a transpose of dy to get it
 * in that layout). Here the patches are gathered once, in JavaScript, straight into a
 * wasm-heap tensor laid out as Pᵀ (rows = taps), and the product is one fast `BatchMatMul`;
 * dy is used as it is. Measured with fresh inputs (as in training), the `cnn` preset's first
 * layer: 5.0 → 4.0 ms CPU per batch of 64.
 *
 * Used when kh·kw·Cin < {@link IM2COL_MAX_TAPS}; wider filters, NCHW data and non-float32
 * inputs go to the kernel this one replaced (trainchart's forward-convolution form).
 */
import * as tf from '@tensorflow/tfjs';
import { free, runWasmKernel, view, type BackendWasm, type Info } from './wasmTensorOps.js';

export const CONV2D_BACKPROP_FILTER = 'Conv2DBackpropFilter';

/**
 * From this many taps (kh·kw·Cin, the rows of Pᵀ) on, the forward-convolution form is faster.
 * Measured (fresh inputs, 64 images, 3×3 filters, 32 outputs): 9 taps 1.25× faster here,
 * 18 taps 1.1×, 36 taps 0.94×, 54 taps 0.82×.
 */
export const IM2COL_MAX_TAPS = 32;

interface BackpropFilterAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

/**
 * Pᵀ of NHWC `x` for the convolution `info`: row (a·kw + b)·Cin + ci holds, for every output
 * pixel (n, i, j) in order, the input value tap (a, b, ci) of that pixel reads (0 in padding).
 */
export function im2colTransposedInto(out: Float32Array, x: Float32Array, info: tf.backend_util.Conv2DInfo): void {
  const { batchSize: nb, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const { dilationHeight: dh, dilationWidth: dw } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  let o = 0;
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      for (let ci = 0; ci < c; ci++) {
        for (let n = 0; n < nb; n++) {
          for (let i = 0; i < oh; i++) {
            const row = i * sh - padTop + a * dh;
            if (row < 0 || row >= h) {
              out.fill(0, o, o + ow);
              o += ow;
              continue;
            }
            const rowStart = ((n * h + row) * w) * c + ci;
            for (let j = 0; j < ow; j++, o++) {
              const col = j * sw - padLeft + b * dw;
              out[o] = col >= 0 && col < w ? x[rowStart + col * c]! : 0;
            }
          }
        }
      }
    }
  }
}

/** The kernel config that replaces trainchart's forward-convolution `Conv2DBackpropFilter` on wasm. */
export function wasmConv2dFilterGradKernel(fallback: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: CONV2D_BACKPROP_FILTER,
    backendName: 'wasm',
    setupFunc: fallback.setupFunc,
    kernelFunc: (args) => {
      const { x, dy } = args.inputs as { x: Info; dy: Info };
      const attrs = args.attrs as unknown as BackpropFilterAttrs;
      const { filterShape } = attrs;
      const taps = filterShape[0] * filterShape[1] * filterShape[2];
      if (attrs.dataFormat === 'NCHW' || x.dtype !== 'float32' || dy.dtype !== 'float32' || taps >= IM2COL_MAX_TAPS) {
        return fallback.kernelFunc(args);
      }
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        filterShape,
        attrs.strides,
        1,
        attrs.pad,
        attrs.dimRoundingMode,
      );
      const pixels = info.batchSize * info.outHeight * info.outWidth;
      if (pixels === 0) return fallback.kernelFunc(args);
      const backend = args.backend as unknown as BackendWasm;
      const patches = backend.makeOutput([taps, pixels], 'float32');
      try {
        // Views taken after the allocation: an allocation may grow (replace) the heap's buffer.
        im2colTransposedInto(backend.typedArrayFromHeap(patches) as Float32Array, backend.typedArrayFromHeap(x) as Float32Array, info);
        const dw = runWasmKernel(
          'BatchMatMul',
          backend,
          { a: patches, b: view(dy, [pixels, info.outChannels]) },
          { transposeA: false, transposeB: false },
        );
        return { dataId: dw.dataId, shape: [...filterShape], dtype: 'float32' };
      } finally {
        free(backend, [patches]);
      }
    },
  };
}
