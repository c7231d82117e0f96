/**
 * Picks the fastest TensorFlow.js backend that loads here.
 *
 * The native backends (`@tensorflow/tfjs-node-gpu`, `@tensorflow/tfjs-node`) are optional peer
 * dependencies: they need a libtensorflow download at install time that is not always possible,
 * so 'auto' treats any failure to load them as "not available" and moves on to wasm, then cpu.
 */
import * as tf from '@tensorflow/tfjs';
import { BackendError } from '../errors.js';
import { withTfjsWarningsMuted } from './conv2dGradient.js';
import { applyKernelSet } from './kernelSet.js';

export type BackendChoice = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

export interface BackendInfo {
  /** tfjs backend name: 'tensorflow', 'wasm' or 'cpu'. */
  name: string;
  /** Whether it is a native TensorFlow (libtensorflow) backend. */
  native: boolean;
  /** How to get a native backend when none was loaded; null when one was. */
  hint: string | null;
}

const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

const NATIVE_HINT =
  'no native TensorFlow backend loaded; for much faster training run `npm install @tensorflow/tfjs-node` ' +
  '(or `npm install @tensorflow/tfjs-node-gpu` on a machine with CUDA)';

const CHOICES: readonly BackendChoice[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

const firstLine = (e: unknown) => (e instanceof Error ? e.message.split('\n')[0] : String(e));

/**
 * `tf.setBackend` resolves false (it does not throw) when a backend fails to initialise, and
 * tfjs warns about it on the console; the caller reports failures itself, so keep it quiet.
 */
async function activate(name: string): Promise<boolean> {
  // Already the active, initialised backend: nothing to do. (tf.setBackend would keep the
  // instance but re-run every kernel's setup and reset the profiler.)
  if (tf.getBackend() === name && tf.findBackend(name) != null) return true;
  const env = tf.env();
  const previous = env.getBool('IS_TEST');
  env.set('IS_TEST', true);
  try {
    const ok = await tf.setBackend(name);
    if (ok) await tf.ready();
    return ok && tf.getBackend() === name;
  } finally {
    env.set('IS_TEST', previous);
  }
}

/** Tries the native packages in order; returns the failure of each when none loads. */
async function loadNative(): Promise<{ ok: true } | { ok: false; failures: string[] }> {
  const failures: string[] = [];
  for (const pkg of NATIVE_PACKAGES) {
    try {
      // A non-literal specifier keeps TypeScript from requiring these optional packages.
      const specifier: string = pkg;
      await import(specifier);
      if (await activate('tensorflow')) return { ok: true };
      failures.push(`${pkg}: loaded, but its 'tensorflow' backend did not initialise`);
    } catch (e) {
      failures.push(`${pkg}: ${firstLine(e)}`);
    }
  }
  return { ok: false, failures };
}

async function loadWasm(): Promise<{ ok: true } | { ok: false; failure: string }> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    if (await activate('wasm')) return { ok: true };
    return { ok: false, failure: 'the wasm backend did not initialise' };
  } catch (e) {
    return { ok: false, failure: `@tensorflow/tfjs-backend-wasm: ${firstLine(e)}` };
  }
}

/**
 * The cpu backend prints a "Hi, looks like you are running TensorFlow.js in Node.js" banner
 * on its first tensor write. Do that first write now, with tfjs warnings muted, so it never
 * shows — whether cpu is picked now or switched to later.
 */
function consumeCpuBanner(): void {
  if (!tf.env().getBool('IS_NODE')) return;
  withTfjsWarningsMuted(() => {
    const cpu = tf.findBackend('cpu');
    if (cpu == null) return;
    const dataId = cpu.write(new Float32Array(1), [1], 'float32');
    cpu.disposeData(dataId);
  });
}

/**
 * Activates a backend and returns what was picked.
 *
 * - 'auto': @tensorflow/tfjs-node-gpu, then @tensorflow/tfjs-node, then wasm, then cpu.
 * - 'tensorflow' | 'wasm' | 'cpu': that backend, or a `BackendError` saying why it failed.
 *
 * Then installs trainchart's kernels and gradients (see kernelSet.ts: a wasm matmul that is ~10×
 * faster on the transposed products of every backward pass, a Conv2D gradient that lets CNNs
 * train on wasm), or tfjs's stock ones after `setKernelSet('stock')`. `log` gets
 * `backend: <name>` and, when the backend is not native, a line with how to get one.
 * Safe to call more than once.
 */
export async function selectBackend(
  choice: BackendChoice = 'auto',
  log?: (line: string) => void,
): Promise<BackendInfo> {
  if (!CHOICES.includes(choice)) {
    throw new BackendError(`Unknown backend '${String(choice)}': use one of ${CHOICES.join(', ')}.`);
  }
  consumeCpuBanner();
  let name: string | null = null;

  if (choice === 'auto' || choice === 'tensorflow') {
    const native = await loadNative();
    if (native.ok) name = 'tensorflow';
    else if (choice === 'tensorflow') {
      throw new BackendError(
        `The native 'tensorflow' backend could not be loaded (${native.failures.join('; ')}). ` +
          'Install @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node, or use --backend wasm.',
      );
    }
  }
  if (name === null && (choice === 'auto' || choice === 'wasm')) {
    const wasm = await loadWasm();
    if (wasm.ok) name = 'wasm';
    else if (choice === 'wasm') {
      throw new BackendError(
        `The wasm backend could not be loaded (${wasm.failure}). ` +
          'Reinstall dependencies (npm ci) so @tensorflow/tfjs-backend-wasm and its .wasm files are present, ' +
          'or use --backend cpu.',
      );
    }
  }
  if (name === null) {
    if (!(await activate('cpu'))) {
      throw new BackendError("The cpu backend could not be initialised; check that @tensorflow/tfjs is installed intact.");
    }
    name = 'cpu';
  }

  // After the backend is loaded, so that its kernels are replaced (and those it lacks filled
  // in) too. fit never does this: registration happens here, once per backend choice.
  applyKernelSet();

  const native = name === 'tensorflow';
  const info: BackendInfo = { name, native, hint: native ? null : NATIVE_HINT };
  log?.(`backend: ${name}`);
  if (info.hint) log?.(`hint: ${info.hint}`);
  return info;
}
