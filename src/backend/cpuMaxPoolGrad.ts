/**
 * A cpu `MaxPoolGrad` kernel: each output window scanned once (`maxPoolGradInto`, shared with
 * the wasm kernel), its first maximum receiving the window's dy.
 *
 * Why: the stock cpu kernel first recomputes every window's argmax into a position buffer,
 * then walks, for every input pixel, the windows that may contain it, both through
 * `TensorBuffer.get` (coordinates checked and converted per element): with fast convolutions
 * that was a third of a CNN training batch on cpu. Same results (bit for bit when windows do
 * not overlap; overlapping contributions may be summed in another order).
 */
import * as tf from '@tensorflow/tfjs';
import { maxPoolGradInto } from './wasmMaxPoolGrad.js';

export const CPU_MAX_POOL_GRAD = 'MaxPoolGrad';

interface BackendCpu {
  data: { get(dataId: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

interface MaxPoolGradAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** The kernel config that replaces the stock cpu `MaxPoolGrad` (see the file comment). */
export function cpuMaxPoolGradKernel(stock: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: CPU_MAX_POOL_GRAD,
    backendName: 'cpu',
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as { inputs: { dy: tf.TensorInfo; input: tf.TensorInfo }; backend: BackendCpu; attrs: MaxPoolGradAttrs };
      const { dy, input } = inputs;
      const x = backend.data.get(input.dataId).values;
      const g = backend.data.get(dy.dataId).values;
      if (dy.dtype !== 'float32' || input.dtype !== 'float32' || input.shape.length !== 4 || !(x instanceof Float32Array) || !(g instanceof Float32Array)) {
        return stock.kernelFunc(args);
      }
      const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
      const dx = new Float32Array(x.length);
      maxPoolGradInto(dx, x, g, info);
      return backend.makeTensorInfo([...input.shape], 'float32', dx);
    },
  };
}
