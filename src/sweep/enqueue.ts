/**
 * `enqueueSweep(spec, { connection })`: check the spec, claim the sweep's name, enqueue its runs.
 *
 * Nothing reaches Redis before the spec is valid and every run expanded; the name is claimed
 * with SET NX (two enqueuers of one name: one wins, the other is refused), and the runs go in
 * one `addBulk` (a MULTI: all of them or none). `replace` first removes the old sweep's jobs,
 * refusing while any of them is running.
 */
import { resolve } from 'node:path';
import { ConfigError, QueueError } from '../errors.js';
import type { SweepConnection } from './connection.js';
import { expandSweep, type SweepRun } from './expand.js';
import { jobId, RUN_JOB_NAME, sweepKey, type RunJobData, type SweepRecord } from './names.js';
import { checkRunsDir } from './runFiles.js';
import { readSweep, withSession, type SweepSession } from './session.js';
import { validateSpec, type SweepSpec } from './spec.js';

export interface EnqueueOptions {
  connection: SweepConnection;
  /** Overrides `spec.name` (the CLI's `--name`). */
  name?: string;
  /** Replace an existing sweep of that name (its runs that have not finished are removed). Default false. */
  replace?: boolean;
  /**
   * The runs directory the workers will use, when it is known here (same path on this machine):
   * checked writable before anything is enqueued, and recorded in the sweep (shown by status).
   * Each worker's own `runsDir` is what it writes to.
   */
  runsDir?: string;
  /**
   * Tries of a run that fails with an error (default 3; a bad configuration is not retried).
   * A worker that dies is not a failure: its run is handed over (see `startWorker`).
   */
  attempts?: number;
}

export interface EnqueuedSweep {
  name: string;
  runs: SweepRun[];
  /** The BullMQ job ids, in run order. */
  jobIds: string[];
}

/** Backoff between tries of a failed run: exponential from 1 s. */
const BACKOFF = { type: 'exponential', delay: 1000 } as const;

async function removeOld(session: SweepSession, old: SweepRecord): Promise<void> {
  const jobs = await Promise.all(old.runs.map((r) => session.queue.getJob(jobId(old.name, r.id))));
  const states = await Promise.all(jobs.map((j) => (j ? j.getState() : Promise.resolve('missing'))));
  const running = old.runs.filter((_, i) => states[i] === 'active').map((r) => r.id);
  if (running.length) {
    throw new ConfigError(
      `sweep "${old.name}" has ${running.length} run(s) in progress (${running.join(', ')}): ` +
        `run \`trainchart sweep cancel ${old.name}\`, wait for them to finish, then --replace`,
    );
  }
  for (const job of jobs) if (job) await job.remove();
}

export async function enqueueSweep(spec: SweepSpec | unknown, options: EnqueueOptions): Promise<EnqueuedSweep> {
  if (typeof options !== 'object' || options === null || options.connection === undefined) {
    throw new ConfigError("enqueueSweep(spec, { connection }): give connection: 'redis://127.0.0.1:6379' (or ioredis options, or a client)");
  }
  const attempts = options.attempts ?? 3;
  if (!Number.isSafeInteger(attempts) || attempts < 1) throw new ConfigError(`enqueueSweep: attempts must be an integer ≥ 1, got ${String(attempts)}`);
  // Everything that can be wrong with the spec is found here, before any connection.
  const checked = validateSpec(spec, options.name);
  const runs = expandSweep(checked);
  const name = checked.name;
  if (options.runsDir !== undefined) checkRunsDir(options.runsDir, 'nothing was enqueued');
  const record: SweepRecord = {
    name,
    spec: checked,
    runs,
    createdAt: Date.now(),
    ...(options.runsDir !== undefined ? { runsDir: resolve(options.runsDir) } : {}),
  };
  const ids = runs.map((r) => jobId(name, r.id));

  return withSession(options.connection, async (session) => {
    const { client, queue } = session;
    const old = await readSweep(client, name);
    if (old && !options.replace) {
      throw new ConfigError(
        `sweep "${name}" already exists (${old.runs.length} runs, enqueued ${new Date(old.createdAt).toISOString()}): ` +
          'pass --replace (replace: true) to replace it, or choose another --name',
      );
    }
    if (old) await removeOld(session, old);
    const claimed = old
      ? await client.set(sweepKey(name), JSON.stringify(record))
      : await client.set(sweepKey(name), JSON.stringify(record), 'NX');
    if (claimed !== 'OK') throw new ConfigError(`sweep "${name}" was just enqueued by someone else: pass --replace, or choose another --name`);
    try {
      await queue.addBulk(
        runs.map((run, i) => ({
          name: RUN_JOB_NAME,
          data: { sweep: name, runId: run.id, config: run.config, params: run.params } satisfies RunJobData,
          opts: { jobId: ids[i]!, attempts, backoff: BACKOFF, removeOnComplete: false, removeOnFail: false },
        })),
      );
    } catch (e) {
      // addBulk is one MULTI: no job went in, so the name is free again.
      await client.del(sweepKey(name)).catch(() => {});
      throw new QueueError(`enqueueing sweep "${name}" failed, nothing was enqueued: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    return { name, runs, jobIds: ids };
  });
}
