/**
 * Where a sweep lives in Redis and on disk. One BullMQ queue carries the runs of every sweep
 * (a worker serves whatever is enqueued); a run's job id is `<sweep>/<run id>`, so enqueuing
 * the same run twice is one job (BullMQ ignores an `add` whose id exists). The sweep's own
 * record (its spec and its runs, in order) is one JSON string beside BullMQ's keys.
 */
import { join } from 'node:path';
import type { SweepRun } from './expand.js';
import type { SweepSpec } from './spec.js';
import type { RunResult } from './runResult.js';

/** The BullMQ queue of all sweeps' runs. */
export const QUEUE_NAME = 'trainchart-sweeps';

/** The job's name (BullMQ's label for the kind of job). */
export const RUN_JOB_NAME = 'run';

export function jobId(sweep: string, runId: string): string {
  return `${sweep}/${runId}`;
}

export function sweepKey(sweep: string): string {
  return `trainchart:sweep:${sweep}`;
}

/** A run's checkpoints and result: `<runsDir>/<sweep>/<run id>` (a directory every worker reaches). */
export function runDir(runsDir: string, sweep: string, runId: string): string {
  return join(runsDir, sweep, runId);
}

/** What the sweep's key holds. */
export interface SweepRecord {
  name: string;
  spec: SweepSpec;
  runs: SweepRun[];
  /** ms since the epoch. */
  createdAt: number;
  /** The runs directory given when it was enqueued (informative: each worker writes to its own --runs). */
  runsDir?: string;
}

/** What a run's job carries (all a worker needs: no other shared state). */
export interface RunJobData {
  sweep: string;
  runId: string;
  config: SweepRun['config'];
  params: SweepRun['params'];
}

/** A finished run, as its job returns it and as `result.json` in its directory holds it. */
export interface SweepRunResult extends RunResult {
  sweep: string;
  id: string;
  config: SweepRun['config'];
  params: SweepRun['params'];
  /** Deliveries of the job up to the one that finished it (BullMQ's attemptsStarted). */
  attempts: number;
  /** The worker whose child finished it. */
  worker: string;
  /** ms since the epoch. */
  finishedAt: number;
}

/** What the worker's child reads from its environment (BullMQ hands a sandboxed processor only the job). */
export const ENV_RUNS_DIR = 'TRAINCHART_SWEEP_RUNS';
export const ENV_WORKER_NAME = 'TRAINCHART_SWEEP_WORKER';

/** The reason a worker gives when it cancels a job whose lock it lost: the job is someone else's now. */
export const LOCK_LOST = 'trainchart:lock-lost';
