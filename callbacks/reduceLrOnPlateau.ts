import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import { TrackerCallback, type TrackerOptions } from './tracker.js';

export interface ReduceLROnPlateauOptions extends TrackerOptions {
  /**
   * The lr is *multiplied* by this when it is reduced, as in Keras (0 < factor < 1; default 0.1).
   * fastai's `factor=10` divides instead: fastai's factor F is `factor: 1 / F` here.
   */
  factor?: number;
  /** Epochs without improvement (by more than minDelta) before the lr is reduced. Default 1, as fastai. */
  patience?: number;
  /** The lr is never reduced below this (≥ 0). Default 0. */
  minLr?: number;
}

/**
 * Reduces the learning rate when the monitored value has not improved for `patience` epochs
 * (fastai's ReduceLROnPlateau, with Keras's multiplying `factor`): at each epochEnd an
 * improvement resets the count, anything else adds one; when it reaches `patience`,
 * `learn.lr ← max(learn.lr · factor, minLr)` for the next epoch and the count restarts at 0.
 *
 * A schedule that sets `learn.lr` at every batch (one-cycle) overrides this; use one or the other.
 *
 * State: the tracker's, `wait` and `reductions`; factor, patience and minLr are options. The
 * lr itself is the optimizer's (`optimizer.getState()` carries it).
 */
export class ReduceLROnPlateau extends TrackerCallback {
  // After the Recorder (50), so the epoch's own lr is recorded before it changes.
  override order = 65;
  readonly factor: number;
  readonly patience: number;
  readonly minLr: number;
  /** Epochs since the last improvement or reduction. */
  wait = 0;
  /** Every reduction of the run: the epoch at whose end it happened and the new lr. */
  reductions: Array<{ epoch: number; lr: number }> = [];
  protected override readonly stateKeys = [...TrackerCallback.STATE_KEYS, 'wait', 'reductions'];

  constructor(options: ReduceLROnPlateauOptions = {}) {
    super(options);
    const factor = options.factor ?? 0.1;
    if (typeof factor !== 'number' || !(factor > 0 && factor < 1)) {
      throw new ConfigError(
        `ReduceLROnPlateau: factor multiplies the lr and must be in (0, 1), got ${String(factor)}` +
          (typeof factor === 'number' && factor > 1 ? ` (fastai's factor ${factor} divides: use factor: ${1 / factor})` : ''),
      );
    }
    const patience = options.patience ?? 1;
    if (!Number.isInteger(patience) || patience < 1) {
      throw new ConfigError(`ReduceLROnPlateau: patience must be an integer ≥ 1 (epochs without improvement), got ${String(patience)}`);
    }
    const minLr = options.minLr ?? 0;
    if (typeof minLr !== 'number' || !(minLr >= 0) || !Number.isFinite(minLr)) {
      throw new ConfigError(`ReduceLROnPlateau: minLr must be a finite number ≥ 0, got ${String(minLr)}`);
    }
    this.factor = factor;
    this.patience = patience;
    this.minLr = minLr;
  }

  protected override reset(): void {
    super.reset();
    this.wait = 0;
    this.reductions = [];
  }

  /** Resuming at `epoch`: the reductions of that epoch and later have not happened yet. */
  jumpToEpoch(epoch: number): void {
    this.reductions = this.reductions.filter((r) => r.epoch < epoch);
  }

  onEpochEnd(ctx: TrainContext): void {
    const outcome = this.track(ctx);
    if (outcome === 'missing') return;
    if (outcome === 'improved') {
      this.wait = 0;
      return;
    }
    this.wait += 1;
    if (this.wait < this.patience) return;
    this.wait = 0;
    const old = this.learn.lr;
    const lr = Math.max(old * this.factor, this.minLr);
    // At the floor already: nothing to reduce (and lr must stay > 0 for the optimizer).
    if (lr < old && lr > 0) {
      this.learn.lr = lr;
      this.reductions.push({ epoch: ctx.epoch, lr });
    }
  }
}
