/**
 * The wasm backend's multithreaded SIMD build, started in Node (issue 10).
 *
 * tfjs-backend-wasm 4.22 ships a threaded build (XNNPACK's thread pool on Emscripten pthreads)
 * but never starts it in Node. What stands in the way, and what is done about it for the
 * duration of the backend's start only (the investigation: bench/wasm-threads/RESULT.md):
 *
 *  1. The WASM_HAS_MULTITHREAD_SUPPORT flag evaluates to false whenever IS_NODE: it is set true.
 *  2. The pthread worker's script is handed to `new Worker()` as a `blob:` URL, which Node's
 *     worker_threads refuse (ERR_WORKER_PATH). `URL.createObjectURL` returns a marker for that
 *     Blob, and `worker_threads.Worker` (which the build calls) starts the marker as the script's
 *     text (`eval: true`; no file is written). The wrapper also keeps every worker it made: they
 *     are unref'd once the backend runs (Emscripten refs them, and the pool's threads never end,
 *     so the process would never exit) and terminated if it fails to start.
 *  3. Each worker then loads the module factory, another Blob, with `importScripts(blob: URL)`,
 *     a file read in Node: the worker's copy of the script reads it with `blob.text()` instead and
 *     defines the bundle's names the factory's text refers to (`require$$0…4`, `commonjsGlobal`);
 *     a failure there is reported through the module's `onAbort` (tfjs then rejects the start).
 *  4. The C++ side sizes its pool as half the logical cores (it assumes hyper-threading), capped at
 *     8: on 2 cores that is 1 thread, whatever was asked. `os.cpus()` reports 2n cores meanwhile.
 * Once the start settles, `URL.createObjectURL`, `os.cpus` and `worker_threads.Worker` are the
 * originals again. What stays is tfjs's own: the flag (true: the backend is threaded) and the
 * `Worker` global the threaded build sets (the original `worker_threads.Worker`).
 *
 * XNNPACK splits a kernel's output between threads, never a sum, so results are bit-identical to
 * the single-threaded build whatever the thread count (test/wasm-threads.test.ts checks it on
 * training runs). It is faster only where the machine's cores run at once (docs/benchmarks.md,
 * "Multithreaded wasm"): `threads: 'auto'` measures that first (parallelism.ts); a number is
 * taken as asked.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { readFileSync } from 'node:fs';
import type { Worker as NodeWorker, WorkerOptions } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { BackendError } from '../errors.js';

/** XNNPACK's own cap on its thread pool (backend.cc). */
export const MAX_WASM_THREADS = 8;

/** How long the threaded start may take (it takes ~0.1 s here): past it, it has hung. */
const START_TIMEOUT_MS = 60_000;

const FLAG = 'WASM_HAS_MULTITHREAD_SUPPORT';

/** The part of the worker script replaced: its `importScripts` of the module factory Blob. */
const FACTORY_IMPORT =
  'if(typeof e.data.urlOrBlob=="string"){importScripts(e.data.urlOrBlob)}else{var objectUrl=URL.createObjectURL(e.data.urlOrBlob);importScripts(objectUrl);URL.revokeObjectURL(objectUrl)}WasmBackendModuleThreadedSimd(Module)';
const FACTORY_READ =
  'var __factory=e.data.urlOrBlob;(typeof __factory=="string"?Promise.resolve(require("fs").readFileSync(__factory,"utf8")):__factory.text())' +
  '.then(text=>{(0,eval)(text);return WasmBackendModuleThreadedSimd(Module)})' +
  '.catch(ex=>{var why="trainchart: the threaded wasm worker could not load its module: "+String(ex&&ex.stack||ex);' +
  'threadPrintErr(why);if(typeof Module["onAbort"]=="function")Module["onAbort"](why);else process.exit(1)})';
/** The bundle's module variables the factory's source text (Function.toString) refers to. */
const FACTORY_GLOBALS =
  'globalThis.require$$0=require("fs");globalThis.require$$1=require("path");' +
  'globalThis.require$$3=require("perf_hooks");globalThis.require$$4=require("os");globalThis.commonjsGlobal=globalThis;\n';

