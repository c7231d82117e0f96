/**
 * `sweepResults(name, { connection, metric })`: the sweep's finished runs, ranked by a metric,
 * and the best one; `trainchart sweep results NAME [--json|--csv] [--metric M] [--plot PATH]`.
 *
 * The ranking reads each run's result where BullMQ keeps it (the completed job's return value),
 * so it needs Redis only, not the runs directory. Loss-like metrics (validLoss, trainLoss,
 * bestValidLoss, errorRate, anything ending in "loss") rank lowest first; accuracy ranks highest
 * first. Runs without the metric (NaN, or never validated) come last, in run order.
 */
import { ConfigError } from '../errors.js';
import { plotSweepChart } from '../plot/sweepChart.js';
import type { PlotFiles } from '../plot/render.js';
import type { ResumedFrom } from '../resume.js';
import type { SweepConnection } from './connection.js';
import type { RunConfig } from './runOptions.js';
import { runEntries, type RunState } from './runStates.js';
import { requireSweep, withSession } from './session.js';
import type { ParamRange, SweepSpec } from './spec.js';

export const DEFAULT_METRIC = 'validLoss';

/** Metrics where more is better; every other one is ranked lowest first. */
const HIGHER_IS_BETTER = new Set(['accuracy']);

export function higherIsBetter(metric: string): boolean {
  return HIGHER_IS_BETTER.has(metric);
}

export interface RankedRun {
  id: string;
  config: RunConfig;
  /** The options the sweep varied, and their values for this run. */
  params: Record<string, string | number | boolean>;
  /** The loop's final status (`completed`, or `stopped` by early stopping). */
  status: string;
  metrics: Record<string, number>;
  weightsSha256: string;
  /** Deliveries of the job up to the one that finished it. */
  attempts: number;
  /** The checkpoint the finishing delivery resumed from, or null if it ran the run from the start. */
  resumedFrom: ResumedFrom | null;
  worker: string;
  /** 1-based place in the ranking. */
  rank: number;
}

export interface SweepResults {
  sweep: string;
  metric: string;
  /** `min` or `max`: the direction of the ranking. */
  order: 'min' | 'max';
  /** The finished runs, best first. */
  runs: RankedRun[];
  /** The best run's id, configuration and metric value (null when no run has the metric yet). */
  best: { id: string; config: RunConfig; params: Record<string, string | number | boolean>; metric: string; value: number } | null;
  /** Runs not finished, by state (waiting, active, failed, removed, …). */
  pending: Partial<Record<RunState, number>>;
  /** The spec's ranges, for the plot's log scales. */
  spec: SweepSpec;
}

export async function sweepResults(name: string, options: { connection: SweepConnection; metric?: string }): Promise<SweepResults> {
  const metric = options.metric ?? DEFAULT_METRIC;
  if (typeof metric !== 'string' || metric === '') throw new ConfigError(`sweep results: metric must be a metric name such as validLoss or accuracy, got ${JSON.stringify(metric)}`);
  return withSession(options.connection, async (session) => {
    const record = await requireSweep(session.client, name);
    const entries = await runEntries(session, record);
    const pending: Partial<Record<RunState, number>> = {};
    const finished = [];
    for (const e of entries) {
      if (e.result) finished.push({ e, r: e.result });
      else pending[e.state] = (pending[e.state] ?? 0) + 1;
    }
    const known = new Set(finished.flatMap(({ r }) => Object.keys(r.metrics)));
    if (finished.length && !known.has(metric)) {
      throw new ConfigError(`sweep results: no finished run of "${record.name}" has the metric "${metric}"; its runs have: ${[...known].sort().join(', ')}`);
    }
    const max = higherIsBetter(metric);
    const value = (m: Record<string, number>) => (Number.isFinite(m[metric]) ? m[metric]! : null);
    finished.sort((a, b) => {
      const va = value(a.r.metrics);
      const vb = value(b.r.metrics);
      if (va === null || vb === null) return va === vb ? a.e.run.index - b.e.run.index : va === null ? 1 : -1;
      return (max ? vb - va : va - vb) || a.e.run.index - b.e.run.index;
    });
    const runs = finished.map(({ e, r }, i): RankedRun => ({
      id: e.run.id,
      config: r.config,
      params: e.run.params,
      status: r.status,
      metrics: r.metrics,
      weightsSha256: r.weightsSha256,
      attempts: r.attempts || e.attempts,
      resumedFrom: r.resumedFrom,
      worker: r.worker,
      rank: i + 1,
    }));
    const top = runs[0];
    const topValue = top ? value(top.metrics) : null;
    return {
      sweep: record.name,
      metric,
      order: max ? 'max' : 'min',
      runs,
      best: top && topValue !== null ? { id: top.id, config: top.config, params: top.params, metric, value: topValue } : null,
      pending,
      spec: record.spec,
    };
  });
}

