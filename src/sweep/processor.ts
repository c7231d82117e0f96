/**
 * BullMQ's sandboxed processor for a run of a sweep: this module is loaded in a child process
 * of the worker (BullMQ's child pool), so the training loop — busy on the CPU for as long as a
 * run lasts — never delays the worker's lock renewals in the parent; a run therefore cannot be
 * marked stalled for being busy, only for being gone.
 *
 * One delivery of a job:
 *   1. the run's directory `<runs>/<sweep>/<run>` is made (or found holding this run's config);
 *   2. a `result.json` there means the run was finished by an earlier delivery (at-least-once
 *      delivery: a stalled job handed over after its worker had finished, a retry after the
 *      completion was lost): it is returned, nothing is trained again;
 *   3. otherwise the run trains, from the directory's latest checkpoint when there is one;
 *   4. a stop request (the worker's SIGTERM, which cancels its jobs, or a SIGTERM/SIGINT to this
 *      child) stops the run at the next batch boundary, where the Checkpoint callback writes a
 *      checkpoint; the job is then moved back to `wait` (BullMQ's WaitingError: not a failure,
 *      no attempt spent), and whoever takes it next resumes from that checkpoint;
 *   5. a finished run appends a line to `completions.log`, writes `result.json` atomically, and
 *      returns the result (the job's return value).
 *
 * The child exits at once when its parent is gone (the IPC channel closes, e.g. the worker was
 * SIGKILLed): the job will be handed to another worker, and an orphan still training into the
 * same directory would only race it. Its checkpoints are crash-safe, so exiting anywhere is safe.
 */
import { hostname } from 'node:os';
import { UnrecoverableError, WaitingError, type SandboxedJob } from 'bullmq';
import { TrainchartError } from '../errors.js';
import { ENV_RUNS_DIR, ENV_WORKER_NAME, LOCK_LOST, runDir, type RunJobData, type SweepRunResult } from './names.js';
import { prepareRunDir, readResult, recordCompletion, writeResult } from './runFiles.js';
import { completeRunConfig } from './runOptions.js';
import { trainRun } from './trainRun.js';

/** Exit code of a child whose worker is gone. */
const ORPHANED = 70;

if (typeof process.send === 'function') {
  process.on('disconnect', () => process.exit(ORPHANED));
}

/** Stop requests that reach this child directly (a Ctrl-C to the worker's process group, a SIGTERM to all). */
const local = new Set<AbortController>();
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    for (const ac of local) ac.abort(sig);
  });
}

function unrecoverable(e: unknown): never {
  // A bad configuration fails the same way on every try: fail the job now, naming why.
  throw new UnrecoverableError(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
}

export default async function processRun(job: SandboxedJob<RunJobData, SweepRunResult>, token?: string, signal?: AbortSignal): Promise<SweepRunResult> {
  const runsDir = process.env[ENV_RUNS_DIR];
  if (!runsDir) unrecoverable(new Error(`the worker did not pass ${ENV_RUNS_DIR} to its child`));
  const worker = process.env[ENV_WORKER_NAME] ?? `${hostname()}:${process.ppid}`;
  const { sweep, runId, params } = job.data;
  let config;
  try {
    config = completeRunConfig(job.data.config, `run ${runId}`);
  } catch (e) {
    unrecoverable(e);
  }
  const dir = runDir(runsDir, sweep, runId);
  try {
    prepareRunDir(dir, job.data);
  } catch (e) {
    if (e instanceof TrainchartError) unrecoverable(e);
    throw e;
  }
  const done = readResult<SweepRunResult>(dir);
  if (done) return done;

  const stop = new AbortController();
  local.add(stop);
  const onCancel = () => {
    // The lock is gone: another worker owns the job now. Leave at once (as if killed) rather
    // than write a stop checkpoint beside the one the new owner resumes from.
    if (signal?.reason === LOCK_LOST) process.exit(ORPHANED);
    stop.abort(signal?.reason);
  };
  if (signal?.aborted) onCancel();
  signal?.addEventListener('abort', onCancel);
  try {
    const { result, interrupted } = await trainRun(config, {
      dir,
      signal: stop.signal,
      onProgress: (p) => {
        job.updateProgress(p).catch(() => {});
      },
    });
    if (interrupted) {
      // Back to wait, not failed: the checkpoint just written is where the next worker starts.
      if (token) await job.moveToWait(token);
      throw new WaitingError();
    }
    const finished: SweepRunResult = {
      ...result,
      sweep,
      id: runId,
      config,
      params,
      attempts: job.attemptsStarted,
      worker,
      finishedAt: Date.now(),
    };
    recordCompletion(dir, { worker, pid: process.pid, attempts: job.attemptsStarted, weightsSha256: result.weightsSha256, at: finished.finishedAt });
    // A duplicate delivery that finished first has written the same run: keep its file.
    const first = readResult<SweepRunResult>(dir);
    if (first) return first;
    writeResult(dir, finished);
    return finished;
  } catch (e) {
    if (e instanceof WaitingError) throw e;
    if (e instanceof TrainchartError && (e.code === 'CONFIG' || e.code === 'DATA')) unrecoverable(e);
    throw e;
  } finally {
    signal?.removeEventListener('abort', onCancel);
    local.delete(stop);
  }
}
