/**
 * Does this machine run two threads at once? Measured, because the core count does not say: a
 * VM may show 2 vCPUs and give one core of throughput (bench/wasm-threads/RESULT.md: there two
 * CPU-bound processes each took 2.2–3× as long as one alone, and the threaded wasm build was
 * 2–4× slower than the single-threaded one). `threads: 'auto'` starts wasm threaded only where
 * this finds real parallelism. Results do not depend on the answer (the threaded build is
 * bit-identical), only speed does.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** A busy loop the JIT cannot remove (its result is used). The worker runs the same source. */
function spin(n: number): number {
  let x = 0;
  for (let i = 0; i < n; i++) x = (x + i * 7) % 1000003;
  return x;
}

/** The worker: warms its loop up, says ready, then spins `n` iterations for every message it gets. */
const WORKER = `${spin.toString()}
const { parentPort } = require('node:worker_threads');
spin(2e6);
parentPort.on('message', (n) => { const x = spin(n); parentPort.postMessage(x); });
parentPort.postMessage('ready');`;

/** Iterations that take about `ms` on this thread. */
function calibrate(ms: number): number {
  let n = 1e5;
  for (;;) {
    const t0 = performance.now();
    spin(n);
    const took = performance.now() - t0;
    if (took >= ms / 4 || n > 1e10) return Math.ceil((n * ms) / Math.max(took, 1e-3));
    n *= 4;
  }
}

/**
 * Two threads' throughput over one's, measured with a busy loop of about `workMs` on this thread
 * and on a worker at once: ~2 where two cores run in parallel, ~1 (or less) where they share one.
 * The best of `tries` (a pause of the machine only lowers a try). Takes ~30 ms + 3 × workMs × tries.
 */
export async function measureParallelism(workMs = 15, tries = 2): Promise<number> {
  spin(2e6); // warm this thread's loop up, as the worker does
  const n = calibrate(workMs);
  const t0 = performance.now();
  spin(n);
  const solo = performance.now() - t0;
  const worker = new Worker(WORKER, { eval: true, execArgv: [] });
  try {
    const next = () => new Promise<unknown>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await next(); // ready
    let best = 0;
    for (let t = 0; t < tries; t++) {
      const done = next();
      const start = performance.now();
      worker.postMessage(n);
      spin(n);
      await done;
      const together = performance.now() - start;
      best = Math.max(best, (2 * solo) / together);
    }
    return best;
  } finally {
    await worker.terminate();
  }
}

/** Two threads' throughput over one's at or above which threads pay (measured: ~1.9 where they do, ≤ 1 where they did not). */
export const PARALLEL_ENOUGH = 1.6;

/** The thread count `threads: 'auto'` takes: every core (up to `max`) where threads run in parallel, else 1. */
export async function autoThreads(max: number, measure: () => Promise<number> = measureParallelism): Promise<{ threads: number; parallelism: number | null }> {
  const cores = Math.min(availableParallelism(), max);
  if (cores < 2) return { threads: 1, parallelism: null };
  const parallelism = await measure();
  return { threads: parallelism >= PARALLEL_ENOUGH ? cores : 1, parallelism };
}
