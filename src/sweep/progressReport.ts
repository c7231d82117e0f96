/**
 * The callback through which a run of a sweep reports where it is (BullMQ's job progress):
 * epoch, iteration and smoothed train loss (the caller adds the validation metrics from the
 * Recorder, which a resumed run restores, so they cover the whole run). At most every
 * `everyMs` between train batches (a Redis write per batch would cost more than a tiny
 * batch), and always at epoch end and train end.
 *
 * It has no run state (the checkpoint restores the Recorder, which is where the history is),
 * and it never returns anything from a hook: the report is sent, not awaited.
 */
import { Callback } from '../loop/callback.js';
import type { TrainContext } from '../loop/context.js';

export interface RunProgress {
  stage: 'train' | 'epochEnd' | 'trainEnd';
  /** 0-based, as the Recorder and the epoch table. */
  epoch: number;
  nEpochs: number;
  /** Train batches done in the run. */
  iteration: number;
  batchIndex: number;
  nBatches: number;
  smoothLoss: number | null;
}

export class SweepProgress extends Callback {
  protected override readonly stateKeys: readonly string[] = [];
  order = 100; // after the Recorder and the other callbacks of the stage have seen it
  #last = 0;

  constructor(
    private readonly report: (p: RunProgress) => void,
    private readonly everyMs = 250,
  ) {
    super();
  }

  onTrainBegin(): void {
    this.#last = 0;
  }

  onBatchEnd(ctx: TrainContext): void {
    if (!ctx.train) return;
    const now = performance.now();
    if (now - this.#last < this.everyMs) return;
    this.#last = now;
    this.send('train', ctx);
  }

  onEpochEnd(ctx: TrainContext): void {
    this.send('epochEnd', ctx);
  }

  onTrainEnd(ctx: TrainContext): void {
    this.send('trainEnd', ctx);
  }

  private send(stage: RunProgress['stage'], ctx: TrainContext): void {
    this.report({
      stage,
      epoch: ctx.epoch,
      nEpochs: ctx.nEpochs,
      iteration: ctx.iteration,
      batchIndex: ctx.batchIndex,
      nBatches: ctx.nBatches,
      smoothLoss: Number.isFinite(ctx.smoothLoss) ? ctx.smoothLoss : null,
    });
  }
}
