import { Callback } from '../src/callback.js';
import type { TrainContext } from '../src/loop/context.js';

export interface EpochRecord {
  epoch: number;
  /** Mean of the raw train losses of the epoch's batches. */
  trainLoss: number;
  /** Validation loss and metrics, when the epoch had a validation pass. */
  valid: Record<string, number> | null;
  seconds: number;
}

/**
 * Records the run, as fastai's always-on Recorder: per train batch the lr, momentum, raw
 * and smoothed loss (the lr is the one the step of that batch used); per epoch the train and
 * validation losses and metrics.
 */
export class Recorder extends Callback {
  // Records after the callbacks that set hyper-parameters or change the loss.
  override order = 50;
  iterations: number[] = [];
  lrs: number[] = [];
  moms: number[] = [];
  losses: number[] = [];
  smoothLosses: number[] = [];
  epochs: EpochRecord[] = [];
  private epochStart = 0;
  private lossSum = 0;
  private lossCount = 0;
  private validMetrics: Record<string, number> | null = null;

  onTrainBegin(): void {
    this.iterations = [];
    this.lrs = [];
    this.moms = [];
    this.losses = [];
    this.smoothLosses = [];
    this.epochs = [];
  }

  onEpochBegin(): void {
    this.epochStart = performance.now();
    this.lossSum = 0;
    this.lossCount = 0;
    this.validMetrics = null;
  }

  onBatchEnd(ctx: TrainContext): void {
    if (!ctx.train) return;
    const loss = ctx.lastLossValue ?? Number.NaN;
    this.iterations.push(ctx.iteration);
    this.lrs.push(this.learn.lr);
    this.moms.push(this.learn.momentum);
    this.losses.push(loss);
    this.smoothLosses.push(ctx.smoothLoss);
    if (Number.isFinite(loss)) {
      this.lossSum += loss;
      this.lossCount += 1;
    }
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
    });
  }

  /** Resuming at `epoch`: forget what a previous run recorded from that epoch on. */
  jumpToEpoch(epoch: number): void {
    this.epochs = this.epochs.filter((e) => e.epoch < epoch);
  }
}
