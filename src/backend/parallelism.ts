/**
 * Do this machine's cores run at once? Measured, because the core count does not say: a VM may
 * show 2 vCPUs and give one core of throughput (bench/wasm-threads/RESULT.md: there two CPU-bound
 * processes each took 2.2–3× as long as one alone, and the threaded wasm build was 2–4× slower
 * than the single-threaded one); two hyper-threads of one core share its vector units, which
 * XNNPACK's kernels keep busy; a container's CPU quota may be below the host's core count.
 * `threads: 'auto'` starts wasm threaded only where this finds the cores it would use running in
 * parallel. Results do not depend on the answer (the threaded build is bit-identical), only
 * speed does.
 */
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

/**
 * A busy loop that keeps a core's floating-point units busy, as matrix kernels do: eight
 * independent multiply-add chains (a single dependent chain would leave the units idle, and two
 * hyper-threads of one core would then both seem to run at full speed). Its result is used, so
 * the JIT cannot drop it. The workers run the same source.
 */
function spin(n: number): number {
  let a = 1, b = 2, c = 3, d = 4, e = 5, f = 6, g = 7, h = 8;
  for (let i = 0; i < n; i++) {
    a = a * 0.999999 + 1e-7; b = b * 0.999998 + 2e-7; c = c * 0.999997 + 3e-7; d = d * 0.999996 + 4e-7;
    e = e * 0.999995 + 5e-7; f = f * 0.999994 + 6e-7; g = g * 0.999993 + 7e-7; h = h * 0.999992 + 8e-7;
  }
  return a + b + c + d + e + f + g + h;
}

/** A worker: warms its loop up, says ready, then for every message spins that many iterations and answers. */
const WORKER = `${spin.toString()}
const { parentPort } = require('node:worker_threads');
spin(1e6);
parentPort.on('message', (n) => parentPort.postMessage(spin(n)));
parentPort.postMessage('ready');`;

/** How long one measurement may take (it takes ~0.14 s here; auto makes up to log2(cores) of them): past it, something is wrong. */
const PROBE_TIMEOUT_MS = 10_000;

/** Iterations that take about `ms` on this thread. */
function calibrate(ms: number): number {
  let n = 1e5;
  for (;;) {
    const t0 = performance.now();
    spin(n);
    const took = performance.now() - t0;
    if (took >= ms / 4 || n > 1e10) return Math.max(1, Math.ceil((n * ms) / Math.max(took, 1e-3)));
    n *= 4;
  }
}

export interface ParallelismProbe {
  /** Threads measured together (this one and `threads − 1` workers); default 2. */
  threads?: number;
  /** About how long one thread's share takes, in ms; default 15. */
  workMs?: number;
  /** Rounds; the fastest of each kind counts (a pause of the machine only slows a round). Default 3. */
  rounds?: number;
  /** The workers' share against this thread's (tests: 0, or 2); default 1. */
  workerShare?: number;
}

/**
 * `threads` busy threads' throughput over one's: ~`threads` where that many cores run in
 * parallel, ~1 (or less) where they share one. Each round times this thread alone, then all of
 * them at once; the fastest of each over `rounds`. Rejects (after terminating its workers) if a
 * worker fails, exits or the whole takes over 10 s.
 */
export async function measureParallelism(probe: ParallelismProbe = {}): Promise<number> {
  const { threads = 2, workMs = 15, rounds = 3, workerShare = 1 } = probe;
  spin(1e6); // warm this thread's loop up, as the workers do
  const n = calibrate(workMs);
  const workers: Worker[] = [];
  let timer: NodeJS.Timeout | undefined;
  // One promise for every way the probe can fail, listened to for the workers' whole life (a
  // worker's error with no listener would crash the process).
  let fail: (e: Error) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
    timer = setTimeout(() => reject(new Error(`the parallelism probe took over ${PROBE_TIMEOUT_MS / 1000} s`)), PROBE_TIMEOUT_MS);
  });
  failed.catch(() => {}); // handled where it is raced; never an unhandled rejection
  /** The next message of every worker. */
  const answers = () => Promise.race([Promise.all(workers.map((w) => new Promise<unknown>((resolve) => w.once('message', resolve)))), failed]);
  try {
    for (let i = 1; i < threads; i++) {
      const w = new Worker(WORKER, { eval: true, execArgv: [] });
      w.on('error', (e) => fail(e)).on('exit', (code) => fail(new Error(`a probe worker exited (code ${code})`)));
      workers.push(w);
    }
    await answers(); // all ready
    let solo = Infinity;
    let together = Infinity;
    const share = Math.round(n * workerShare);
    for (let r = 0; r < rounds; r++) {
      let t0 = performance.now();
      spin(n);
      solo = Math.min(solo, performance.now() - t0);
      const done = answers();
      t0 = performance.now();
      for (const w of workers) w.postMessage(share);
      spin(n);
      await done;
      together = Math.min(together, performance.now() - t0);
    }
    return (threads * solo) / together;
  } finally {
    clearTimeout(timer);
    for (const w of workers) w.removeAllListeners('exit');
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** The share of ideal parallel throughput at or above which threads pay (measured: ~0.95–1.0 where they did, ≤ 0.5 where they did not). */
export const PARALLEL_EFFICIENCY = 0.8;

/** Whole CPUs a cgroup v2 quota allows (`cpu.max`), or null when there is none or it cannot be read. */
export function cpuQuota(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): number | null {
  try {
    const [quota, period] = read('/sys/fs/cgroup/cpu.max').trim().split(/\s+/);
    if (quota === undefined || quota === 'max' || period === undefined) return null;
    const cpus = Number(quota) / Number(period);
    return Number.isFinite(cpus) && cpus > 0 ? Math.max(1, Math.floor(cpus)) : null;
  } catch {
    return null;
  }
}

export interface AutoThreads {
  threads: number;
  /** The cores it may use: the machine's, within a CPU quota and the cap. */
  cores: number;
  /** The measured throughput of `threads` threads (of `cores` when it took 1) over one's; null when there was nothing to measure. */
  parallelism: number | null;
}

/**
 * The thread count `threads: 'auto'` takes: the most threads that do at least 80% of that many
 * times one thread's work, trying every core it may use (the machine's, within a CPU quota, up
 * to `max`), then half as many, and so on down to 2 (hyper-threads: half the logical cores may
 * pass where all do not); 1 if none do.
 */
export async function autoThreads(
  max: number,
  measure: (threads: number) => Promise<number> = (threads) => measureParallelism({ threads }),
  quota: number | null = cpuQuota(),
  machine: number = availableParallelism(),
): Promise<AutoThreads> {
  const cores = Math.min(machine, quota ?? Infinity, max);
  if (cores < 2) return { threads: 1, cores, parallelism: null };
  let first: number | null = null;
  // cores, then half (rounded down, at least 2), …, 2: 8 → 4 → 2, 7 → 3 → 2, 3 → 2.
  for (let threads = cores; threads >= 2; threads = threads === 2 ? 1 : Math.max(2, Math.floor(threads / 2))) {
    const parallelism = await measure(threads);
    first ??= parallelism;
    if (parallelism >= PARALLEL_EFFICIENCY * threads) return { threads, cores, parallelism };
  }
  return { threads: 1, cores, parallelism: first };
}
