/**
 * What a fused cpu kernel (matmul or conv, + bias + activation) does while storing its sums and
 * what it leaves to other kernels, and the cpu-backend helpers both use — shared by cpuMatMul.ts
 * and cpuConv2d.ts.
 *
 * A bias of one value per output column ([n], [1, n], …) is added to each sum before its one
 * rounding, and relu is applied while storing when nothing is still to be added; a bias of any
 * other shape goes through the cpu `Add` afterwards and any other activation through its own
 * cpu kernel — the composition tfjs-core uses when it does not fuse.
 */
import * as tf from '@tensorflow/tfjs';

type Info = tf.TensorInfo;

/** The part of tfjs's cpu backend (MathBackendCPU) these kernels use. */
export interface BackendCpu {
  data: { get(dataId: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): Info;
  disposeIntermediateTensorInfo(info: Info): void;
}

/** The float32 values of a cpu tensor, or undefined when they are not a Float32Array. */
export function floats(backend: BackendCpu, x: Info): Float32Array | undefined {
  const v = backend.data.get(x.dataId).values;
  return v instanceof Float32Array ? v : undefined;
}

/** What is done to each sum as it is stored: + bias[j] (null: none), then relu or not. */
export interface Epilogue {
  bias: Float32Array | null;
  relu: boolean;
}

export const NO_EPILOGUE: Epilogue = { bias: null, relu: false };

/** Runs the cpu kernel registered under `kernelName` on TensorInfos, bypassing the engine. */
export function runCpuKernel(kernelName: string, backend: BackendCpu, inputs: Record<string, Info | undefined>, attrs: Record<string, unknown> = {}): Info {
  const kernel = tf.getKernel(kernelName, 'cpu');
  return kernel.kernelFunc({ inputs, backend, attrs } as unknown as Parameters<tf.KernelFunc>[0]) as Info;
}

/** The activation by its own cpu kernel; null for linear, undefined for one tfjs does not know. */
export function activate(
  backend: BackendCpu,
  x: Info,
  inputs: { preluActivationWeights?: Info },
  attrs: { activation: string; leakyreluAlpha?: number },
): Info | null | undefined {
  switch (attrs.activation) {
    case 'linear':
      return null;
    case 'relu':
      return runCpuKernel('Relu', backend, { x });
    case 'relu6':
      return runCpuKernel('Relu6', backend, { x });
    case 'elu':
      return runCpuKernel('Elu', backend, { x });
    case 'sigmoid':
      return runCpuKernel('Sigmoid', backend, { x });
    case 'leakyrelu':
      return runCpuKernel('LeakyRelu', backend, { x }, { alpha: attrs.leakyreluAlpha ?? 0.2 });
    case 'prelu':
      return runCpuKernel('Prelu', backend, { x, alpha: inputs.preluActivationWeights });
    default:
      return undefined;
  }
}

export const KNOWN_ACTIVATIONS = new Set(['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu']);

export interface FusedPlan {
  /** Applied by the product as it stores each sum. */
  epilogue: Epilogue;
  /** The bias still to add with the cpu `Add` (not one value per column). */
  biasLeft: boolean;
  /** The activation still to apply with its own kernel. */
  activationLeft: boolean;
}

/** The split for an output of rank `outRank` with `n` columns. */
export function planFused(backend: BackendCpu, bias: Info | undefined, n: number, outRank: number, activation: string): FusedPlan {
  const biasValues = bias == null ? null : floats(backend, bias);
  const perColumn =
    bias != null &&
    biasValues !== undefined &&
    bias.shape.length <= outRank &&
    bias.shape.at(-1) === n &&
    bias.shape.every((d, i) => d === 1 || i === bias.shape.length - 1);
  const biasLeft = bias != null && !perColumn;
  const reluStored = activation === 'relu' && !biasLeft;
  return {
    epilogue: { bias: perColumn ? biasValues! : null, relu: reluStored },
    biasLeft,
    activationLeft: activation !== 'linear' && !reluStored,
  };
}

/** `y` with what `plan` left done; frees every intermediate, `y` included when it is replaced or on error. */
export function finishFused(
  backend: BackendCpu,
  y: Info,
  bias: Info | undefined,
  plan: FusedPlan,
  inputs: { preluActivationWeights?: Info },
  attrs: { activation: string; leakyreluAlpha?: number },
): Info {
  if (!plan.biasLeft && !plan.activationLeft) return y;
  let out = y;
  try {
    if (plan.biasLeft) {
      const withBias = runCpuKernel('Add', backend, { a: out, b: bias });
      backend.disposeIntermediateTensorInfo(out);
      out = withBias;
    }
    const activated = plan.activationLeft ? activate(backend, out, inputs, attrs) : null;
    if (activated) {
      backend.disposeIntermediateTensorInfo(out);
      out = activated;
    }
    return out;
  } catch (e) {
    backend.disposeIntermediateTensorInfo(out);
    throw e;
  }
}
