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
 *   - wasm `MaxPoolGrad` in one pass (wasmMaxPoolGrad.ts), `Sum` over leading axes without a
 *     transpose (wasmSum.ts: every bias gradient), `Identity` and same-dtype `Cast` without a
 *     copy (wasmSharedCopies.ts);
 *   - cpu `BatchMatMul` and `_FusedMatMul` as a packed, register-blocked product, 5–15× the
 *     stock cpu kernels (cpuMatMul.ts);
 *   - cpu `Conv2D` and `FusedConv2D` as the same packed product, patches read straight from
 *     the input (cpuConv2d.ts): every convolution of a training step, the gradient's included;
 *   - cpu `Transpose` (rank ≤ 4) as four strided loops, and cpu `MaxPoolGrad` in one pass
 *     (cpuTranspose.ts, cpuMaxPoolGrad.ts): the rest of a CNN's backward pass on cpu;
 *   - a cpu kernel of its own for one Adam/AdamW update in one pass (cpuAdamUpdate.ts), which
 *     the optimizer uses while it is registered; bit for bit what its composed ops compute;
 *   - a `BatchMatMul` gradient that handles broadcast batch dimensions (matMulGradient.ts);
 *   - a `Conv2D` gradient made of forward convolutions (conv2dGradient.ts), whose filter part
 *     on wasm is one patch matrix product when the filter has few taps (wasmConv2dFilterGrad.ts).
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
import {
  adoptBackpropFilterKernel,
  registerConv2dGradient,
  restoreStockConv2dGradient,
  withTfjsWarningsMuted,
} from './conv2dGradient.js';
import { matMulGradConfig } from './matMulGradient.js';
import { BATCH_MAT_MUL, wasmBatchMatMulKernel } from './wasmMatMul.js';
import { FUSED_MAT_MUL, wasmFusedMatMulKernel } from './wasmFusedMatMul.js';
import { MAX_POOL_GRAD, wasmMaxPoolGradKernel } from './wasmMaxPoolGrad.js';
import { CAST, IDENTITY, wasmCastKernel, wasmIdentityKernel } from './wasmSharedCopies.js';
import { SUM, wasmSumKernel } from './wasmSum.js';
import { cpuAdamUpdateKernel } from './cpuAdamUpdate.js';
import { CPU_TRANSPOSE, cpuTransposeKernel } from './cpuTranspose.js';
import { CPU_MAX_POOL_GRAD, cpuMaxPoolGradKernel } from './cpuMaxPoolGrad.js';
import { CPU_CONV2D, CPU_FUSED_CONV2D, cpuConv2dKernel, cpuFusedConv2dKernel } from './cpuConv2d.js';
import { CPU_BATCH_MAT_MUL, CPU_FUSED_MAT_MUL, cpuBatchMatMulKernel, cpuFusedMatMulKernel } from './cpuMatMul.js';
import { CONV2D_BACKPROP_FILTER, wasmConv2dFilterGradKernel } from './wasmConv2dFilterGrad.js';

export type KernelSet = 'stock' | 'trainchart';

export const KERNEL_SETS: readonly KernelSet[] = ['stock', 'trainchart'];

/** A kernel trainchart replaces, built from the stock one(s) of its backend it falls back on. */
interface Replacement {
  kernelName: string;
  make(stock: tf.KernelConfig, stockOf: (kernelName: string) => tf.KernelConfig): tf.KernelConfig;
}

const WASM_REPLACEMENTS: readonly Replacement[] = [
  { kernelName: BATCH_MAT_MUL, make: (s) => wasmBatchMatMulKernel(s) },
  { kernelName: FUSED_MAT_MUL, make: (s, stockOf) => wasmFusedMatMulKernel(s, stockOf(BATCH_MAT_MUL)) },
  { kernelName: MAX_POOL_GRAD, make: (s) => wasmMaxPoolGradKernel(s) },
  { kernelName: IDENTITY, make: (s) => wasmIdentityKernel(s) },
  { kernelName: CAST, make: (s) => wasmCastKernel(s) },
  { kernelName: SUM, make: (s) => wasmSumKernel(s) },
  {
    // Replaces trainchart's own forward-convolution fill-in (wasm has no stock one).
    kernelName: CONV2D_BACKPROP_FILTER,
    make: (s) => {
      const k = wasmConv2dFilterGradKernel(s);
      adoptBackpropFilterKernel(k);
      return k;
    },
  },
];

