// Multithreaded SIMD build of @tensorflow/tfjs-backend-wasm 4.22 in Node 20.
//
//   import { setWasmBackendThreaded } from './threaded.mjs';
//   await setWasmBackendThreaded(2);      // instead of tf.setBackend('wasm')
//
// `node threaded.mjs [n]` runs a smoke test.
//
// Why each step is needed (tfjs-backend-wasm 4.22, emscripten build inside dist/tf-backend-wasm.node.js):
//  1. The WASM_HAS_MULTITHREAD_SUPPORT flag is hard-wired to false when IS_NODE; set it true.
//  2. init() hands the pthread worker script to `new Worker()` as a blob: URL (Node: ERR_WORKER_PATH).
//     We write that script (wasmWorkerContents, read from the dist file) to a .cjs file and make
//     URL.createObjectURL return its path for that one Blob.
//  3. Each pthread worker receives the module factory as a Blob (mainScriptUrlOrBlob) and tries to
//     importScripts(blob: URL) = fs.readFileSync(blob: URL) -> fails. The patched worker reads it
//     with blob.text() and evals it. The factory text (Function.toString of the bundled factory)
//     refers to the bundle's variables require$$0/1/3/4 and commonjsGlobal: defined as globals.
//  4. backend.cc: num_cores = emscripten_num_logical_cores() / 2 (assumes hyper-threading) is a
//     static initialiser, and the pool is min(max(n,1), 8, num_cores) threads; in Node
//     emscripten_num_logical_cores() is os.cpus().length, so on a 2-core machine you always get 1
//     thread. os.cpus() is made to report 2n entries while the module instantiates, then restored.
//  5. setThreadsCount(n) must run before the backend initialises.
//  6. Emscripten ref()s the worker of every running pthread, so the pthreadpool threads would keep
//     the process alive forever; they are unref()ed after init.
import fs from 'fs';
import os from 'os';
import path from 'path';
import crypto from 'crypto';
import { createRequire } from 'module';
import { pathToFileURL } from 'url';
import * as tf from '@tensorflow/tfjs';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';

const require = createRequire(import.meta.url);
let workerFile = null;

/** Steps 1-3 and 5. Call before tf.setBackend('wasm'); prefer setWasmBackendThreaded(). */
export function enableWasmThreads(n = os.cpus().length) {
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  tfwasm.setThreadsCount(n);
  if (workerFile) return workerFile;

  const dist = fs.readFileSync(require.resolve('@tensorflow/tfjs-backend-wasm'), 'utf8');
  const m = /var wasmWorkerContents = ("(?:[^"\\]|\\.)*");/.exec(dist);
  if (!m) throw new Error('enableWasmThreads: wasmWorkerContents not found in the tfjs-backend-wasm dist file');
  const contents = JSON.parse(m[1]);
  const blobSize = Buffer.byteLength(contents.replace(/\n/g, '\\n')); // what tfjs puts in the Blob
  const orig = 'if(typeof e.data.urlOrBlob=="string"){importScripts(e.data.urlOrBlob)}else{var objectUrl=URL.createObjectURL(e.data.urlOrBlob);importScripts(objectUrl);URL.revokeObjectURL(objectUrl)}WasmBackendModuleThreadedSimd(Module)';
  if (!contents.includes(orig)) throw new Error('enableWasmThreads: unexpected tfjs-backend-wasm worker script');
  const patched = contents.replace(orig,
    'var __s=e.data.urlOrBlob;(typeof __s=="string"?Promise.resolve(fs.readFileSync(__s,"utf8")):__s.text())' +
    '.then(t=>{(0,eval)(t);WasmBackendModuleThreadedSimd(Module)})' +
    '.catch(ex=>{threadPrintErr(String(ex&&ex.stack||ex));process.exit(1)})');
  const prelude = 'globalThis.require$$0=require("fs");globalThis.require$$1=require("path");' +
    'globalThis.require$$3=require("perf_hooks");globalThis.require$$4=require("os");globalThis.commonjsGlobal=globalThis;\n';
  const text = prelude + patched.replace(/\n/g, '\\n');
  const hash = crypto.createHash('sha256').update(text).digest('hex').slice(0, 16);
  const file = path.join(os.tmpdir(), `tfjs-backend-wasm-threaded-simd-${hash}.worker.cjs`);
  if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== text) {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file); // atomic: concurrent processes never see a partial file
  }
  workerFile = file;

  const createObjectURL = URL.createObjectURL;
  URL.createObjectURL = function (obj) {
    if (obj instanceof Blob && obj.type === 'application/javascript' && obj.size === blobSize) return workerFile;
    return createObjectURL.call(URL, obj);
  };
  return workerFile;
}

/** Activates the threaded-SIMD wasm backend with n threads (1..8). Resolves like tf.setBackend. */
export async function setWasmBackendThreaded(n = os.cpus().length) {
  enableWasmThreads(n);
  const cpus = os.cpus;
  const real = cpus.call(os);
  os.cpus = () => Array.from({ length: Math.max(2 * n, real.length) }, (_, i) => real[i % real.length]);
  let ok;
  try {
    ok = await tf.setBackend('wasm');
  } finally {
    os.cpus = cpus;
  }
  const pthread = ok ? tf.backend().wasm.PThread : null;
  if (pthread) for (const w of pthread.runningWorkers) w.unref();
  return ok;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const n = +(process.argv[2] ?? 2);
  const ok = await setWasmBackendThreaded(n);
  const mod = tf.backend().wasm;
  console.log(JSON.stringify({ ok, backend: tf.getBackend(), threads: tfwasm.getThreadsCount(),
    pthreads: mod.PThread ? mod.PThread.runningWorkers.length : 0, memory: mod.HEAPU8.buffer.constructor.name }));
  const a = tf.randomNormal([256, 784], 0, 1, 'float32', 1), b = tf.randomNormal([784, 512], 0, 1, 'float32', 2);
  const c = tf.matMul(a, b);
  console.log('matMul sha256', crypto.createHash('sha256').update(Buffer.from(c.dataSync().buffer)).digest('hex').slice(0, 16));
}
