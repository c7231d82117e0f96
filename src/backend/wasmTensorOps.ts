/**
 * Low-level helpers for trainchart's wasm kernels: calling other wasm kernels and moving
 * memory on the wasm heap *without* going through the tfjs engine.
 *
 * A kernel gets `TensorInfo`s (a data id, a shape, a dtype) and returns one. Inside a kernel
 * the engine is the wrong tool: every op it runs would be tracked, profiled and would need a
 * `tf.Tensor` wrapper. Instead these helpers call the registered wasm kernel functions
 * directly, exactly as the wasm backend's own kernels call each other (its `BatchMatMul`
 * calls its `Reshape` this way), and every temporary they make is freed with
 * `backend.disposeData` by the caller — so a kernel built from them leaves no tensor and no
 * heap allocation behind.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { BackendError } from '../errors.js';

export type { BackendWasm };
export type Info = tf.TensorInfo;

/** Runs the wasm kernel registered under `kernelName` on TensorInfos, bypassing the engine. */
export function runWasmKernel(
  kernelName: string,
  backend: BackendWasm,
  inputs: Record<string, Info | undefined>,
  attrs: Record<string, unknown> = {},
): Info {
  const kernel = tf.getKernel(kernelName, 'wasm');
  if (kernel === undefined) {
    throw new BackendError(
      `trainchart's wasm kernels need the wasm '${kernelName}' kernel, which is not registered; ` +
        'reinstall @tensorflow/tfjs-backend-wasm (npm ci).',
    );
  }
  return kernel.kernelFunc({ inputs, backend, attrs } as unknown as Parameters<tf.KernelFunc>[0]) as Info;
}

/**
 * The same data seen with another shape of the same size. Owns nothing: never dispose it
 * (dispose the tensor it views instead). The wasm kernels read a tensor's shape from the
 * TensorInfo they are given and its memory from the data id, so this is a free reshape.
 */
export function view(x: Info, shape: number[]): Info {
  return { dataId: x.dataId, shape, dtype: x.dtype };
}

/** A transposed copy (wasm `Transpose` kernel); the caller disposes it. */
export function transpose(backend: BackendWasm, x: Info, perm: number[]): Info {
  return runWasmKernel('Transpose', backend, { x }, { perm });
}

/** Frees tensors made by a kernel (never views, never the kernel's inputs). */
export function free(backend: BackendWasm, infos: readonly Info[]): void {
  for (const t of infos) backend.disposeData(t.dataId);
}

/**
 * Copies `count` float32 values from element `srcStart` of `src` to element `dstStart` of
 * `dst`, inside the wasm heap. The heap view is fetched afresh: any allocation may have grown
 * (and so replaced) the heap's buffer.
 */
export function copyFloats(
  backend: BackendWasm,
  src: Info,
  srcStart: number,
  dst: Info,
  dstStart: number,
  count: number,
): void {
  // An Emscripten module property; tfjs's type for the module leaves Emscripten's out.
  const heap = (backend.wasm as unknown as { HEAPF32: Float32Array }).HEAPF32;
  const s = (backend.getMemoryOffset(src.dataId) >>> 2) + srcStart;
  const d = (backend.getMemoryOffset(dst.dataId) >>> 2) + dstStart;
  // A view of a shared heap (the threaded build) is not detached when the heap grows, only too
  // short: copyWithin would then clamp silently. Fail instead (it would be a stale view).
  if (Math.max(s, d) + count > heap.length) {
    throw new BackendError(`copyFloats: the wasm heap view is stale (${heap.length} floats, a copy up to ${Math.max(s, d) + count}); a trainchart defect, please report it`);
  }
  heap.copyWithin(d, s, s + count);
}

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
