/**
 * Picks the fastest TensorFlow.js backend that loads here.
 *
 * The native backends (`@tensorflow/tfjs-node-gpu`, `@tensorflow/tfjs-node`) are optional peer
 * dependencies: they need a libtensorflow download at install time that is not always possible,
 * so 'auto' treats any failure to load them as "not available" and moves on to wasm, then cpu.
 */
import * as tf from '@tensorflow/tfjs';
import { BackendError, ConfigError } from '../errors.js';
import { withTfjsWarningsMuted } from './conv2dGradient.js';
import { applyKernelSet } from './kernelSet.js';
import { autoThreads, type AutoThreads } from './parallelism.js';
import { backendStarted, initThreadedWasm, MAX_WASM_THREADS, wasmThreadsCount, withoutRunSingleAdvice } from './wasmThreads.js';

export type BackendChoice = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

export interface BackendInfo {
  /** tfjs backend name: 'tensorflow', 'wasm' or 'cpu'. */
  name: string;
  /** Whether it is a native TensorFlow (libtensorflow) backend. */
  native: boolean;
  /** How to get a native backend when none was loaded; null when one was. */
  hint: string | null;
  /** Threads the kernels compute with: 1 on cpu, the pool's size on wasm; null on native (its own pool). */
  threads: number | null;
}

export interface BackendOptions {
  /**
   * Threads for the wasm backend (1…8, default 1): more than 1 starts its multithreaded SIMD
   * build, bit-identical to the single-threaded one and faster only where the machine runs
   * threads in parallel (docs/benchmarks.md, "Multithreaded wasm"). 'auto' measures that first
   * (~0.14 s a measurement, parallelism.ts) and takes every core it may use (up to 8) if they run
   * at once, else half as many (down to 2) if those do, else 1;
   * it falls back to 1 thread, with a log line, if the threaded build does not start. Fixed for
   * the process by the first start of the wasm backend. Ignored when 'auto' loads a native backend.
   */
  threads?: number | 'auto';
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
  if (tf.getBackend() === name && backendStarted(name)) return true;
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

async function loadWasm(threads: number | 'auto' | undefined, log?: (line: string) => void): Promise<{ ok: true } | { ok: false; failure: string }> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
  } catch (e) {
    return { ok: false, failure: `@tensorflow/tfjs-backend-wasm: ${firstLine(e)}` };
  }
  if (backendStarted('wasm')) {
    // Started before (its thread pool is made once per process): it is used as it runs.
    const running = await wasmThreadsCount();
    if (typeof threads === 'number' && threads !== running) {
      throw new BackendError(
        `the wasm backend already runs with ${running} thread(s) in this process, and its threads are fixed when it first starts: ` +
          `ask for ${threads} at the first selectBackend call (or --threads in a new process)`,
      );
    }
    if (threads === 'auto') log?.(`threads: auto → ${running} (the wasm backend already runs with ${running} in this process)`);
  } else if (threads === 'auto') {
    if (await startWasmAuto(log)) return { ok: true };
  } else if (threads !== undefined && threads > 1) {
    // Asked for threads: a failure to start them is the caller's to see (a BackendError), not a fallback.
    await initThreadedWasm(threads, () => activate('wasm'));
    return { ok: true };
  }
  return (await activate('wasm')) ? { ok: true } : { ok: false, failure: 'the wasm backend did not initialise' };
}

/**
 * `threads: 'auto'`: measures, starts threaded when it pays, logs what it took and why. Best
 * effort: a probe or start that fails leaves one thread (the same results), said in the log.
 * True when the threaded build runs; false to start the single-threaded one. (Exported for its
 * tests, with `choose` in place of the measurement.)
 */