/** The `--json` line: `{ runs: [{ id, config, status, metrics, weightsSha256, attempts, resumedFrom, … }], best, … }`. */
export function resultsJson(results: SweepResults): string {
  const { spec: _spec, ...rest } = results;
  return JSON.stringify(rest);
}

const csvCell = (v: unknown): string => {
  const s = v === null || v === undefined ? '' : typeof v === 'number' ? String(v) : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** One header line, then one line per finished run, best first. */
export function resultsCsv(results: SweepResults): string {
  const paramKeys = [...new Set(results.runs.flatMap((r) => Object.keys(r.params)))];
  const metricKeys = [...new Set(results.runs.flatMap((r) => Object.keys(r.metrics)))].sort();
  const header = ['rank', 'id', 'status', ...paramKeys, ...metricKeys, 'attempts', 'resumedFromIteration', 'weightsSha256'];
  const lines = results.runs.map((r) =>
    [r.rank, r.id, r.status, ...paramKeys.map((k) => r.params[k]), ...metricKeys.map((k) => r.metrics[k]), r.attempts, r.resumedFrom?.iteration ?? '', r.weightsSha256]
      .map(csvCell)
      .join(','),
  );
  return [header.join(','), ...lines].join('\n') + '\n';
}

const fmt = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '-' : Math.abs(v) >= 1e-3 ? v.toFixed(4) : v.toExponential(3));
const fmtParam = (v: string | number | boolean) => (typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(3) : String(v));

/** The ranking as a table for people, with the best configuration spelled out. */
export function formatResults(results: SweepResults): string {
  const shown = [...new Set([results.metric, 'validLoss', 'accuracy'])];
  const header = ['rank', 'run', ...shown, 'attempts', 'params'];
  const rows = results.runs.map((r) => [
    String(r.rank),
    r.id,
    ...shown.map((m) => fmt(r.metrics[m])),
    String(r.attempts) + (r.resumedFrom ? ` (resumed at ${r.resumedFrom.iteration})` : ''),
    Object.entries(r.params)
      .map(([k, v]) => `${k}=${fmtParam(v)}`)
      .join(' '),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  const pending = Object.entries(results.pending)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
  const out = [
    `sweep ${results.sweep}: ${results.runs.length} finished run(s) ranked by ${results.metric} (${results.order === 'max' ? 'highest' : 'lowest'} first)${pending ? `; not finished: ${pending}` : ''}`,
    line(header),
    ...rows.map(line),
  ];
  if (results.best) out.push(`best: ${results.best.id} with ${results.metric} ${fmt(results.best.value)}: ${JSON.stringify(results.best.config)}`);
  return out.join('\n') + '\n';
}

/** The metric against each swept option (SVG and PNG at `<path>.svg`, `<path>.png`). */
export function plotSweepResults(results: SweepResults, path: string): Promise<PlotFiles> {
  const space = results.spec.random?.space ?? {};
  const names = [...new Set(results.runs.flatMap((r) => Object.keys(r.params)))];
  return plotSweepChart(
    {
      metric: results.metric,
      title: `${results.sweep}: ${results.metric} across the sweep`,
      params: names.map((name) => {
        const dim = space[name as keyof typeof space];
        const log = dim && !Array.isArray(dim) ? (dim as ParamRange).log : undefined;
        return log === undefined ? { name } : { name, log };
      }),
      runs: results.runs.map((r) => ({ id: r.id, params: r.params, value: r.metrics[results.metric] ?? Number.NaN, best: r.id === results.best?.id })),
    },
    path,
  );
}