const CPU_REPLACEMENTS: readonly Replacement[] = [
  { kernelName: CPU_BATCH_MAT_MUL, make: (s) => cpuBatchMatMulKernel(s) },
  { kernelName: CPU_FUSED_MAT_MUL, make: (s) => cpuFusedMatMulKernel(s) },
  { kernelName: CPU_CONV2D, make: (s) => cpuConv2dKernel(s) },
  { kernelName: CPU_FUSED_CONV2D, make: (s) => cpuFusedConv2dKernel(s) },
  { kernelName: CPU_TRANSPOSE, make: (s) => cpuTransposeKernel(s) },
  { kernelName: CPU_MAX_POOL_GRAD, make: (s) => cpuMaxPoolGradKernel(s) },
];

/** Each backend's replacements, with tfjs's kernels they replace and trainchart's, made once. */
interface BackendKernels {
  backendName: string;
  replacements: readonly Replacement[];
  stock: Map<string, tf.KernelConfig>;
  ours: Map<string, tf.KernelConfig>;
}

const BACKENDS: readonly BackendKernels[] = [
  { backendName: 'wasm', replacements: WASM_REPLACEMENTS, stock: new Map(), ours: new Map() },
  { backendName: 'cpu', replacements: CPU_REPLACEMENTS, stock: new Map(), ours: new Map() },
];

/** Kernels trainchart adds, with no stock counterpart: registered only with the trainchart set. */
const ADDITIONS: readonly tf.KernelConfig[] = [cpuAdamUpdateKernel];

let current: KernelSet = 'trainchart';

/** tfjs's registration, captured the first time trainchart replaces it. */
let stockMatMulGrad: tf.GradConfig | undefined;

function replaceKernel(config: tf.KernelConfig): void {
  const registered = tf.getKernel(config.kernelName, config.backendName);
  if (registered === config) return;
  if (registered !== undefined) tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
}

function installTrainchart(): void {
  registerConv2dGradient();
  const grad = tf.getGradient(BATCH_MAT_MUL);
  if (grad !== matMulGradConfig) {
    stockMatMulGrad ??= grad;
    tf.registerGradient(matMulGradConfig);
  }
  for (const kernels of BACKENDS) {
    // A backend's kernels exist once its package has been imported (wasm: @tensorflow/tfjs-backend-wasm).
    if (kernels.ours.size === 0) {
      const { backendName, replacements, stock } = kernels;
      if (replacements.some((r) => tf.getKernel(r.kernelName, backendName) === undefined)) continue;
      for (const r of replacements) stock.set(r.kernelName, tf.getKernel(r.kernelName, backendName));
      const stockOf = (name: string) => stock.get(name)!;
      for (const r of replacements) kernels.ours.set(r.kernelName, r.make(stockOf(r.kernelName), stockOf));
    }
    for (const k of kernels.ours.values()) replaceKernel(k);
  }
  for (const k of ADDITIONS) replaceKernel(k);
}

function installStock(): void {
  restoreStockConv2dGradient();
  if (stockMatMulGrad !== undefined && tf.getGradient(BATCH_MAT_MUL) !== stockMatMulGrad) {
    tf.registerGradient(stockMatMulGrad);
  }
  for (const kernels of BACKENDS) for (const k of kernels.stock.values()) replaceKernel(k);
  for (const k of ADDITIONS) if (tf.getKernel(k.kernelName, k.backendName) !== undefined) tf.unregisterKernel(k.kernelName, k.backendName);
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
