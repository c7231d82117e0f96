/**
 * Each run of a sweep with its job's state, read from the queue: the common ground of
 * `sweep status`, `sweep results` and `sweep cancel`.
 */
import type { Job } from 'bullmq';
import type { SweepRun } from './expand.js';
import { jobId, type RunJobData, type SweepRecord, type SweepRunResult } from './names.js';
import type { RunProgressReport } from './runResult.js';
import type { SweepSession } from './session.js';

/** BullMQ's job states, and `removed` for a run whose job is gone (cancelled). */
export type RunState = 'waiting' | 'active' | 'completed' | 'failed' | 'delayed' | 'prioritized' | 'waiting-children' | 'unknown' | 'removed';

export interface RunEntry {
  run: SweepRun;
  jobId: string;
  job: Job<RunJobData, SweepRunResult> | null;
  state: RunState;
  /** The last progress the run reported (null before its first batch). */
  progress: RunProgressReport | null;
  /** The finished run's result (completed jobs only). */
  result: SweepRunResult | null;
  /** Deliveries so far (BullMQ's attemptsStarted). */
  attempts: number;
  worker: string | null;
  failedReason: string | null;
}

const BATCH = 100;

export async function runEntries(session: SweepSession, record: SweepRecord): Promise<RunEntry[]> {
  const entries: RunEntry[] = [];
  // In batches: a big sweep should not open thousands of requests at once.
  for (let i = 0; i < record.runs.length; i += BATCH) {
    const runs = record.runs.slice(i, i + BATCH);
    const batch = await Promise.all(
      runs.map(async (run): Promise<RunEntry> => {
        const id = jobId(record.name, run.id);
        const job = ((await session.queue.getJob(id)) ?? null) as Job<RunJobData, SweepRunResult> | null;
        const state = (job ? await job.getState() : 'removed') as RunState;
        const progress = job && typeof job.progress === 'object' && job.progress !== null ? (job.progress as unknown as RunProgressReport) : null;
        const result = state === 'completed' && job?.returnvalue ? job.returnvalue : null;
        return {
          run,
          jobId: id,
          job,
          state,
          progress,
          result,
          attempts: job?.attemptsStarted ?? 0,
          worker: job?.processedBy ?? result?.worker ?? null,
          failedReason: job?.failedReason ?? null,
        };
      }),
    );
    entries.push(...batch);
  }
  return entries;
}
