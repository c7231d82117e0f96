/**
 * The charts of a run, as Vega-Lite specs built from plain arrays (fastai's Recorder plots):
 * losses against iterations, the hyper-parameter schedule, and the LR finder's loss against
 * a log-scale learning rate with the suggestions marked.
 */
import { ConfigError } from '../errors.js';
import { interp } from '../numeric.js';
import { renderVegaLite, type PlotFiles, type TopLevelSpec } from './render.js';

const WIDTH = 520;
const HEIGHT = 300;

/** `~e` trims zeros: 1e-3, 2.5e-4 (d3-format). */
const EXP_FORMAT = '~e';

/** Non-finite points are left out: an Infinity would stretch the scale, a NaN draws nothing anyway. */
function finite<T extends Record<string, unknown>>(rows: T[], keys: Array<keyof T>): T[] {
  return rows.filter((r) => keys.every((k) => Number.isFinite(r[k] as number)));
}

export interface LossChartData {
  iterations: number[];
  losses: number[];
  smoothLosses: number[];
  /** Validation loss at the end of each epoch, at the iteration count reached then. */
  valid?: Array<{ iteration: number; loss: number }>;
  /** Leading batches left out (fastai's skip_start: the first losses dwarf the rest). */
  skipStart?: number;
  title?: string;
}

export function lossChartSpec(data: LossChartData): TopLevelSpec {
  const skip = data.skipStart ?? 5;
  const rows: Array<{ iteration: number; loss: number; series: string }> = [];
  data.iterations.forEach((it, i) => {
    if (i < skip) return;
    rows.push({ iteration: it, loss: data.losses[i]!, series: 'train (raw)' });
    rows.push({ iteration: it, loss: data.smoothLosses[i]!, series: 'train (smoothed)' });
  });
  for (const v of data.valid ?? []) rows.push({ iteration: v.iteration, loss: v.loss, series: 'valid' });
  const color = {
    field: 'series',
    type: 'nominal',
    title: null,
    scale: { domain: ['train (raw)', 'train (smoothed)', 'valid'], range: ['#9ecae9', '#1f77b4', '#ff7f0e'] },
    legend: { orient: 'top-right' },
  } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: data.title ?? 'Loss',
    width: WIDTH,
    height: HEIGHT,
    background: 'white',
    data: { values: finite(rows, ['iteration', 'loss']) },
    encoding: {
      x: { field: 'iteration', type: 'quantitative', title: 'Iteration (train batches)' },
      y: { field: 'loss', type: 'quantitative', title: 'Loss', scale: { zero: false } },
      color,
    },
    layer: [
      { transform: [{ filter: "datum.series !== 'valid'" }], mark: { type: 'line', strokeWidth: 1.5 } },
      {
        transform: [{ filter: "datum.series === 'valid'" }],
        mark: { type: 'line', point: { size: 60, filled: true }, strokeWidth: 2 },
      },
    ],
  };
}

export interface LrChartData {
  iterations: number[];
  lrs: number[];
  /** Momentum (Adam's β1) per batch; drawn in a second panel when given. */
  moms?: number[];
  title?: string;
}

export function lrChartSpec(data: LrChartData): TopLevelSpec {
  const rows = data.iterations.map((it, i) => ({ iteration: it, lr: data.lrs[i]!, mom: data.moms?.[i] ?? Number.NaN }));
  const x = { field: 'iteration', type: 'quantitative', title: 'Iteration (train batches)' } as const;
  const lrPanel = {
    width: WIDTH,
    height: HEIGHT,
    title: 'Learning rate',
    transform: [{ filter: 'isFinite(datum.lr)' }],
    mark: { type: 'line', strokeWidth: 2 } as const,
    encoding: { x, y: { field: 'lr', type: 'quantitative', title: 'Learning rate', axis: { format: EXP_FORMAT } } as const },
  };
  const base = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    background: 'white',
    data: { values: rows },
  } as const;
  if (!data.moms) return { ...base, ...lrPanel, title: data.title ?? 'Learning rate schedule' };
  return {
    ...base,
    title: data.title ?? 'Hyper-parameter schedule',
    hconcat: [
      lrPanel,
      {
        width: WIDTH,
        height: HEIGHT,
        title: 'Momentum (β1)',
        transform: [{ filter: 'isFinite(datum.mom)' }],
        mark: { type: 'line', strokeWidth: 2, color: '#ff7f0e' },
        encoding: { x, y: { field: 'mom', type: 'quantitative', title: 'Momentum', scale: { zero: false } } },
      },
    ],
  };
}

