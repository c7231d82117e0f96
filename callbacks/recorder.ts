import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import type { JumpPosition, TrainContext } from '../src/loop/context.js';
import { plotLossChart, plotLrChart, plotLrFindChart, type Suggestion } from '../src/plot/charts.js';
import type { PlotFiles } from '../src/plot/render.js';

export interface EpochRecord {
  epoch: number;
  /** Mean of the raw train losses of the epoch's batches. */
  trainLoss: number;
  /** Validation loss and metrics, when the epoch had a validation pass. */
  valid: Record<string, number> | null;
  seconds: number;
  /** Train batches done in the run by the end of this epoch (where its validation loss is plotted). */
  iteration: number;
}

/** One train batch: the lr and momentum its step used, its raw and smoothed loss. */
export interface BatchRecord {
  iteration: number;
  lr: number;
  mom: number;
  loss: number;
  smoothLoss: number;
}

export interface RecorderHistory {
  batches: BatchRecord[];
  epochs: EpochRecord[];
}

export interface HistoryFiles {
  json: string;
  batchesCsv: string;
  epochsCsv: string;
}

/** Full precision (String keeps every digit of a double) and NaN as "NaN", which CSV readers parse. */
function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csv(header: string[], rows: unknown[][]): string {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

/** The per-train-batch records, parallel arrays. */
const BATCH_SERIES = ['iterations', 'batchEpochs', 'lrs', 'moms', 'losses', 'smoothLosses'] as const;

/**
 * Records the run, as fastai's always-on Recorder: per train batch the lr, momentum, raw
 * and smoothed loss (the lr is the one the step of that batch used); per epoch the train and
 * validation losses and metrics.
 *
 * State: every record (per batch, with the epoch of each batch; per epoch) and the running
 * epoch's sums. A resume at epoch N forgets the records of epochs ≥ N, batches included.
 * The epoch's start time is not state: a `performance.now()` reading means nothing in
 * another process, so an epoch resumed mid-way counts its seconds from the resume.
 */
export class Recorder extends Callback {
  // Records after the callbacks that set hyper-parameters or change the loss.
  override order = 50;
  // Per train batch that reached batchEnd, parallel arrays (docs/api.md, "The Recorder").
  /** `ctx.iteration` of each train batch: 0-based, counted over the whole run. */
  iterations: number[] = [];
  /** The 0-based epoch of each train batch (parallel to `iterations`). */
  batchEpochs: number[] = [];
  /** The lr each batch's step used (`learn.lr` at batchEnd). */
  lrs: number[] = [];
  /** The momentum (SGD) or β1 (Adam) each batch's step used. */
  moms: number[] = [];
  #losses: number[] = [];
  #smoothLosses: number[] = [];
  /** The context of a run whose latest losses are not read yet (read in bulk: `ctx.readLossLater`). */
  #unread: TrainContext | null = null;
  #unreadCount = 0;
  /** One record per epoch that reached epochEnd. */
  epochs: EpochRecord[] = [];
  private epochStart = performance.now();
  private lossSum = 0;
  private lossCount = 0;
  private validMetrics: Record<string, number> | null = null;
  protected override readonly stateKeys: readonly string[] = [
    'iterations',
    'batchEpochs',
    'lrs',
    'moms',
    'losses',
    'smoothLosses',
    'epochs',
    'lossSum',
    'lossCount',
    'validMetrics',
  ];

  /** The raw loss of each batch (`ctx.lastLossValue`; NaN when there was none). */
  get losses(): number[] {
    this.readUnread();
    return this.#losses;
  }
  set losses(v: number[]) {
    this.readUnread();
    this.#losses = v;
  }
  /** `ctx.smoothLoss` after each batch. */
  get smoothLosses(): number[] {
    this.readUnread();
    return this.#smoothLosses;
  }
  set smoothLosses(v: number[]) {
    this.readUnread();
    this.#smoothLosses = v;
  }

  /** Someone looks at the losses mid-run: read the ones still on the device now. */
  private readUnread(): void {
    if (this.#unread && this.#unreadCount > 0) void this.#unread.smoothLoss;
  }

  onTrainBegin(): void {
    this.#unread = null;
    this.#unreadCount = 0;
    this.iterations = [];
    this.batchEpochs = [];
    this.lrs = [];
    this.moms = [];
    this.losses = [];
    this.smoothLosses = [];
    this.epochs = [];
    this.lossSum = 0;
    this.lossCount = 0;
    this.validMetrics = null;
  }

  onEpochBegin(): void {
    this.epochStart = performance.now();
    this.lossSum = 0;
    this.lossCount = 0;
    this.validMetrics = null;
  }

  onBatchEnd(ctx: TrainContext): void {
    if (!ctx.train) return;
    this.iterations.push(ctx.iteration);
    this.batchEpochs.push(ctx.epoch);
    this.lrs.push(this.learn.lr);
    this.moms.push(this.learn.momentum);
    // The losses are filled in when the loop reads them in bulk (by the epoch's end at the latest).
    const losses = this.#losses;
    const smoothLosses = this.#smoothLosses;
    const i = losses.length;
    losses.push(Number.NaN);
    smoothLosses.push(Number.NaN);
    this.#unread = ctx;
    this.#unreadCount += 1;
    ctx.readLossLater((loss, smooth) => {
      this.#unreadCount -= 1;
      // A jump (resume) may have cut the series since; those slots are gone.
      if (losses !== this.#losses || i >= losses.length) return;
      losses[i] = loss ?? Number.NaN;
      smoothLosses[i] = smooth;
      if (loss !== null && Number.isFinite(loss)) {
        this.lossSum += loss;
        this.lossCount += 1;
      }
    });
  }

  /** The run's losses are all read by now (trainEnd reads them first): let go of its context. */
  onTrainEnd(): void {
    this.#unread = null;
    this.#unreadCount = 0;
  }

  onValidateEnd(ctx: TrainContext): void {
    this.validMetrics = ctx.lastMetrics ? { ...ctx.lastMetrics } : null;
  }

  onEpochEnd(ctx: TrainContext): void {
    this.epochs.push({
      epoch: ctx.epoch,
      trainLoss: this.lossCount ? this.lossSum / this.lossCount : Number.NaN,
      valid: this.validMetrics,
      seconds: (performance.now() - this.epochStart) / 1000,
      iteration: ctx.iteration,
    });
  }

  /**
   * Resuming at `epoch`: forget what a previous run recorded from that point on, per epoch and
   * per batch. Mid-epoch (`at.batchIndex` > 0, a checkpoint taken after a batch) the epoch's
   * first `at.batchIndex` batches ran before the checkpoint and stay.
   */
  jumpToEpoch(epoch: number, at?: JumpPosition): void {
    this.epochs = this.epochs.filter((e) => e.epoch < epoch);
    // Batches are recorded in epoch order, each epoch's from its batch 0: keep that prefix.
    const first = this.batchEpochs.findIndex((e) => e >= epoch);
    if (first < 0) return;
    let i = first;
    const keepInEpoch = at?.batchIndex ?? 0;
    while (i < this.batchEpochs.length && i - first < keepInEpoch && this.batchEpochs[i] === epoch) i++;
    const self = this as unknown as Record<string, unknown[]>;
    for (const k of BATCH_SERIES) self[k]!.length = i;
  }

  /** Also checks, before anything is set, that the per-batch series would all have one value per batch. */
  override setState(state: Record<string, unknown>): void {
    if (typeof state === 'object' && state !== null) {
      const self = this as unknown as Record<string, unknown[]>;
      // A series the state lacks keeps its current value, so that one counts.
      const lengths = BATCH_SERIES.map((k) => {
        const v = k in state ? state[k] : self[k];
        return Array.isArray(v) ? v.length : -1;
      });
      if (lengths.some((n) => n !== lengths[0] || n < 0)) {
        throw new ConfigError(
          `Recorder.setState: the per-batch series must be arrays of one length (one value per train batch); got ` +
            BATCH_SERIES.map((k, i) => `${k}: ${lengths[i]! < 0 ? 'not an array' : lengths[i]}`).join(', '),
        );
      }
    }
    super.setState(state);
  }

  /** The history as plain data: per train batch, and per epoch. */
  toJSON(): RecorderHistory {
    return {
      batches: this.iterations.map((iteration, i) => ({
        iteration,
        lr: this.lrs[i]!,
        mom: this.moms[i]!,
        loss: this.losses[i]!,
        smoothLoss: this.smoothLosses[i]!,
      })),
      epochs: structuredClone(this.epochs),
    };
  }

  /** Two CSV tables: one row per train batch, one per epoch (a column per validation metric). */
  toCSV(): { batches: string; epochs: string } {
    const batches = csv(
      ['iteration', 'lr', 'mom', 'loss', 'smoothLoss'],
      this.iterations.map((it, i) => [it, this.lrs[i], this.moms[i], this.losses[i], this.smoothLosses[i]]),
    );
    const metricNames = [...new Set(this.epochs.flatMap((e) => Object.keys(e.valid ?? {})))];
    const epochs = csv(
      ['epoch', 'trainLoss', ...metricNames, 'seconds', 'iteration'],
      this.epochs.map((e) => [e.epoch, e.trainLoss, ...metricNames.map((m) => e.valid?.[m]), e.seconds, e.iteration]),
    );
    return { batches, epochs };
  }

  /** Writes `<stem>.json`, `<stem>-batches.csv` and `<stem>-epochs.csv`; returns their paths. */
  async saveHistory(stem: string): Promise<HistoryFiles> {
    const base = stem.replace(/\.json$/i, '');
    const files = { json: `${base}.json`, batchesCsv: `${base}-batches.csv`, epochsCsv: `${base}-epochs.csv` };
    const tables = this.toCSV();
    await mkdir(dirname(base), { recursive: true });
    await Promise.all([
      writeFile(files.json, JSON.stringify(this.toJSON(), null, 2) + '\n'),
      writeFile(files.batchesCsv, tables.batches),
      writeFile(files.epochsCsv, tables.epochs),
    ]);
    return files;
  }

  /**
   * Train loss per batch (raw and smoothed) and validation loss at each epoch's end, against
   * iterations; the first `skipStart` batches are left out (fastai's default 5).
   * Writes `<path>.svg` and `<path>.png` (`path` may end in .svg or .png).
   */
  plotLoss(path: string, options: { skipStart?: number; title?: string } = {}): Promise<PlotFiles> {
    const valid = this.epochs.flatMap((e) =>
      e.valid?.validLoss !== undefined ? [{ iteration: e.iteration, loss: e.valid.validLoss }] : [],
    );
    return plotLossChart(
      {
        iterations: this.iterations,
        losses: this.losses,
        smoothLosses: this.smoothLosses,
        valid,
        ...(options.skipStart !== undefined ? { skipStart: options.skipStart } : {}),
        ...(options.title !== undefined ? { title: options.title } : {}),
      },
      path,
    );
  }

  /** The learning rate per batch, and the momentum (β1) beside it unless `showMoms: false`. */
  plotLr(path: string, options: { showMoms?: boolean; title?: string } = {}): Promise<PlotFiles> {
    return plotLrChart(
      {
        iterations: this.iterations,
        lrs: this.lrs,
        ...(options.showMoms === false ? {} : { moms: this.moms }),
        ...(options.title !== undefined ? { title: options.title } : {}),
      },
      path,
    );
  }

  /**
   * After an LR finder run: the smoothed loss against the learning rate on a log scale, as
   * fastai's plot_lr_find (the last `skipEnd` = 5 batches left out), each suggestion marked
   * by a rule, a point on the curve and its name.
   */
  plotLrFind(
    path: string,
    options: { suggestions?: Record<string, Suggestion>; skipEnd?: number; title?: string } = {},
  ): Promise<PlotFiles> {
    return plotLrFindChart(
      {
        lrs: this.lrs,
        losses: this.smoothLosses,
        ...(options.suggestions ? { suggestions: options.suggestions } : {}),
        ...(options.skipEnd !== undefined ? { skipEnd: options.skipEnd } : {}),
        ...(options.title !== undefined ? { title: options.title } : {}),
      },
      path,
    );
  }
}
