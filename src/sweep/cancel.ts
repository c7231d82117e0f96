/**
 * `cancelSweep(name, { connection })` and `trainchart sweep cancel NAME`: removes the runs that
 * have not started (waiting, delayed, prioritized). Runs in progress finish (or stop them with
 * SIGTERM on their worker, which gives them back to wait: a second cancel removes them);
 * finished and failed runs stay, with their results. The sweep itself stays, so that
 * `sweep status` and `sweep results` still show what ran.
 */
import type { SweepConnection } from './connection.js';
import { runEntries } from './runStates.js';
import { requireSweep, withSession } from './session.js';

export interface CancelledSweep {
  name: string;
  /** Runs removed from the queue. */
  removed: string[];
  /** Runs being trained now: they are not stopped. */
  running: string[];
  /** Runs already finished or failed (kept). */
  done: string[];
}

const NOT_STARTED = new Set(['waiting', 'delayed', 'prioritized', 'paused']);

export async function cancelSweep(name: string, options: { connection: SweepConnection }): Promise<CancelledSweep> {
  return withSession(options.connection, async (session) => {
    const record = await requireSweep(session.client, name);
    const out: CancelledSweep = { name: record.name, removed: [], running: [], done: [] };
    for (const e of await runEntries(session, record)) {
      if (e.job && NOT_STARTED.has(e.state)) {
        try {
          await e.job.remove();
          out.removed.push(e.run.id);
        } catch {
          // Taken by a worker between the read and the remove (it holds the lock now).
          out.running.push(e.run.id);
        }
      } else if (e.state === 'active') out.running.push(e.run.id);
      else if (e.state === 'completed' || e.state === 'failed') out.done.push(e.run.id);
    }
    return out;
  });
}
