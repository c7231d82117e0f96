/**
 * Which kernels and gradients tfjs runs: trainchart's replacements, or tfjs's stock ones.
 *
 * trainchart speeds training up without patching tfjs: it re-registers a few kernels and
 * gradients through tfjs's own registries (`registerKernel`, `registerGradient`), which every
 * tfjs op — trainchart's, tfjs-layers', the user's — then uses. Two sets exist:
 *
 * - 'trainchart' (the default, installed by `selectBackend`):
 *   - wasm `BatchMatMul` and `_FusedMatMul` that never take the stock slow path for transposed
 *     or batched operands (wasmMatMul.ts, wasmFusedMatMul.ts) — the backward pass of every
 *     Dense layer is made of those;
 *   - a `BatchMatMul` gradient that handles broadcast batch dimensions (matMulGradient.ts);
 *   - a `Conv2D` gradient made of forward convolutions (conv2dGradient.ts).
 * - 'stock': tfjs's own kernels and gradients for all of the above, so that a benchmark can
 *   run its peers (a tfjs hand loop, `model.fit`) as users of plain tfjs would, and measure
 *   what trainchart's set gains, in the same process.
 *
 * Either way the kernels a backend *lacks* stay filled in (wasm has no `Conv2DBackpropFilter`;
 * trainchart supplies it), or CNNs could not train on wasm at all.
 *
 * The switch takes effect at the next kernel call (tfjs looks kernels up on every call) and
 * recreates nothing: no backend, no tensor, no variable. Switching does not change results
 * beyond float32 rounding (XNNPACK sums in another order than the stock loop), so a run's
 * `weightsSha256` depends on the set it ran with — compare runs on the same set.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors.js';
import { registerConv2dGradient, restoreStockConv2dGradient, withTfjsWarningsMuted } from './conv2dGradient.js';
import { matMulGradConfig } from './matMulGradient.js';
import { BATCH_MAT_MUL, wasmBatchMatMulKernel } from './wasmMatMul.js';
import { FUSED_MAT_MUL, wasmFusedMatMulKernel } from './wasmFusedMatMul.js';

export type KernelSet = 'stock' | 'trainchart';

export const KERNEL_SETS: readonly KernelSet[] = ['stock', 'trainchart'];

let current: KernelSet = 'trainchart';

/** tfjs's registrations, captured the first time trainchart replaces each one. */
const stock: { matMulGrad?: tf.GradConfig; wasmMatMul?: tf.KernelConfig; wasmFused?: tf.KernelConfig } = {};
/** trainchart's wasm kernels, made once from the stock ones they call. */
let ours: { matMul: tf.KernelConfig; fused: tf.KernelConfig } | undefined;

function replaceKernel(config: tf.KernelConfig): void {
  if (tf.getKernel(config.kernelName, config.backendName) === config) return;
  tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
}

function installTrainchart(): void {
  registerConv2dGradient();
  const grad = tf.getGradient(BATCH_MAT_MUL);
  if (grad !== matMulGradConfig) {
    stock.matMulGrad ??= grad;
    tf.registerGradient(matMulGradConfig);
  }
  // The wasm kernels exist once @tensorflow/tfjs-backend-wasm has been imported.
  const matMul = tf.getKernel(BATCH_MAT_MUL, 'wasm');
  const fused = tf.getKernel(FUSED_MAT_MUL, 'wasm');
  if (matMul === undefined || fused === undefined) return;
  if (ours === undefined) {
    stock.wasmMatMul = matMul;
    stock.wasmFused = fused;
    ours = { matMul: wasmBatchMatMulKernel(matMul), fused: wasmFusedMatMulKernel(fused, matMul) };
  }
  replaceKernel(ours.matMul);
  replaceKernel(ours.fused);
}

function installStock(): void {
  restoreStockConv2dGradient();
  if (stock.matMulGrad !== undefined && tf.getGradient(BATCH_MAT_MUL) !== stock.matMulGrad) {
    tf.registerGradient(stock.matMulGrad);
  }
  if (stock.wasmMatMul !== undefined) replaceKernel(stock.wasmMatMul);
  if (stock.wasmFused !== undefined) replaceKernel(stock.wasmFused);
}

/**
 * Installs the current set for every backend loaded so far. `selectBackend` calls it after
 * loading a backend; idempotent and cheap when nothing changed.
 * @internal
 */
export function applyKernelSet(): void {
  withTfjsWarningsMuted(() => (current === 'trainchart' ? installTrainchart() : installStock()));
}

/**
 * Switches between trainchart's kernels and gradients and tfjs's stock ones, in-process (see
 * the file comment). The choice is kept: a later `selectBackend` installs it for the backend it
 * loads rather than going back to 'trainchart'.
 */
export function setKernelSet(set: KernelSet): void {
  if (!(KERNEL_SETS as readonly unknown[]).includes(set)) {
    throw new ConfigError(`Unknown kernel set '${String(set)}': use 'trainchart' (faster, the default) or 'stock' (tfjs's own).`);
  }
  current = set;
  applyKernelSet();
}

/** The kernel set in use: 'trainchart' unless `setKernelSet('stock')` was called. */
export function getKernelSet(): KernelSet {
  return current;
}

/** `setKernelSet('stock')`: tfjs's own kernels and gradients. */
export function useStockKernels(): void {
  setKernelSet('stock');
}

/** `setKernelSet('trainchart')`: trainchart's faster kernels and gradients (the default). */
export function useTrainchartKernels(): void {
  setKernelSet('trainchart');
}
