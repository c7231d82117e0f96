/**
 * The live charts (uPlot): loss (raw and smoothed) and lr / momentum per batch, validation
 * per epoch, and the LR finder's curve. Messages only append to arrays; `flush()` — called
 * from the page's frame loop, a few times a second at most — hands uPlot the new data.
 * A log-scale toggle rebuilds its chart (uPlot fixes a scale's distribution at creation).
 */
import uPlot from 'uplot';
import type { BatchPoint, EpochPoint, LrFindData } from './protocol.js';

const COLORS = ['#1a73e8', '#d93025', '#188038', '#e37400', '#9334e6', '#12b5cb', '#5f6368'];

type Series = { label: string; scale?: string; color: string; width?: number; dash?: number[] };

interface ChartSpec {
  el: HTMLElement;
  logToggle: HTMLInputElement | null;
  /** Which scales the log toggle switches. */
  logScales: string[];
  xLabel: string;
  xLog?: boolean;
  series: () => Series[];
  data: () => uPlot.AlignedData;
  /** Right-hand axis for this scale, if any. */
  rightScale?: string;
  /** Draw a dot at every value (few points, as one per epoch). */
  points?: boolean;
  draw?: (u: uPlot) => void;
}

const positive = (log: boolean) => (v: number | null) => (v === null || !Number.isFinite(v) || (log && v <= 0) ? null : v);

class LiveChart {
  private plot: uPlot | null = null;
  private seriesKey = '';
  private dirty = true;

  constructor(private readonly spec: ChartSpec) {
    spec.logToggle?.addEventListener('change', () => this.rebuild());
  }

  markDirty() {
    this.dirty = true;
  }

  private get log() {
    return this.spec.logToggle?.checked ?? false;
  }

  private options(series: Series[]): uPlot.Options {
    const log = this.log;
    // One x value alone would get uPlot's default 0…100 range: pad it by half a unit instead.
    const xRange: uPlot.Scale.Range = (_u, min, max) => (min === max ? [min - 0.5, max + 0.5] : [min, max]);
    const scales: uPlot.Scales = { x: { time: false, ...(this.spec.xLog ? { distr: 3 } : { range: xRange }) } };
    for (const s of series) {
      const key = s.scale ?? 'y';
      scales[key] = this.spec.logScales.includes(key) && log ? { distr: 3 } : {};
    }
    const axes: uPlot.Axis[] = [{ label: this.spec.xLabel, size: 36 }, { scale: series[0]?.scale ?? 'y', size: 56 }];
    if (this.spec.rightScale && series.some((s) => s.scale === this.spec.rightScale)) {
      axes.push({ scale: this.spec.rightScale, side: 1, grid: { show: false }, size: 50 });
    }
    return {
      width: Math.max(240, this.spec.el.clientWidth || 400),
      height: 170,
      legend: { show: true },
      cursor: { drag: { x: true, y: false } },
      scales,
      axes,
      series: [{ label: this.spec.xLabel }, ...series.map((s) => ({ label: s.label, scale: s.scale ?? 'y', stroke: s.color, width: s.width ?? 1.5, dash: s.dash, spanGaps: true, points: { show: this.spec.points ?? false, size: 6 } }))],
      hooks: this.spec.draw ? { draw: [this.spec.draw] } : {},
    };
  }

  rebuild() {
    this.plot?.destroy();
    this.plot = null;
    this.seriesKey = '';
    this.dirty = true;
    this.flush();
  }

  /** Number of x values drawn (the page exposes it as `data-points`). */
  points = 0;

  flush() {
    if (!this.dirty) return;
    this.dirty = false;
    const series = this.spec.series();
    const raw = this.spec.data();
    const log = this.log;
    const data = raw.map((col, i) =>
      i === 0 ? col : (col as (number | null)[]).map(positive(log && this.spec.logScales.includes(series[i - 1]?.scale ?? 'y'))),
    ) as uPlot.AlignedData;
    this.points = raw[0]?.length ?? 0;
    this.spec.el.dataset.points = String(this.points);
    if (series.length === 0 || this.points === 0) {
      // A new run (a fresh hello) with no history yet: no stale curve from the last one.
      this.plot?.destroy();
      this.plot = null;
      this.seriesKey = '';
      return;
    }
    const key = series.map((s) => `${s.label}/${s.scale}`).join('|');
    if (!this.plot || key !== this.seriesKey) {
      this.plot?.destroy();
      this.seriesKey = key;
      this.plot = new uPlot(this.options(series), data, this.spec.el);
    } else {
      this.plot.setData(data);
    }
  }

  resize() {
    this.plot?.setSize({ width: Math.max(240, this.spec.el.clientWidth || 400), height: 170 });
  }
}

export class Charts {
  private iterations: number[] = [];
  private loss: (number | null)[] = [];
  private smooth: (number | null)[] = [];
  private lr: (number | null)[] = [];
  private mom: (number | null)[] = [];
  private epochs: EpochPoint[] = [];
  private lrfind: LrFindData | null = null;
  private readonly charts: LiveChart[];
  private readonly lossChart: LiveChart;
  private readonly hyperChart: LiveChart;
  private readonly validChart: LiveChart;
  private readonly lrfindChart: LiveChart;