/** What to do when threads cannot be had: the single-threaded build computes the same results. */
const RUN_SINGLE = 'run with one thread (--threads 1, or threads: 1 in selectBackend): it gives the same results';
const RUN_SINGLE_SENTENCE = `${RUN_SINGLE[0]!.toUpperCase()}${RUN_SINGLE.slice(1)}`;

/** A threaded start's failure message without the advice to run with one thread (for auto, which then does). */
export function withoutRunSingleAdvice(message: string): string {
  return message.replace(`. ${RUN_SINGLE_SENTENCE}`, '').replace(`; ${RUN_SINGLE}`, '');
}

const UNSUPPORTED_BUILD = `the installed @tensorflow/tfjs-backend-wasm is not the 4.22 build trainchart knows how to start threaded; ${RUN_SINGLE}`;

const require = createRequire(import.meta.url);

/** The pthread worker's script as tfjs would put it in its Blob, with steps 3's changes, and that Blob's size. */
function workerScript(): { text: string; blobSize: number } {
  const dist = readFileSync(require.resolve('@tensorflow/tfjs-backend-wasm'), 'utf8');
  const match = /var wasmWorkerContents = ("(?:[^"\\]|\\.)*");/.exec(dist);
  if (!match) throw new BackendError(`cannot start the threaded wasm backend: ${UNSUPPORTED_BUILD} (no worker script found in its dist file)`);
  const contents = JSON.parse(match[1]!) as string;
  if (!contents.includes(FACTORY_IMPORT)) {
    throw new BackendError(`cannot start the threaded wasm backend: ${UNSUPPORTED_BUILD} (its worker script differs)`);
  }
  // tfjs escapes the script's newlines before it makes the Blob (they sit in string literals).
  const escaped = (s: string) => s.replace(/\n/g, '\\n');
  return { text: FACTORY_GLOBALS + escaped(contents.replace(FACTORY_IMPORT, FACTORY_READ)), blobSize: Buffer.byteLength(escaped(contents)) };
}

interface EngineInternals {
  registryFactory: Record<string, { factory: () => tf.KernelBackend | Promise<tf.KernelBackend>; priority: number } | undefined>;
  pendingBackendInitId: number;
  pendingBackendInit: Promise<boolean> | null;
}

/**
 * Runs `init` (which must start the wasm backend, e.g. `tf.setBackend('wasm')`) so that the
 * backend starts threaded with `threads` threads (2…8), and checks that it did. Must run before
 * the wasm backend first starts in this process, one start at a time (selectBackend runs its
 * calls one after another). On failure a BackendError, and what this put in place undone: the
 * workers terminated, the wasm backend registered but not started (a start still pending made
 * obsolete, an instance that started disposed), the flags and the Worker global as they were, the
 * thread count back to tfjs's default, the backend that was active before active again. (tfjs-
 * backend-wasm's own module state keeps traces: after an aborted start `setWasmPaths` refuses
 * until a start succeeds, and each start adds Emscripten's process listeners.)
 */
