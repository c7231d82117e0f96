/**
 * A wasm `_FusedMatMul` kernel (matmul + bias + activation, what `tf.fused.matMul` and every
 * tfjs-layers Dense layer run) that never takes the wasm backend's slow path.
 *
 * The stock kernel shares the stock `BatchMatMul`'s flaw (see wasmMatMul.ts): only an
 * untransposed product with batch 1 on both sides reaches XNNPACK; anything else runs the
 * naive loop at ~2 GFLOP/s. That loop also adds the bias wrongly: past the first output row
 * it adds the bias's last element to every column (measured with tfjs-backend-wasm 4.22:
 * `fused.matMul` with `transposeA` and a bias [10, 20] gives row 2 as [x+20, y+20]).
 *
 * So, like the `BatchMatMul` replacement:
 * - untransposed operands with b of batch 1 and a rank-1 bias (the Dense-layer case) keep the
 *   stock fast path, a's batches stacked as rows so that batched inputs get it too;
 * - everything else is computed unfused from fast kernels: the fast matmul, then the wasm
 *   `Add` (bias, broadcast) and the activation's own kernel — the same composition tfjs-core
 *   uses when it does not fuse (`applyActivation`).
 *
 * The gradient is not affected: tfjs-core's fused matmul carries its own (a `customGrad`),
 * made of plain transposed `matMul`s, which the replaced `BatchMatMul` runs fast.
 */
import type * as tf from '@tensorflow/tfjs';
import { fastMatMul, planMatMul, type MatMulKernelFunc } from './wasmMatMul.js';
import { free, runWasmKernel, view, type BackendWasm, type Info } from './wasmTensorOps.js';

export const FUSED_MAT_MUL = '_FusedMatMul';

interface FusedInputs {
  a: Info;
  b: Info;
  bias?: Info;
  preluActivationWeights?: Info;
}

interface FusedAttrs {
  transposeA: boolean;
  transposeB: boolean;
  activation: string;
  leakyreluAlpha?: number;
}

type FusedKernelFunc = (args: { inputs: FusedInputs; backend: BackendWasm; attrs: FusedAttrs }) => Info;

/** The activation as the wasm kernel that computes it; undefined for one tfjs does not know. */
function activate(backend: BackendWasm, x: Info, inputs: FusedInputs, attrs: FusedAttrs): Info | null | undefined {
  switch (attrs.activation) {
    case 'linear':
      return null;
    case 'relu':
      return runWasmKernel('Relu', backend, { x });
    case 'relu6':
      return runWasmKernel('Relu6', backend, { x });
    case 'elu':
      return runWasmKernel('Elu', backend, { x });
    case 'sigmoid':
      return runWasmKernel('Sigmoid', backend, { x });
    case 'leakyrelu':
      return runWasmKernel('LeakyRelu', backend, { x }, { alpha: attrs.leakyreluAlpha ?? 0.2 });
    case 'prelu':
      return runWasmKernel('Prelu', backend, { x, alpha: inputs.preluActivationWeights });
    default:
      return undefined;
  }
}

const KNOWN_ACTIVATIONS = new Set(['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu']);

/** The kernel config that replaces the stock wasm `_FusedMatMul` (see the file comment). */
export function wasmFusedMatMulKernel(stockFused: tf.KernelConfig, stockMatMul: tf.KernelConfig): tf.KernelConfig {
  const fusedFunc = stockFused.kernelFunc as unknown as FusedKernelFunc;
  const matMulFunc = stockMatMul.kernelFunc as unknown as MatMulKernelFunc;
  return {
    kernelName: FUSED_MAT_MUL,
    backendName: 'wasm',
    setupFunc: stockFused.setupFunc,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as Parameters<FusedKernelFunc>[0];
      const { a, b, bias } = inputs;
      const { transposeA, transposeB } = attrs;
      const plan = planMatMul(a, b, transposeA, transposeB);
      // Calls the stock kernel must handle or reject itself (dtype, shapes, activation).
      if (plan === null || !KNOWN_ACTIVATIONS.has(attrs.activation)) return fusedFunc({ inputs, backend, attrs });
      const rank1Bias = bias == null || bias.shape.length === 1;

      if (rank1Bias && plan.batchB === 1 && !transposeA && !transposeB) {
        if (plan.batchA === 1) return fusedFunc({ inputs, backend, attrs });
        const { m, k, n, batchA, outBatch } = plan;
        const out = fusedFunc({
          inputs: { ...inputs, a: view(a, [1, batchA * m, k]), b: view(b, [1, k, n]) },
          backend,
          attrs,
        });
        return { dataId: out.dataId, shape: [...outBatch, m, n], dtype: 'float32' };
      }

      let y = fastMatMul(backend, a, b, transposeA, transposeB, plan, matMulFunc);
      try {
        if (bias != null) {
          const withBias = runWasmKernel('Add', backend, { a: y, b: bias });
          free(backend, [y]);
          y = withBias;
        }
        const activated = activate(backend, y, inputs, attrs);
        if (activated) {
          free(backend, [y]);
          y = activated;
        }
        return y;
      } catch (e) {
        free(backend, [y]);
        throw e;
      }
    },
  };
}
