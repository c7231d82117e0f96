import { Callback } from '../src/loop/callback.js';
import type { TrainContext } from '../src/loop/context.js';

/**
 * Stops training as soon as a train batch's loss is NaN or ±Infinity (fastai's
 * TerminateOnNaNCallback, checked after the batch). fastai cancels the fit outright; here
 * the batch's batchEnd returns `{ stopTraining: true, skipValidate: true }`: no more batches,
 * no validation pass over weights that are now garbage, then epochEnd and trainEnd, and fit
 * resolves with status 'stopped'.
 */
export class TerminateOnNaN extends Callback {
  // Early, as fastai's (order -9): callbacks after it at batchEnd still see the batch.
  override order = -9;
  /** Where the run was stopped: epoch and iteration of the batch, and its loss. */
  stoppedAt: { epoch: number; iteration: number; loss: number } | null = null;
  protected override readonly stateKeys: readonly string[] = ['stoppedAt'];

  onTrainBegin(): void {
    this.stoppedAt = null;
  }

  onBatchEnd(ctx: TrainContext) {
    if (!ctx.train || ctx.lastLossValue === null || Number.isFinite(ctx.lastLossValue)) return;
    this.stoppedAt = { epoch: ctx.epoch, iteration: ctx.iteration, loss: ctx.lastLossValue };
    return { stopTraining: true, skipValidate: true };
  }
}