  constructor(root: Document) {
    const el = (id: string) => root.getElementById(id) as HTMLElement;
    const toggle = (id: string) => root.getElementById(id) as HTMLInputElement | null;
    this.lossChart = new LiveChart({
      el: el('chart-loss'),
      logToggle: toggle('log-loss'),
      logScales: ['y'],
      xLabel: 'iteration',
      series: () => [
        { label: 'loss', color: '#9aa7b8', width: 1 },
        { label: 'smoothed', color: COLORS[0]!, width: 2 },
      ],
      data: () => [this.iterations, this.loss, this.smooth] as uPlot.AlignedData,
    });
    this.hyperChart = new LiveChart({
      el: el('chart-hyper'),
      logToggle: toggle('log-lr'),
      logScales: ['lr'],
      xLabel: 'iteration',
      rightScale: 'mom',
      series: () => [
        { label: 'lr', scale: 'lr', color: COLORS[2]! },
        ...(this.mom.some((m) => m !== null) ? [{ label: 'momentum', scale: 'mom', color: COLORS[3]!, dash: [5, 3] }] : []),
      ],
      data: () =>
        (this.mom.some((m) => m !== null) ? [this.iterations, this.lr, this.mom] : [this.iterations, this.lr]) as uPlot.AlignedData,
    });
    this.validChart = new LiveChart({
      el: el('chart-valid'),
      logToggle: toggle('log-valid'),
      logScales: ['y'],
      xLabel: 'epoch',
      rightScale: 'metric',
      points: true,
      series: () => [
        { label: 'train loss', color: COLORS[0]! },
        { label: 'valid loss', color: COLORS[1]! },
        ...this.metricNames().map((name, i) => ({ label: name, scale: 'metric', color: COLORS[(i + 2) % COLORS.length]!, dash: [4, 3] })),
      ],
      data: () =>
        [
          this.epochs.map((e) => e.epoch),
          this.epochs.map((e) => e.trainLoss),
          this.epochs.map((e) => e.validLoss),
          ...this.metricNames().map((name) => this.epochs.map((e) => e.metrics?.[name] ?? null)),
        ] as uPlot.AlignedData,
    });
    this.lrfindChart = new LiveChart({
      el: el('chart-lrfind'),
      logToggle: toggle('log-lrfind-loss'),
      logScales: ['y'],
      xLabel: 'learning rate',
      xLog: true,
      series: () => [{ label: 'loss', color: COLORS[0]! }],
      data: () => {
        // uPlot wants x ascending: the finder's lrs already are.
        const lrs = this.lrfind?.lrs ?? [];
        return [lrs, this.lrfind?.losses ?? []] as uPlot.AlignedData;
      },
      draw: (u) => this.drawSuggestions(u),
    });
    this.charts = [this.lossChart, this.hyperChart, this.validChart, this.lrfindChart];
    let timer = 0;
    addEventListener('resize', () => {
      clearTimeout(timer);
      timer = window.setTimeout(() => this.charts.forEach((c) => c.resize()), 150);
    });
  }

  private metricNames(): string[] {
    const names = new Set<string>();
    for (const e of this.epochs) for (const k of Object.keys(e.metrics ?? {})) names.add(k);
    return [...names];
  }

  reset() {
    this.iterations = [];
    this.loss = [];
    this.smooth = [];
    this.lr = [];
    this.mom = [];
    this.epochs = [];
    this.charts.forEach((c) => c.markDirty());
  }

  addBatches(items: readonly BatchPoint[]) {
    for (const b of items) {
      // Points arrive in order; a repeat (a late hello's history overlapping the stream) is dropped.
      const last = this.iterations[this.iterations.length - 1];
      if (last !== undefined && b.iteration <= last) continue;
      this.iterations.push(b.iteration);
      this.loss.push(b.loss ?? null);
      this.smooth.push(b.smoothLoss ?? null);
      this.lr.push(b.lr ?? null);
      this.mom.push(b.momentum ?? null);
    }
    this.lossChart.markDirty();
    this.hyperChart.markDirty();
  }

  addEpoch(e: EpochPoint) {
    const i = this.epochs.findIndex((x) => x.epoch === e.epoch);
    if (i >= 0) this.epochs[i] = e;
    else this.epochs.push(e);
    this.epochs.sort((a, b) => a.epoch - b.epoch);
    this.validChart.markDirty();
  }

  setLrFind(data: LrFindData) {
    this.lrfind = data;
    const section = document.getElementById('lrfind-section');
    if (section) section.hidden = false;
    const list = document.getElementById('lrfind-suggestions');
    if (list) {
      list.textContent = Object.entries(data.suggestions)
        .map(([name, s]) => `${name} ${formatLr(suggestionLr(s))}`)
        .join(' · ');
    }
    this.lrfindChart.rebuild();
  }

  private drawSuggestions(u: uPlot) {
    if (!this.lrfind) return;
    const ctx = u.ctx;
    ctx.save();
    Object.values(this.lrfind.suggestions).forEach((s, i) => {
      const lr = suggestionLr(s);
      if (lr === null || !(lr > 0)) return;
      const x = u.valToPos(lr, 'x', true);
      ctx.strokeStyle = COLORS[(i + 1) % COLORS.length]!;
      ctx.setLineDash([4, 4]);
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
    });
    ctx.restore();
  }

  /** Called from the frame loop. */
  flush() {
    for (const c of this.charts) c.flush();
  }
}

const suggestionLr = (s: number | { lr: number } | null | undefined): number | null =>
  typeof s === 'number' ? s : s && typeof s.lr === 'number' ? s.lr : null;
const formatLr = (lr: number | null) => (lr === null ? '—' : lr.toExponential(2));