/**
 * A suggested learning rate, marked at that lr — so the legend's value and the marker agree —
 * on the curve (a number: loss interpolated on log10(lr)), at the given loss (`{ lr, loss }`),
 * or at a point (`{ lr, point }`, as `suggestionMarks` gives) whose lr must be the suggestion's:
 * one elsewhere is a ConfigError. (fastai's plot_lr_find marks `minimum` at the lowest loss,
 * a tenfold from the value it names; here it is marked at its value.)
 */
export type Suggestion = number | { lr: number; loss: number } | { lr: number; point: { lr: number; loss: number } };

export interface LrFindChartData {
  lrs: number[];
  /** The smoothed losses (what fastai plots). */
  losses: number[];
  suggestions?: Record<string, Suggestion>;
  /** Trailing batches left out (fastai's skip_end: the divergence would flatten the curve). */
  skipEnd?: number;
  title?: string;
}

const SUGGESTION_COLORS = ['#d62728', '#2ca02c', '#9467bd', '#8c564b', '#e377c2'];

export function lrFindChartSpec(data: LrFindChartData): TopLevelSpec {
  const skipEnd = data.skipEnd ?? 5;
  const n = skipEnd > 0 ? Math.max(0, data.lrs.length - skipEnd) : data.lrs.length;
  const curve = finite(
    data.lrs.slice(0, n).map((lr, i) => ({ lr, loss: data.losses[i]! })),
    ['lr', 'loss'],
  ).filter((r) => r.lr > 0);
  const logLrs = curve.map((r) => Math.log10(r.lr));
  const losses = curve.map((r) => r.loss);
  // Each mark sits at (lr, loss), lr being the suggested value its label gives.
  const marks = Object.entries(data.suggestions ?? {})
    .map(([name, s]) => {
      const suggested = typeof s === 'number' ? s : s.lr;
      if (typeof s !== 'number' && 'point' in s && s.point.lr !== s.lr && Number.isFinite(s.lr)) {
        throw new ConfigError(
          `lrFindChartSpec: suggestion ${name} is marked at lr ${s.point.lr.toExponential()} but names ${s.lr.toExponential()}; ` +
            'a marker must sit at the lr its legend gives: give point.lr equal to lr, or a number to place it on the curve',
        );
      }
      const at =
        typeof s === 'number'
          ? { lr: s, loss: interp(Math.log10(s), logLrs, losses) }
          : 'point' in s
            ? s.point
            : { lr: s.lr, loss: s.loss };
      return { name, lr: at.lr, loss: at.loss, suggested, label: `${name}: ${suggested.toExponential(2)}` };
    })
    .filter((m) => Number.isFinite(m.suggested) && Number.isFinite(m.lr) && m.lr > 0 && Number.isFinite(m.loss))
    // Neighbouring suggestions are often close: alternate their names above and below the curve.
    .sort((a, b) => a.lr - b.lr)
    .map((m, i) => ({ ...m, above: i % 2 === 0 }));
  const x = {
    field: 'lr',
    type: 'quantitative',
    title: 'Learning rate (log scale)',
    scale: { type: 'log' },
    axis: { format: EXP_FORMAT },
  } as const;
  const y = { field: 'loss', type: 'quantitative', title: 'Loss (smoothed)', scale: { zero: false } } as const;
  const color = {
    field: 'label',
    type: 'nominal',
    title: 'Suggestions',
    scale: { domain: marks.map((m) => m.label), range: SUGGESTION_COLORS.slice(0, Math.max(1, marks.length)) },
    legend: { orient: 'top-left' },
  } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: data.title ?? 'LR finder',
    width: WIDTH,
    height: HEIGHT,
    background: 'white',
    layer: [
      { data: { values: curve }, mark: { type: 'line', strokeWidth: 2, color: '#1f77b4' }, encoding: { x, y } },
      ...(marks.length
        ? [
            {
              data: { values: marks },
              layer: [
                { mark: { type: 'rule' as const, strokeDash: [4, 3], opacity: 0.7 }, encoding: { x, color } },
                { mark: { type: 'point' as const, filled: true, size: 90, opacity: 1 }, encoding: { x, y, color } },
                ...[true, false].map((above) => ({
                  transform: [{ filter: `datum.above === ${above}` }],
                  mark: { type: 'text' as const, align: 'left' as const, dx: 7, dy: above ? -10 : 14, fontSize: 12 },
                  encoding: { x, y, text: { field: 'name' }, color },
                })),
              ],
            },
          ]
        : []),
    ],
  };
}

export const plotLossChart = (data: LossChartData, path: string): Promise<PlotFiles> => renderVegaLite(lossChartSpec(data), path);
export const plotLrChart = (data: LrChartData, path: string): Promise<PlotFiles> => renderVegaLite(lrChartSpec(data), path);
export const plotLrFindChart = (data: LrFindChartData, path: string): Promise<PlotFiles> =>
  renderVegaLite(lrFindChartSpec(data), path);
