/**
 * `startWorker({ connection, runsDir })`: a BullMQ worker that trains the runs of every sweep
 * enqueued in that Redis, each in a sandboxed child process (processor.ts).
 *
 * Preemption, and what the timings trade:
 * - A worker renews each job's lock every `lockDuration / 2`. A worker that dies (SIGKILL, a
 *   machine gone) stops renewing; once the lock has expired, the stalled-job check that every
 *   live worker runs every `stalledInterval` moves the job back to wait, and the next worker to
 *   take it resumes from the run's latest checkpoint. The hand-over takes between
 *   `lockDuration` and `lockDuration + 2 × stalledInterval`.
 * - Short values hand over sooner but mistake a slow worker for a dead one: a worker whose
 *   event loop is blocked for longer than `lockDuration` (the training itself is in the child
 *   and cannot block it; a swapping machine or a long GC pause can) loses its job to another
 *   worker, and both train the run until the first one notices (its renewal fails, it cancels
 *   its child). Safe — the run is resumed exactly and the first result to be written wins — but
 *   wasted work. The defaults are BullMQ's, 30 s and 30 s; tests use seconds.
 * - `maxStalledCount` (default 5, BullMQ's is 1) is how many hand-overs a run may have before
 *   it is failed: preemptible machines make several normal, a run that kills its worker every
 *   time (out of memory) should still end.
 *
 * `close()` is the SIGTERM path: every running job is cancelled, so each run stops at its next
 * batch boundary, writes a checkpoint and goes back to wait (no attempt spent); then the worker
 * closes its connections and its children.
 */
import fs from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'bullmq';
import { ConfigError } from '../errors.js';
import { connectChecked, isRedisClient, redisOptions, type SweepConnection } from './connection.js';
import { ENV_RUNS_DIR, ENV_WORKER_NAME, LOCK_LOST, QUEUE_NAME, type RunJobData, type SweepRunResult } from './names.js';
import { checkRunsDir } from './runFiles.js';

export interface WorkerOptions {
  connection: SweepConnection;
  /** Where runs checkpoint: `<runsDir>/<sweep>/<run>`. On several machines, a directory they all reach. */
  runsDir: string;
  /** Runs trained at once by this worker, each in its own child process (default 1). */
  concurrency?: number;
  /** ms a job's lock lasts without renewal (default 30000). */
  lockDuration?: number;
  /** ms between stalled-job checks (default 30000). */
  stalledInterval?: number;
  /** Hand-overs of a stalled run before it is failed (default 5). */
  maxStalledCount?: number;
  /** Shown in `sweep status` (default `<hostname>:<pid>`). */
  name?: string;
  /** Where the worker says what it does (default: nowhere). */
  log?: (line: string) => void;
}

export interface SweepWorker {
  readonly name: string;
  readonly worker: Worker<RunJobData, SweepRunResult>;
  /** Stop the running runs at their next batch boundary (checkpointed, given back), then close. */
  close(): Promise<void>;
  /** Close at once: running runs are left to the stalled-job check (as if killed). */
  closeNow(): Promise<void>;
}

const count = (name: string, v: unknown, min: number): number => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new ConfigError(`startWorker: ${name} must be an integer ≥ ${min}, got ${String(v)}`);
  return v;
};

/** The processor next to this file, as built (a sandboxed child runs JavaScript). */
function processorFile(): string {
  const file = fileURLToPath(new URL('./processor.js', import.meta.url));
  if (!fs.existsSync(file)) {
    throw new ConfigError(`startWorker: the sandboxed processor ${file} is missing: build trainchart (npm run build) and run the worker from dist/`);
  }
  return file;
}

export async function startWorker(options: WorkerOptions): Promise<SweepWorker> {
  if (typeof options !== 'object' || options === null || options.connection === undefined) {
    throw new ConfigError("startWorker({ connection, runsDir }): give connection: 'redis://127.0.0.1:6379' and runsDir");
  }
  if (typeof options.runsDir !== 'string' || options.runsDir === '') {
    throw new ConfigError(`startWorker: runsDir must be a directory path, got ${JSON.stringify(options.runsDir)}`);
  }
  const concurrency = count('concurrency', options.concurrency ?? 1, 1);
  const lockDuration = count('lockDuration', options.lockDuration ?? 30_000, 100);
  const stalledInterval = count('stalledInterval', options.stalledInterval ?? 30_000, 100);
  const maxStalledCount = count('maxStalledCount', options.maxStalledCount ?? 5, 0);
  const name = options.name ?? `${hostname()}:${process.pid}`;
  const log = options.log ?? (() => {});
  const runsDir = resolve(options.runsDir);

  // Both before the first job is taken: a worker that cannot write or reach Redis takes nothing.
  checkRunsDir(runsDir);
  const check = await connectChecked(options.connection);
  await check.close();
  const file = processorFile();

  const connection = isRedisClient(options.connection) ? options.connection : redisOptions(options.connection, { maxRetriesPerRequest: null });
  let worker: Worker<RunJobData, SweepRunResult>;
  try {
    worker = new Worker<RunJobData, SweepRunResult>(QUEUE_NAME, file, {
      connection,
      concurrency,
      lockDuration,
      stalledInterval,
      maxStalledCount,
      name,
      workerForkOptions: { env: { ...process.env, [ENV_RUNS_DIR]: runsDir, [ENV_WORKER_NAME]: name } },
    });
  } catch (e) {
    throw new ConfigError(`startWorker: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  worker.on('error', (e) => log(`worker error: ${e.message}`));
  worker.on('active', (job) => log(`run ${job.id} started (delivery ${job.attemptsStarted})`));
  worker.on('completed', (job, r) => log(`run ${job.id} finished: ${r?.status} validLoss ${r?.validLoss} weightsSha256 ${r?.weightsSha256}`));
  worker.on('failed', (job, e) => log(`run ${job?.id} failed: ${e.message}`));
  worker.on('stalled', (id) => log(`run ${id} had stalled (its worker stopped renewing its lock): back to wait`));
  // The lock is someone else's now: stop our copy of the run (the child exits at once).
  worker.on('lockRenewalFailed', (ids) => {
    for (const id of ids) worker.cancelJob(id, LOCK_LOST);
  });
  await worker.waitUntilReady();
  log(`worker ${name}: runs in ${runsDir}, concurrency ${concurrency}, lock ${lockDuration} ms, stalled check every ${stalledInterval} ms`);

  let closing: Promise<void> | null = null;
  return {
    name,
    worker,
    close: () =>
      (closing ??= (async () => {
        worker.cancelAllJobs('shutdown');
        await worker.close();
      })()),
    closeNow: () => (closing ??= worker.close(true)),
  };
}
