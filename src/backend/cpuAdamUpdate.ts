/**
 * One Adam/AdamW update of a parameter as a single cpu kernel (trainchart kernel set only).
 *
 * Why: composed of tfjs ops (updateRules.ts: `adamUpdate`), one update is 12 element-wise
 * kernels, each a pass over the parameter that allocates a new array and calls its operation
 * through the cpu backend's shared, megamorphic binary loop. For an MLP 784-128-10 that was a
 * quarter of a training batch on cpu once the matrix products were fast (cpuMatMul.ts). This
 * kernel makes the same update in one pass and three new arrays (p, m, v).
 *
 * It computes *exactly* what the composition computes on the cpu backend: each of those ops
 * rounds its result to float32, and so does this loop, after every operation, in the same
 * order (`Math.fround`). A run's weights do not depend on whether the kernel is installed
 * (test/cpu-adam-update.test.ts checks it bit for bit against the composed ops).
 *
 * Inputs: p, g, m, v (same shape, float32) and the hyper-parameter scalars of `AdamScalars`
 * (l2 and decay only when used). Outputs: [p′, m′, v′]; the caller assigns them.
 */
import * as tf from '@tensorflow/tfjs';
import { BackendError } from '../errors.js';

export const ADAM_UPDATE = 'TrainchartAdamUpdate';

interface BackendCpu {
  data: { get(dataId: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

const fr = Math.fround;

/** Numbers stored in a typed array, as the cpu backend keeps them. */
type Numbers = ArrayLike<number>;

/**
 * A cpu tensor's values. A float32 tensor's storage need not be a Float32Array: tfjs casts
 * int32 and bool to float32 without copying (an Int32Array or Uint8Array stays), and the cpu
 * ops read such values as the numbers they hold — so does this kernel.
 */
function numbers(backend: BackendCpu, inputs: Record<string, tf.TensorInfo | undefined>, name: string): Numbers {
  const x = inputs[name];
  const v = x === undefined ? undefined : backend.data.get(x.dataId).values;
  if (!ArrayBuffer.isView(v) || v instanceof DataView) {
    throw new BackendError(`${ADAM_UPDATE}: input '${name}' has no numeric cpu values; this is a trainchart bug, please report it.`);
  }
  return v as unknown as Numbers;
}

/** The kernel, registered for the cpu backend while the trainchart kernel set is in use. */
export const cpuAdamUpdateKernel: tf.KernelConfig = {
  kernelName: ADAM_UPDATE,
  backendName: 'cpu',
  kernelFunc: (args) => {
    const { inputs, backend } = args as unknown as { inputs: Record<string, tf.TensorInfo | undefined>; backend: BackendCpu };
    const p = numbers(backend, inputs, 'p');
    const g0 = numbers(backend, inputs, 'g');
    const m = numbers(backend, inputs, 'm');
    const v = numbers(backend, inputs, 'v');
    const n = p.length;
    if (g0.length !== n || m.length !== n || v.length !== n) {
      throw new BackendError(`${ADAM_UPDATE}: p, g, m and v must have the same size (got ${n}, ${g0.length}, ${m.length}, ${v.length}).`);
    }
    const scalar = (name: string) => numbers(backend, inputs, name)[0]!;
    const beta1 = scalar('beta1');
    const oneMinusBeta1 = scalar('oneMinusBeta1');
    const beta2 = scalar('beta2');
    const oneMinusBeta2 = scalar('oneMinusBeta2');
    const stepSize = scalar('stepSize');
    const epsHat = scalar('epsHat');
    const l2 = inputs.l2 ? scalar('l2') : null;
    const decay = inputs.decay ? scalar('decay') : null;
    const p1 = new Float32Array(n);
    const m1 = new Float32Array(n);
    const v1 = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const pi = p[i]!;
      // Each line is one op of updateRules.adamUpdate, rounded as its cpu kernel rounds.
      const g = l2 === null ? g0[i]! : fr(g0[i]! + fr(pi * l2));
      const mi = fr(fr(m[i]! * beta1) + fr(g * oneMinusBeta1));
      const vi = fr(fr(v[i]! * beta2) + fr(fr(g * g) * oneMinusBeta2));
      const upd = fr(fr(mi / fr(fr(Math.sqrt(vi)) + epsHat)) * stepSize);
      const base = decay === null ? pi : fr(pi * decay);
      p1[i] = base - upd;
      m1[i] = mi;
      v1[i] = vi;
    }
    const shape = [...inputs.p!.shape];
    return [
      backend.makeTensorInfo(shape, 'float32', p1),
      backend.makeTensorInfo(shape, 'float32', m1),
      backend.makeTensorInfo(shape, 'float32', v1),
    ];
  },
};
