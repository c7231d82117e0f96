/**
 * cpu `Conv2D` and `FusedConv2D` kernels (NHWC, float32) as one packed matrix product, with
 * the patches read straight from the input.
 *
 * Why: the stock cpu convolution is a six-deep loop reading through index arithmetic, a third
 * of a CNN training batch on cpu (profiled: the MNIST CNN preset at batch 64). trainchart's
 * Conv2D gradient (conv2dGradient.ts) is made of forward convolutions, so every convolution of
 * a training step — forward, input gradient, filter gradient — goes through this kernel.
 *
 * A convolution is the product of its patch matrix P [N·OH·OW, kh·kw·Cin] with the filter seen
 * as a matrix F [kh·kw·Cin, Cout] (its own memory layout), and the product's rows are the
 * output in NHWC order. P is never built: cpuMatMul's packed product asks for 4 rows at a time,
 * and this kernel copies those 4 patches from the input (zeros where a tap falls in the
 * padding), Cin contiguous values per tap. Sums are float64 over k = (tap row, tap column,
 * channel) in that order, rounded once; a per-channel bias and relu are applied as the sums are
 * stored, any other activation by its own cpu kernel.
 *
 * NCHW, other dtypes and values not stored as a Float32Array go to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { multiplyPacked, packColumns, packingBuffer, type RowPacker } from './cpuMatMul.js';
import { KNOWN_ACTIVATIONS, NO_EPILOGUE, finishFused, floats, planFused, type BackendCpu, type Epilogue } from './cpuFusedEpilogue.js';

export const CPU_CONV2D = 'Conv2D';
export const CPU_FUSED_CONV2D = 'FusedConv2D';

type Info = tf.TensorInfo;

interface ConvAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dilations: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  activation?: string;
  leakyreluAlpha?: number;
}

interface ConvInputs {
  x: Info;
  filter: Info;
  bias?: Info;
  preluActivationWeights?: Info;
}

let keptFilter: Float32Array = new Float32Array(0);

/** The convolution's output values [N, OH, OW, Cout] (with the epilogue), or null for the stock kernel. */
function convolve(backend: BackendCpu, x: Info, filter: Info, attrs: ConvAttrs, e: Epilogue): { values: Float32Array; shape: number[] } | null {
  if (attrs.dataFormat !== 'NHWC' || x.dtype !== 'float32' || filter.dtype !== 'float32' || x.shape.length !== 4) return null;
  const xv = floats(backend, x);
  const fv = floats(backend, filter);
  if (xv === undefined || fv === undefined) return null;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    attrs.strides,
    attrs.dilations,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  const { batchSize: nb, inHeight: h, inWidth: w, inChannels: cin, outHeight: oh, outWidth: ow, outChannels: cout } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const m = nb * oh * ow;
  const k = kh * kw * cin;
  if (m * k * cout === 0) return null;
  // A padded tap contributes 0·w here, where the stock kernel skips it: with a non-finite
  // filter value (an overflowed dy, as the filter gradient's filter) that is NaN, not ±Inf.
  const padded = top > 0 || left > 0 || (oh - 1) * sh + (kh - 1) * dh + 1 - top > h || (ow - 1) * sw + (kw - 1) * dw + 1 - left > w;
  if (padded) for (let i = 0; i < fv.length; i++) if (!Number.isFinite(fv[i]!)) return null;
  const panels = packingBuffer(keptFilter, 4 * k * ((cout + 3) >> 2), (b) => (keptFilter = b));
  packColumns(fv, 0, false, k, cout, panels);
  const perImage = oh * ow;
  const packPatches: RowPacker = (i0, ap) => {
    for (let r = 0; r < 4; r++) {
      const i = i0 + r;
      if (i >= m) {
        for (let q = 0; q < k; q++) ap[q * 4 + r] = 0;
        continue;
      }
      const n = Math.floor(i / perImage);
      const rest = i - n * perImage;
      const oi = Math.floor(rest / ow);
      const oj = rest - oi * ow;
      let q = r;
      for (let a = 0; a < kh; a++) {
        const y = oi * sh + a * dh - top;
        for (let b = 0; b < kw; b++) {
          const xx = oj * sw + b * dw - left;
          if (y < 0 || y >= h || xx < 0 || xx >= w) {
            for (let c = 0; c < cin; c++, q += 4) ap[q] = 0;
          } else {
            const src = ((n * h + y) * w + xx) * cin;
            for (let c = 0; c < cin; c++, q += 4) ap[q] = xv[src + c]!;
          }
        }
      }
    }
  };
  const values = new Float32Array(m * cout);
  multiplyPacked(packPatches, m, k, cout, panels, values, 0, e);
  return { values, shape: [nb, oh, ow, cout] };
}

/** The kernel config that replaces the stock cpu `Conv2D` (see the file comment). */
export function cpuConv2dKernel(stock: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: CPU_CONV2D,
    backendName: 'cpu',
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as { inputs: ConvInputs; backend: BackendCpu; attrs: ConvAttrs };
      const out = convolve(backend, inputs.x, inputs.filter, attrs, NO_EPILOGUE);
      if (out === null) return stock.kernelFunc(args);
      return backend.makeTensorInfo(out.shape, 'float32', out.values);
    },
  };
}

/** The kernel config that replaces the stock cpu `FusedConv2D` (see the file comment). */
export function cpuFusedConv2dKernel(stock: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: CPU_FUSED_CONV2D,
    backendName: 'cpu',
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as { inputs: ConvInputs; backend: BackendCpu; attrs: ConvAttrs };
      const { bias } = inputs;
      const activation = attrs.activation ?? 'linear';
      if (!KNOWN_ACTIVATIONS.has(activation)) return stock.kernelFunc(args);
      const fused = planFused(backend, bias, inputs.filter.shape[3]!, 4, activation);
      const out = convolve(backend, inputs.x, inputs.filter, attrs, fused.epilogue);
      if (out === null) return stock.kernelFunc(args);
      const y = backend.makeTensorInfo(out.shape, 'float32', out.values);
      return finishFused(backend, y, bias, fused, inputs, { activation, leakyreluAlpha: attrs.leakyreluAlpha });
    },
  };
}
