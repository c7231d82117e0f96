/**
 * A wasm `MaxPoolGrad` kernel (the backward pass of every max-pooling layer), written as one
 * pass over the wasm heap in JavaScript.
 *
 * Why: the stock wasm kernel is the slowest step of a small CNN's training — 9.6 of ~46 ms
 * per batch for the `cnn` preset's first pool ([64,26,26,16], 2×2) — because for every
 * input pixel it walks the output windows that may contain it, through a callback. And it
 * gets windows without a positive value wrong: it starts its running maximum at the smallest
 * *positive* float (`numeric_limits<float>::min()`), so a window of zeros or negatives has
 * no maximum and its gradient is dropped or sent to element 0.
 *
 * Here each output window is scanned once: the first maximum (strictly greater wins, as in
 * tfjs's cpu backend and TensorFlow) gets the window's `dy`, summed when windows overlap.
 * Padding positions are not candidates. Same results as the cpu backend's kernel (bit for bit
 * when windows do not overlap; overlapping contributions may be summed in another order).
 */
import * as tf from '@tensorflow/tfjs';
import { free, type BackendWasm, type Info } from './wasmTensorOps.js';

export const MAX_POOL_GRAD = 'MaxPoolGrad';

interface MaxPoolGradAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/**
 * dx for `MaxPool` over NHWC `x`: for each window, its first maximum receives the window's dy.
 * Plain loops over flat arrays, so it can be tested against a reference independently.
 */
export function maxPoolGradInto(
  dx: Float32Array,
  x: Float32Array,
  dy: Float32Array,
  info: tf.backend_util.Conv2DInfo,
): void {
  const { batchSize, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  const dh = info.dilationHeight;
  const dw = info.dilationWidth;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  const rowStride = w * c;
  dx.fill(0);
  let o = 0; // index into dy, in NHWC order
  for (let n = 0; n < batchSize; n++) {
    const image = n * h * rowStride;
    for (let i = 0; i < oh; i++) {
      const top = i * sh - padTop;
      for (let j = 0; j < ow; j++) {
        const left = j * sw - padLeft;
        for (let ch = 0; ch < c; ch++, o++) {
          let best = -Infinity;
          let at = -1;
          for (let a = 0; a < fh; a++) {
            const row = top + a * dh;
            if (row < 0 || row >= h) continue;
            const rowStart = image + row * rowStride + ch;
            for (let b = 0; b < fw; b++) {
              const col = left + b * dw;
              if (col < 0 || col >= w) continue;
              const p = rowStart + col * c;
              const v = x[p]!;
              if (v > best) {
                best = v;
                at = p;
              }
            }
          }
          if (at >= 0) dx[at]! += dy[o]!;
        }
      }
    }
  }
}

/** The kernel config that replaces the stock wasm `MaxPoolGrad` (see the file comment). */
export function wasmMaxPoolGradKernel(stock: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: MAX_POOL_GRAD,
    backendName: 'wasm',
    setupFunc: stock.setupFunc,
    kernelFunc: (args) => {
      const { inputs, backend: be, attrs } = args;
      const backend = be as unknown as BackendWasm;
      const { dy, input } = inputs as { dy: Info; input: Info };
      if (dy.dtype !== 'float32' || input.dtype !== 'float32' || input.shape.length !== 4) return stock.kernelFunc(args);
      const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as MaxPoolGradAttrs;
      const info = tf.backend_util.computePool2DInfo(
        input.shape as [number, number, number, number],
        filterSize,
        strides,
        1,
        pad,
        dimRoundingMode,
      );
      const dx = backend.makeOutput(input.shape, 'float32');
      try {
        // Views taken after the allocation: an allocation may grow (replace) the heap's buffer.
        maxPoolGradInto(
          backend.typedArrayFromHeap(dx) as Float32Array,
          backend.typedArrayFromHeap(input) as Float32Array,
          backend.typedArrayFromHeap(dy) as Float32Array,
          info,
        );
      } catch (e) {
        free(backend, [dx]);
        throw e;
      }
      return dx;
    },
  };
}
