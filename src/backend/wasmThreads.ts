/**
 * The wasm backend's multithreaded SIMD build, started in Node (issue 10).
 *
 * tfjs-backend-wasm 4.22 ships a threaded build (XNNPACK's thread pool on Emscripten pthreads)
 * but never starts it in Node. Four things stand in the way, each worked around here for the
 * duration of the backend's initialisation only (the investigation: bench/wasm-threads/RESULT.md):
 *
 *  1. The WASM_HAS_MULTITHREAD_SUPPORT flag evaluates to false whenever IS_NODE: set it true.
 *  2. The pthread worker script is handed to `new Worker()` as a `blob:` URL, which Node's
 *     worker_threads refuse (ERR_WORKER_PATH). The script (`wasmWorkerContents` in the dist file)
 *     is written to a file once, and `URL.createObjectURL` returns that file's path for that Blob.
 *  3. Each worker then loads the module factory, another Blob, with `importScripts(blob: URL)`,
 *     a file read in Node: the file's copy of the script reads it with `blob.text()` instead and
 *     defines the bundle's names the factory's text refers to (`require$$0…4`, `commonjsGlobal`).
 *  4. The C++ side sizes its pool as half the logical cores (it assumes hyper-threading), capped at
 *     8: on 2 cores that is 1 thread, whatever was asked. `os.cpus()` reports 2n cores while the
 *     module starts.
 * Emscripten keeps a pthread's worker referenced, so the process would never exit: the workers
 * are unref'd once the backend runs.
 *
 * XNNPACK splits a kernel's output between threads, never a sum, so results are bit-identical to
 * the single-threaded build whatever the thread count (test/wasm-threads.test.ts checks it on
 * training runs). It is faster only where the machine runs two threads at once: measured in
 * docs/benchmarks.md ("Multithreaded wasm"); hence opt-in.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BackendError } from '../errors.js';
import { writeFileAtomic } from '../io/atomicWrite.js';

/** XNNPACK's own cap on its thread pool (backend.cc). */
export const MAX_WASM_THREADS = 8;

/** The emscripten module as far as this file reads it (tfjs's type for it leaves these out). */
interface ThreadedModule {
  PThread?: { runningWorkers: Array<{ unref(): void }> };
}

/** The part of the worker script replaced: its `importScripts` of the module factory Blob. */
const FACTORY_IMPORT =
  'if(typeof e.data.urlOrBlob=="string"){importScripts(e.data.urlOrBlob)}else{var objectUrl=URL.createObjectURL(e.data.urlOrBlob);importScripts(objectUrl);URL.revokeObjectURL(objectUrl)}WasmBackendModuleThreadedSimd(Module)';
const FACTORY_READ =
  'var __factory=e.data.urlOrBlob;(typeof __factory=="string"?Promise.resolve(fs.readFileSync(__factory,"utf8")):__factory.text())' +
  '.then(text=>{(0,eval)(text);WasmBackendModuleThreadedSimd(Module)})' +
  '.catch(ex=>{threadPrintErr(String(ex&&ex.stack||ex));process.exit(1)})';
/** The bundle's module variables the factory's source text (Function.toString) refers to. */
const FACTORY_GLOBALS =
  'globalThis.require$$0=require("fs");globalThis.require$$1=require("path");' +
  'globalThis.require$$3=require("perf_hooks");globalThis.require$$4=require("os");globalThis.commonjsGlobal=globalThis;\n';

const UNSUPPORTED_BUILD =
  'the installed @tensorflow/tfjs-backend-wasm is not the 4.22 build this knows how to start threaded; ' +
  'run without threads (threads: 1, or no --threads)';

/** The worker script as a file (content-addressed, written atomically), and the Blob size tfjs makes of it. */
function workerScriptFile(): { file: string; blobSize: number } {
  const require = createRequire(import.meta.url);
  const dist = readFileSync(require.resolve('@tensorflow/tfjs-backend-wasm'), 'utf8');
  const match = /var wasmWorkerContents = ("(?:[^"\\]|\\.)*");/.exec(dist);
  if (!match) throw new BackendError(`cannot start the threaded wasm backend: ${UNSUPPORTED_BUILD} (no worker script found in its dist file)`);
  const contents = JSON.parse(match[1]!) as string;
  if (!contents.includes(FACTORY_IMPORT)) {
    throw new BackendError(`cannot start the threaded wasm backend: ${UNSUPPORTED_BUILD} (its worker script differs)`);
  }
  // tfjs escapes the script's newlines before it makes the Blob; the file gets the same text.
  const text = FACTORY_GLOBALS + contents.replace(FACTORY_IMPORT, FACTORY_READ).replace(/\n/g, '\\n');
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const file = join(os.tmpdir(), `trainchart-wasm-threaded-simd-${hash}.worker.cjs`);
  try {
    if (!existsSync(file) || readFileSync(file, 'utf8') !== text) writeFileAtomic(file, text);
  } catch (e) {
    throw new BackendError(
      `cannot start the threaded wasm backend: its worker script could not be written to ${file} (${(e as Error).message}); ` +
        'set TMPDIR to a writable directory, or run without threads',
      { cause: e },
    );
  }
  return { file, blobSize: Buffer.byteLength(contents.replace(/\n/g, '\\n')) };
}

/**
 * Runs `init` (which must start the wasm backend, e.g. `tf.setBackend('wasm')`) so that the
 * backend starts threaded with `threads` threads (2…8). Everything patched for it is put back
 * when `init` settles; the pool's workers are unref'd so that they do not keep the process alive.
 * Must run before the wasm backend first starts in this process.
 */
export async function initThreadedWasm(threads: number, init: () => Promise<boolean>): Promise<boolean> {
  const wasmBackend = await import('@tensorflow/tfjs-backend-wasm');
  const { file, blobSize } = workerScriptFile();
  const env = tf.env();
  env.set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasmBackend.setThreadsCount(threads);
  const { createObjectURL } = URL;
  const { cpus } = os;
  const realCpus = cpus.call(os);
  URL.createObjectURL = function (obj: Blob) {
    if (obj instanceof Blob && obj.type === 'application/javascript' && obj.size === blobSize) return file;
    return createObjectURL.call(URL, obj);
  } as typeof URL.createObjectURL;
  os.cpus = () => Array.from({ length: Math.max(2 * threads, realCpus.length) }, (_, i) => realCpus[i % realCpus.length]!);
  let ok = false;
  try {
    ok = await init();
  } finally {
    URL.createObjectURL = createObjectURL;
    os.cpus = cpus;
    // A later start (after a failure, or another backend's) must not find the flag forced on.
    if (!ok) env.set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  }
  if (ok) {
    const module = (tf.backend() as unknown as { wasm: ThreadedModule }).wasm;
    for (const worker of module.PThread?.runningWorkers ?? []) worker.unref();
  }
  return ok;
}

/** How many threads the running wasm backend computes with (1 for the single-threaded build). */
export async function wasmThreadsCount(): Promise<number> {
  const wasmBackend = await import('@tensorflow/tfjs-backend-wasm');
  return wasmBackend.getThreadsCount();
}