export async function startWasmAuto(
  log: ((line: string) => void) | undefined,
  choose: () => Promise<AutoThreads> = () => autoThreads(MAX_WASM_THREADS),
): Promise<boolean> {
  let chosen;
  try {
    chosen = await choose();
  } catch (e) {
    log?.(`threads: auto → 1 (could not measure whether threads run in parallel here: ${firstLine(e)})`);
    return false;
  }
  // The figure behind the choice: that of the threads taken, or (when it took 1) of all the cores.
  const measured = chosen.threads > 1 ? chosen.threads : chosen.cores;
  const ran = chosen.parallelism === null ? null : `${measured} threads ran ${chosen.parallelism.toFixed(2)}× one's throughput`;
  if (chosen.threads === 1) {
    log?.(`threads: auto → 1 (${ran ?? 'one core'})`);
    return false;
  }
  try {
    await initThreadedWasm(chosen.threads, () => activate('wasm'));
  } catch (e) {
    // Without the advice to run with one thread: that is what auto does now.
    log?.(`threads: auto → 1 (${ran}, but the threaded build did not start: ${withoutRunSingleAdvice(firstLine(e))})`);
    return false;
  }
  log?.(`threads: auto → ${chosen.threads} (${ran})`);
  return true;
}

function checkThreads(choice: BackendChoice, threads: number | 'auto' | undefined): void {
  if (threads === undefined || threads === 'auto') return;
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS) {
    throw new ConfigError(`threads must be an integer from 1 to ${MAX_WASM_THREADS} (the wasm thread pool's cap), got ${String(threads)}`);
  }
  if (threads > 1 && (choice === 'cpu' || choice === 'tensorflow')) {
    throw new ConfigError(`threads (${threads}) apply to the wasm backend only, not '${choice}': choose 'wasm' (or 'auto'), or leave threads out`);
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
 * `backend: <name>` (with its threads when more than one) and, when the backend is not native, a
 * line with how to get one. `options.threads` starts wasm multithreaded (see `BackendOptions`).
 * Safe to call more than once.
 */
export function selectBackend(choice: BackendChoice = 'auto', log?: (line: string) => void, options: BackendOptions = {}): Promise<BackendInfo> {
  // One at a time: a start patches process-wide functions while it runs (wasmThreads.ts), and
  // two of them interleaved would each take the other's patch for the original.
  const next = selecting.then(() => selectBackendNow(choice, log, options));
  selecting = next.catch(() => undefined);
  return next;
}
let selecting: Promise<unknown> = Promise.resolve();

async function selectBackendNow(choice: BackendChoice, log: ((line: string) => void) | undefined, options: BackendOptions): Promise<BackendInfo> {
  if (!CHOICES.includes(choice)) {
    throw new BackendError(`Unknown backend '${String(choice)}': use one of ${CHOICES.join(', ')}.`);
  }
  const { threads } = options;
  checkThreads(choice, threads);
  consumeCpuBanner();
  let name: string | null = null;

  if (choice === 'auto' || choice === 'tensorflow') {
    const native = await loadNative();
    if (native.ok) {
      name = 'tensorflow';
      if (typeof threads === 'number' && threads > 1) log?.(`threads: ${threads} not used: the native backend runs its own thread pool`);
    } else if (choice === 'tensorflow') {
      throw new BackendError(
        `The native 'tensorflow' backend could not be loaded (${native.failures.join('; ')}). ` +
          'Install @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node, or use --backend wasm.',
      );
    }
  }
  if (name === null && (choice === 'auto' || choice === 'wasm')) {
    const wasm = await loadWasm(threads, log);
    if (wasm.ok) name = 'wasm';
    // Threads were asked for: not the cpu backend in their place.
    else if (choice === 'wasm' || (typeof threads === 'number' && threads > 1)) {
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
  const threadCount = native ? null : name === 'wasm' ? await wasmThreadsCount() : 1;
  const info: BackendInfo = { name, native, hint: native ? null : NATIVE_HINT, threads: threadCount };
  log?.(`backend: ${name}${threadCount !== null && threadCount > 1 ? ` (${threadCount} threads)` : ''}`);
  if (info.hint) log?.(`hint: ${info.hint}`);
  return info;
}
