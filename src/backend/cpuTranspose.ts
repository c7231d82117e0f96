/**
 * A cpu `Transpose` kernel for tensors of rank ≤ 4: four nested loops over the output with the
 * input's strides precomputed per output axis.
 *
 * Why: the stock cpu kernel computes every element's coordinates through `indexToLoc` /
 * `locToIndex`, allocating arrays per element; trainchart's Conv2D gradient transposes x and
 * dy for every filter gradient (conv2dGradient.ts), which made transposes 16% of a CNN training
 * batch on cpu once the convolutions themselves were fast. A transpose is a copy: the result
 * is the stock kernel's bit for bit. Rank > 4 and string or complex tensors go to the stock one.
 */
import * as tf from '@tensorflow/tfjs';

export const CPU_TRANSPOSE = 'Transpose';

interface BackendCpu {
  data: { get(dataId: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: tf.TypedArray): tf.TensorInfo;
}

const NUMERIC: ReadonlySet<string> = new Set(['float32', 'int32', 'bool']);

/** The kernel config that replaces the stock cpu `Transpose` (see the file comment). */
export function cpuTransposeKernel(stock: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: CPU_TRANSPOSE,
    backendName: 'cpu',
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as { inputs: { x: tf.TensorInfo }; backend: BackendCpu; attrs: { perm: number[] } };
      const { x } = inputs;
      const { perm } = attrs;
      const rank = x.shape.length;
      const src = backend.data.get(x.dataId).values;
      if (rank > 4 || perm.length !== rank || !NUMERIC.has(x.dtype) || !ArrayBuffer.isView(src) || src instanceof DataView) {
        return stock.kernelFunc(args);
      }
      const input = src as unknown as ArrayLike<number>;
      // Padded to rank 4 with leading axes of size 1, which the loops below run once.
      const lead = 4 - rank;
      const inShape = [...new Array<number>(lead).fill(1), ...x.shape];
      const fullPerm = [...Array.from({ length: lead }, (_, i) => i), ...perm.map((p) => p + lead)];
      const inStrides = [inShape[1]! * inShape[2]! * inShape[3]!, inShape[2]! * inShape[3]!, inShape[3]!, 1];
      const [d0, d1, d2, d3] = fullPerm.map((p) => inShape[p]!) as [number, number, number, number];
      const [t0, t1, t2, t3] = fullPerm.map((p) => inStrides[p]!) as [number, number, number, number];
      const out = tf.util.getTypedArrayFromDType(x.dtype as 'float32', d0 * d1 * d2 * d3);
      let o = 0;
      for (let i0 = 0; i0 < d0; i0++) {
        const b0 = i0 * t0;
        for (let i1 = 0; i1 < d1; i1++) {
          const b1 = b0 + i1 * t1;
          for (let i2 = 0; i2 < d2; i2++) {
            const b2 = b1 + i2 * t2;
            if (t3 === 1) {
              for (let i3 = 0; i3 < d3; i3++) out[o++] = input[b2 + i3]!;
            } else {
              for (let i3 = 0, p = b2; i3 < d3; i3++, p += t3) out[o++] = input[p]!;
            }
          }
        }
      }
      return backend.makeTensorInfo(perm.map((p) => x.shape[p]!), x.dtype, out);
    },
  };
}
