import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';

export type MonitorMode = 'min' | 'max' | 'auto';

export interface TrackerOptions {
  /**
   * What to watch, read at each epochEnd: a key of the validation metrics (`validLoss`,
   * `accuracy`, `errorRate`, a custom metric's name), `trainLoss` (mean of the epoch's raw train
   * losses, as the Recorder's) or `smoothLoss` (the smoothed train loss at the epoch's end).
   * Default `validLoss`.
   */
  monitor?: string;
  /** `min`: lower is better; `max`: higher is better; `auto` (default): `min` when the name contains "loss" or "error", as fastai. */
  mode?: MonitorMode;
  /** An improvement must beat the best by more than this (≥ 0). Default 0. */
  minDelta?: number;
}

const TRAIN_MONITORS = new Set(['trainLoss', 'smoothLoss']);

/**
 * The common part of EarlyStopping, ReduceLROnPlateau and SaveModel (fastai's
 * TrackerCallback): reads the monitored value at each epochEnd and says whether it improved
 * on the best so far by more than `minDelta`.
 *
 * Improvement is `value < best − minDelta` in min mode, `value > best + minDelta` in max mode;
 * the first finite value always improves; NaN never does. An epoch whose monitored value is
 * missing (a validation metric in an epoch that skipped validation) is not counted at all.
 *
 * Its state (`stateKeys`) is the best so far, where it was reached, the last value and the
 * running epoch's train-loss sum; monitor, mode and minDelta are options and never restored.
 * A fit resets the state at trainBegin (fastai's `reset_on_fit`); a resumed fit gets it back
 * from `setState`, which the loop calls after every onTrainBegin.
 */
export abstract class TrackerCallback extends Callback {
  readonly monitor: string;
  readonly mode: 'min' | 'max';
  readonly minDelta: number;
  /** Best monitored value so far (null before the first). */
  best: number | null = null;
  /** Epoch at which `best` was reached. */
  bestEpoch: number | null = null;
  /** The monitored value of the last epoch that had one. */
  lastValue: number | null = null;
  protected epochLossSum = 0;
  protected epochLossCount = 0;
  protected epochValid: Record<string, number> | null = null;
  /**
   * The tracker's state fields; a subclass lists its own after them
   * (`stateKeys = [...TrackerCallback.STATE_KEYS, 'wait']`). The running epoch's sums are
   * state too: a checkpoint may be taken mid-epoch.
   */
  static readonly STATE_KEYS: readonly string[] = ['best', 'bestEpoch', 'lastValue', 'epochLossSum', 'epochLossCount', 'epochValid'];
  protected override readonly stateKeys: readonly string[] = TrackerCallback.STATE_KEYS;

  constructor(options: TrackerOptions = {}) {
    super();
    const monitor = options.monitor ?? 'validLoss';
    if (typeof monitor !== 'string' || monitor === '') {
      throw new ConfigError(`${this.name}: monitor must be a metric name such as 'validLoss', 'accuracy' or 'trainLoss', got ${String(monitor)}`);
    }
    const mode = options.mode ?? 'auto';
    if (mode !== 'min' && mode !== 'max' && mode !== 'auto') {
      throw new ConfigError(`${this.name}: mode must be 'min', 'max' or 'auto', got ${JSON.stringify(mode)}`);
    }
    const minDelta = options.minDelta ?? 0;
    if (typeof minDelta !== 'number' || !(minDelta >= 0) || !Number.isFinite(minDelta)) {
      throw new ConfigError(`${this.name}: minDelta must be a finite number ≥ 0 (the margin an improvement must beat), got ${String(minDelta)}`);
    }
    this.monitor = monitor;
    this.mode = mode === 'auto' ? (/loss|error/i.test(monitor) ? 'min' : 'max') : mode;
    this.minDelta = minDelta;
  }

  /** Is `value` better than the best so far by more than minDelta? */
  isImprovement(value: number): boolean {
    if (Number.isNaN(value)) return false;
    if (this.best === null) return true;
    return this.mode === 'min' ? value < this.best - this.minDelta : value > this.best + this.minDelta;
  }

  onTrainBegin(_ctx: TrainContext): void {
    if (!TRAIN_MONITORS.has(this.monitor) && !this.learn.data.valid) {
      throw new ConfigError(
        `${this.name} monitors '${this.monitor}', a validation metric, but the learner has no validation data: ` +
          "give data.valid, or monitor 'trainLoss'",
      );
    }
    this.reset();
  }

  /** Forget the best and anything a subclass counts (start of a fit). */
  protected reset(): void {
    this.best = null;
    this.bestEpoch = null;
    this.lastValue = null;
    this.epochLossSum = 0;
    this.epochLossCount = 0;
    this.epochValid = null;
  }

  onEpochBegin(_ctx: TrainContext): void {
    this.epochLossSum = 0;
    this.epochLossCount = 0;
    this.epochValid = null;
  }

  onBatchEnd(ctx: TrainContext): void {
    if (!ctx.train) return;
    // Summed when the loop reads the losses in bulk, by the epoch's end at the latest.
    ctx.readLossLater((loss) => {
      if (loss !== null && Number.isFinite(loss)) {
        this.epochLossSum += loss;
        this.epochLossCount += 1;
      }
    });
  }

  onValidateEnd(ctx: TrainContext): void {
    const metrics = ctx.lastMetrics;
    if (!metrics) return;
    if (!TRAIN_MONITORS.has(this.monitor) && !(this.monitor in metrics)) {
      throw new ConfigError(
        `${this.name} monitors '${this.monitor}', which is not a validation metric of this learner; ` +
          `choose one of ${[...Object.keys(metrics), ...TRAIN_MONITORS].map((k) => `'${k}'`).join(', ')}`,
      );
    }
    this.epochValid = { ...metrics };
  }

  /** This epoch's monitored value, or null when the epoch has none. */
  protected monitoredValue(ctx: TrainContext): number | null {
    if (this.monitor === 'trainLoss') return this.epochLossCount ? this.epochLossSum / this.epochLossCount : null;
    if (this.monitor === 'smoothLoss') return ctx.smoothLoss;
    return this.epochValid?.[this.monitor] ?? null;
  }

  /**
   * Call at epochEnd: reads the monitored value and updates the best.
   * Returns 'improved', 'same' (no improvement) or 'missing' (no value this epoch).
   */
  protected track(ctx: TrainContext): 'improved' | 'same' | 'missing' {
    const value = this.monitoredValue(ctx);
    if (value === null) return 'missing';
    this.lastValue = value;
    if (!this.isImprovement(value)) return 'same';
    this.best = value;
    this.bestEpoch = ctx.epoch;
    return 'improved';
  }
}
