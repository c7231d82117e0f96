/**
 * wasm `Identity` and same-dtype `Cast` kernels that share the input's memory instead of
 * copying it.
 *
 * Why: tfjs tensors are immutable, and the engine clones every tensor it saves for backprop
 * (`Identity`), while tfjs-core's ReLU gradient casts a float32 mask to float32 (`Cast`). The
 * cpu and webgl backends answer both by adding a reference to the same data; the wasm backend
 * copies the whole buffer each time — 3 copies of the first conv layer's [64,26,26,16]
 * activations per batch in the `cnn` preset. Here the output is the input's data with one more
 * reference (exactly what the wasm `Reshape` kernel does), which the engine releases as usual.
 * Strings and real casts go to the stock kernels.
 */
import type * as tf from '@tensorflow/tfjs';
import type { BackendWasm, Info } from './wasmTensorOps.js';

export const IDENTITY = 'Identity';
export const CAST = 'Cast';

function share(backend: BackendWasm, x: Info): Info {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

/** Replaces the stock wasm `Identity` (see the file comment). */
export function wasmIdentityKernel(stock: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: IDENTITY,
    backendName: 'wasm',
    setupFunc: stock.setupFunc,
    kernelFunc: (args) => {
      const { x } = args.inputs as { x: Info };
      if (x.dtype === 'string') return stock.kernelFunc(args);
      return share(args.backend as unknown as BackendWasm, x);
    },
  };
}

/** Replaces the stock wasm `Cast`: a cast to the dtype a tensor already has shares it. */
export function wasmCastKernel(stock: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: CAST,
    backendName: 'wasm',
    setupFunc: stock.setupFunc,
    kernelFunc: (args) => {
      const { x } = args.inputs as { x: Info };
      const { dtype } = args.attrs as { dtype: string };
      if (x.dtype === 'string' || dtype !== x.dtype) return stock.kernelFunc(args);
      return share(args.backend as unknown as BackendWasm, x);
    },
  };
}
