// node bench.mjs <threads: 0 = stock single-threaded SIMD, n>=1 = threaded SIMD with n threads> [iters]
import crypto from 'crypto';
import * as tf from '@tensorflow/tfjs';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';
import { setWasmBackendThreaded } from './threaded.mjs';

const n = +(process.argv[2] ?? 0);
const ITERS = +(process.argv[3] ?? 200);
const ok = n > 0 ? await setWasmBackendThreaded(n) : await tf.setBackend('wasm');
await tf.ready();
if (process.env.KS) { const ks = await import(new URL('../../dist/src/backend/kernelSet.js', import.meta.url).href); ks.applyKernelSet(); }
const mod = tf.backend().wasm;
const info = {
  mode: (n > 0 ? `threaded-simd n=${n}` : 'simd (stock)') + (process.env.KS ? ' +trainchart kernels' : ''), ok, backend: tf.getBackend(),
  threads: tfwasm.getThreadsCount(), pthreadApi: !!mod.PThread,
  memory: mod.HEAPU8.buffer.constructor.name,
};

function rng(seed) { // mulberry32
  let a = seed >>> 0;
  return () => { a = (a + 0x6D2B79F5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}
function randArr(r, size, scale) { const a = new Float32Array(size); for (let i = 0; i < size; i++) a[i] = (r() * 2 - 1) * scale; return a; }
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

function timeLoop(name, iters, warm, fn) {
  for (let i = 0; i < warm; i++) fn(i);
  const t = []; const c0 = process.cpuUsage(); const w0 = performance.now();
  for (let i = 0; i < iters; i++) { const s = performance.now(); fn(i); t.push(performance.now() - s); }
  const wall = performance.now() - w0; const cu = process.cpuUsage(c0);
  return { name, median_ms: +median(t).toFixed(3), min_ms: +Math.min(...t).toFixed(3), iters,
    cpu_per_wall: +(((cu.user + cu.system) / 1000) / wall).toFixed(2) };
}

const results = [];
// 1. matMul 256x784 @ 784x512, inputs changing (8 different A's and B's, cycled)
{
  const r = rng(1);
  const As = Array.from({ length: 8 }, () => tf.tensor2d(randArr(r, 256 * 784, 1), [256, 784]));
  const Bs = Array.from({ length: 7 }, () => tf.tensor2d(randArr(r, 784 * 512, 1), [784, 512]));
  results.push(timeLoop('matMul 256x784@784x512', ITERS, 30, (i) => { const c = tf.matMul(As[i % 8], Bs[i % 7]); c.dataSync(); c.dispose(); }));
}
// 2. Adam step, MLP 784-128-10 (relu), softmax cross-entropy, batch 64 / 256
function makeMlp(seed) {
  const r = rng(seed);
  return {
    w1: tf.variable(tf.tensor2d(randArr(r, 784 * 128, Math.sqrt(6 / (784 + 128))), [784, 128])),
    b1: tf.variable(tf.zeros([128])),
    w2: tf.variable(tf.tensor2d(randArr(r, 128 * 10, Math.sqrt(6 / 138)), [128, 10])),
    b2: tf.variable(tf.zeros([10])),
  };
}
function makeBatches(seed, batch, count) {
  const r = rng(seed);
  return Array.from({ length: count }, () => {
    const x = tf.tensor2d(randArr(r, batch * 784, 1).map((v) => (v + 1) / 2), [batch, 784]);
    const lab = new Int32Array(batch).map(() => Math.floor(r() * 10));
    return { x, y: tf.oneHot(tf.tensor1d(lab, 'int32'), 10).toFloat() };
  });
}
function stepper(m, opt) {
  return ({ x, y }) => {
    const cost = opt.minimize(() => {
      const h = tf.relu(tf.add(tf.matMul(x, m.w1), m.b1));
      const logits = tf.add(tf.matMul(h, m.w2), m.b2);
      return tf.losses.softmaxCrossEntropy(y, logits);
    }, true, [m.w1, m.b1, m.w2, m.b2]);
    const v = cost.dataSync()[0]; cost.dispose(); return v;
  };
}
for (const batch of [64, 256]) {
  const m = makeMlp(2); const opt = tf.train.adam(1e-3); const data = makeBatches(3, batch, 16); const step = stepper(m, opt);
  results.push(timeLoop(`Adam step MLP 784-128-10 b=${batch}`, ITERS, 30, (i) => step(data[i % 16])));
}
// 3. determinism: 50 Adam steps from fixed init on fixed data, sha256 of final weights
const hashes = {};
for (const batch of [64, 256]) {
  const m = makeMlp(42); const opt = tf.train.adam(1e-3); const data = makeBatches(43, batch, 50); const step = stepper(m, opt);
  let loss; for (let i = 0; i < 50; i++) loss = step(data[i]);
  const h = crypto.createHash('sha256');
  for (const k of ['w1', 'b1', 'w2', 'b2']) h.update(Buffer.from(m[k].dataSync().buffer));
  hashes[`adam50 b=${batch}`] = h.digest('hex').slice(0, 16) + ` (loss ${loss.toFixed(6)})`;
}
{
  const r = rng(7);
  const a = tf.tensor2d(randArr(r, 256 * 784, 1), [256, 784]), b = tf.tensor2d(randArr(r, 784 * 512, 1), [784, 512]);
  hashes['matMul'] = crypto.createHash('sha256').update(Buffer.from(tf.matMul(a, b).dataSync().buffer)).digest('hex').slice(0, 16);
}
console.log(JSON.stringify({ info, results, hashes }));
process.exit(0);
