/**
 * The chart of a sweep: the chosen metric of every finished run against each swept option,
 * one panel per option side by side (a learning-rate scan is one panel: metric against lr).
 * A numeric option is a quantitative axis, on a log scale when the sweep drew it log-uniformly
 * or its values span more than a decade; any other option (optimizer, model, …) is nominal.
 * The best run is drawn larger and red in every panel, so its configuration reads across them.
 */
import { renderVegaLite, type PlotFiles, type TopLevelSpec } from './render.js';

const WIDTH = 300;
const HEIGHT = 260;

export interface SweepChartParam {
  name: string;
  /** Draw on a log scale (numeric options only). */
  log?: boolean;
}

export interface SweepChartData {
  metric: string;
  params: SweepChartParam[];
  runs: Array<{ id: string; params: Record<string, string | number | boolean>; value: number; best?: boolean }>;
  title?: string;
}

export function sweepChartSpec(data: SweepChartData): TopLevelSpec {
  const runs = data.runs.filter((r) => Number.isFinite(r.value));
  const panels = data.params.map((p) => {
    const values = runs.map((r) => r.params[p.name]);
    const numeric = values.length > 0 && values.every((v) => typeof v === 'number');
    const nums = values.filter((v): v is number => typeof v === 'number');
    const log = numeric && nums.every((v) => v > 0) && (p.log ?? Math.max(...nums) / Math.min(...nums) > 10);
    const rows = runs.map((r) => ({ id: r.id, x: numeric ? r.params[p.name] : String(r.params[p.name]), value: r.value, best: Boolean(r.best) }));
    const x = numeric
      ? { field: 'x', type: 'quantitative' as const, title: log ? `${p.name} (log scale)` : p.name, scale: log ? { type: 'log' as const } : { zero: false } }
      : { field: 'x', type: 'nominal' as const, title: p.name, axis: { labelAngle: 0 } };
    const y = { field: 'value', type: 'quantitative' as const, title: data.metric, scale: { zero: false } };
    const tooltip = [{ field: 'id' }, { field: 'x', title: p.name }, { field: 'value', title: data.metric }];
    return {
      width: WIDTH,
      height: HEIGHT,
      data: { values: rows },
      layer: [
        { mark: { type: 'point' as const, filled: true, size: 60, opacity: 0.8, color: '#1f77b4' }, encoding: { x, y, tooltip } },
        {
          transform: [{ filter: 'datum.best' }],
          mark: { type: 'point' as const, filled: true, size: 160, color: '#d62728' },
          encoding: { x, y, tooltip },
        },
      ],
    };
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: data.title ?? `${data.metric} across the sweep`,
    background: 'white',
    hconcat: panels,
  } as TopLevelSpec;
}

/** Writes `<path>.svg` and `<path>.png`. */
export const plotSweepChart = (data: SweepChartData, path: string): Promise<PlotFiles> => renderVegaLite(sweepChartSpec(data), path);
