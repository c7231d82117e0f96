/**
 * `sweepStatus(name, { connection })` and `trainchart sweep status NAME`: every run of the
 * sweep with its state, where it is (epoch, iteration), its best validation loss so far, how
 * many times it was delivered, and the worker that has (or had) it.
 */
import type { SweepConnection } from './connection.js';
import { runEntries, type RunState } from './runStates.js';
import { requireSweep, withSession } from './session.js';

export interface RunStatus {
  id: string;
  params: Record<string, string | number | boolean>;
  state: RunState;
  /** 1-based epoch the run is in (or ended in), and the run's epochs. */
  epoch: number | null;
  epochs: number;
  /** Train batches done in the run. */
  iteration: number | null;
  /** Best validation loss so far (the finished run's, or the last progress report's). */
  bestValidLoss: number | null;
  attempts: number;
  worker: string | null;
  failedReason: string | null;
}

export interface SweepStatus {
  name: string;
  runs: RunStatus[];
  /** How many runs are in each state. */
  counts: Partial<Record<RunState, number>>;
  /** The runs directory given at enqueue time, if one was. */
  runsDir: string | null;
}

export async function sweepStatus(name: string, options: { connection: SweepConnection }): Promise<SweepStatus> {
  return withSession(options.connection, async (session) => {
    const record = await requireSweep(session.client, name);
    const entries = await runEntries(session, record);
    const runs = entries.map((e): RunStatus => {
      const p = e.progress;
      const r = e.result;
      return {
        id: e.run.id,
        params: e.run.params,
        state: e.state,
        epoch: r ? r.epochs : p ? Math.min(p.epoch + 1, p.nEpochs) : null,
        epochs: e.run.config.epochs,
        iteration: r ? r.runIterations : (p?.iteration ?? null),
        bestValidLoss: r?.metrics.bestValidLoss ?? p?.bestValidLoss ?? null,
        attempts: e.attempts,
        worker: e.worker,
        failedReason: e.state === 'failed' ? e.failedReason : null,
      };
    });
    const counts: Partial<Record<RunState, number>> = {};
    for (const r of runs) counts[r.state] = (counts[r.state] ?? 0) + 1;
    return { name: record.name, runs, counts, runsDir: record.runsDir ?? null };
  });
}

const fmt = (v: number | null, digits = 4) => (v === null || !Number.isFinite(v) ? '-' : v.toFixed(digits));
const fmtParam = (v: string | number | boolean) => (typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(3) : String(v));

/** A plain-text table, one run a line. */
export function formatStatus(status: SweepStatus): string {
  const header = ['run', 'state', 'epoch', 'iteration', 'best validLoss', 'attempts', 'worker', 'params'];
  const rows = status.runs.map((r) => [
    r.id,
    r.state,
    r.epoch === null ? '-' : `${r.epoch}/${r.epochs}`,
    r.iteration === null ? '-' : String(r.iteration),
    fmt(r.bestValidLoss),
    String(r.attempts),
    r.worker ?? '-',
    Object.entries(r.params)
      .map(([k, v]) => `${k}=${fmtParam(v)}`)
      .join(' ') + (r.failedReason ? `  (failed: ${r.failedReason})` : ''),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  const counts = Object.entries(status.counts)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
  const where = status.runsDir ? `, runs in ${status.runsDir}` : '';
  return [`sweep ${status.name}: ${status.runs.length} runs (${counts})${where}`, line(header), ...rows.map(line)].join('\n') + '\n';
}