export async function initThreadedWasm(threads: number, init: () => Promise<boolean>, timeoutMs = START_TIMEOUT_MS): Promise<void> {
  const wasmBackend = await import('@tensorflow/tfjs-backend-wasm');
  const { text, blobSize } = workerScript();
  const env = tf.env() as unknown as { flags: Record<string, unknown>; set(name: string, value: boolean): void };
  const flagsBefore = new Map(['IS_TEST', FLAG].map((name) => [name, Object.prototype.hasOwnProperty.call(env.flags, name) ? { value: env.flags[name] } : null]));
  const previousBackend = tf.getBackend() as string | null;
  const globals = globalThis as { Worker?: unknown };
  const hadWorkerGlobal = Object.prototype.hasOwnProperty.call(globals, 'Worker');
  const workerGlobalBefore = globals.Worker;

  const workerThreads = require('node:worker_threads') as { Worker: typeof NodeWorker };
  const RealWorker = workerThreads.Worker;
  const made: NodeWorker[] = [];
  const marker = `trainchart:wasm-pthread-worker:${blobSize}`;
  class PthreadWorker extends RealWorker {
    constructor(filename: string | URL, options?: WorkerOptions) {
      // No flags of the process's: the script is CommonJS and needs none, and a worker would
      // inherit them — one that makes evaluated code a module (`node --input-type=module`) would
      // leave it without `require`, and V8 flags (`--expose-gc`) passed on explicitly are refused.
      if (filename === marker) {
        super(text, { ...options, eval: true, execArgv: [] });
        made.push(this);
      } else super(filename, options);
    }
  }
  const { createObjectURL } = URL;
  const { cpus } = os;
  const realCpus = cpus.call(os);

  env.set(FLAG, true);
  wasmBackend.setThreadsCount(threads);
  workerThreads.Worker = PthreadWorker;
  URL.createObjectURL = function (obj: Blob) {
    if (obj instanceof Blob && obj.type === 'application/javascript' && obj.size === blobSize) return marker;
    return createObjectURL.call(URL, obj);
  } as typeof URL.createObjectURL;
  os.cpus = () => Array.from({ length: Math.max(2 * threads, realCpus.length) }, (_, i) => realCpus[i % realCpus.length]!);

  let failure: string | null = null;
  let timer: NodeJS.Timeout | undefined;
  try {
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([init(), timedOut]);
    if (outcome === 'timeout') failure = `it did not start within ${timeoutMs / 1000} s`;
    else if (!outcome) failure = 'tfjs could not initialise it (see the worker message above, if any)';
    else if (wasmBackend.getThreadsCount() !== threads) {
      // tfjs takes its single-threaded build after setWasmPath() or without SIMD.
      failure = `it started with ${wasmBackend.getThreadsCount()} thread(s), not ${threads} (a custom wasm path, or no SIMD, selects the single-threaded build)`;
    }
  } catch (e) {
    failure = e instanceof Error ? e.message : String(e);
  } finally {
    clearTimeout(timer);
    URL.createObjectURL = createObjectURL;
    os.cpus = cpus;
    workerThreads.Worker = RealWorker;
    // The threaded build sets the global (and keeps using it): the real class, not the wrapper.
    if (globals.Worker === PthreadWorker) globals.Worker = RealWorker;
  }
  if (failure === null) {
    for (const worker of made) worker.unref();
    return;
  }
  // The instance (if one started) first, while its pool's workers still run: its dispose may
  // wait for the pool's threads to end. Whatever happens there, the rest is undone too.
  try {
    resetWasmBackend();
  } catch (e) {
    failure += `; undoing it failed too: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    await Promise.all(made.map((worker) => worker.terminate().catch(() => {})));
  }
  // Nobody sets a count but this file (tfjs's default, -1, is "as many as the cores").
  wasmBackend.setThreadsCount(-1);
  for (const [name, before] of flagsBefore) {
    if (before) env.flags[name] = before.value;
    else delete env.flags[name];
  }
  if (hadWorkerGlobal) globals.Worker = workerGlobalBefore;
  else delete globals.Worker;
  // tf.setBackend('wasm') made wasm the active name before it failed to start; put back what ran.
  if (previousBackend !== null && previousBackend !== 'wasm' && backendStarted(previousBackend)) await tf.setBackend(previousBackend);
  throw new BackendError(`the wasm backend's multithreaded build could not be started with ${threads} threads: ${failure}. ${RUN_SINGLE_SENTENCE}`);
}

/**
 * The wasm backend back to registered-but-not-started: a start still pending made obsolete (tfjs
 * then ignores it if it ever settles), an instance that did start disposed, the factory kept.
 */
function resetWasmBackend(): void {
  const engine = tf.engine() as unknown as EngineInternals;
  const registered = engine.registryFactory['wasm'];
  engine.pendingBackendInitId++;
  engine.pendingBackendInit = null;
  // removeBackend throws for a name it does not know (someone removed it meanwhile).
  if (!registered) return;
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', registered.factory, registered.priority);
}

/**
 * Whether a backend has started in this process. The engine's registry, not tf.findBackend:
 * that starts a backend registered but not yet started.
 */
export function backendStarted(name: string): boolean {
  return tf.engine().registry[name] != null;
}

/** How many threads the started wasm backend computes with (1 for the single-threaded build). */
export async function wasmThreadsCount(): Promise<number> {
  const wasmBackend = await import('@tensorflow/tfjs-backend-wasm');
  return wasmBackend.getThreadsCount();
}
