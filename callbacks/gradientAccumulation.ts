import * as tf from '@tensorflow/tfjs';
import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';

export interface GradientAccumulationOptions {
  /** Batches whose gradients make one optimizer step (≥ 1). Default 2. */
  nBatches?: number;
  /**
   * What the step uses: 'mean' (default, as fastai), the group's summed gradients divided by
   * the group's size; or 'sum', the sum itself, as the loop's skipZero accumulates it.
   */
  reduce?: 'sum' | 'mean';
}

/**
 * Accumulates gradients over `nBatches` batches and steps once, with the loop's own controls:
 * the batches in between return `{ skipStep }` from backwardEnd and `{ skipZero }` from
 * stepEnd, so the engine keeps their gradients and adds the next batch's. The step comes at
 * every n-th batch and at the last batch of the epoch (a shorter group).
 *
 * `reduce: 'mean'` (the default) steps on the **mean** of the group's gradients: the losses are
 * batch means, so that is the gradient of one n-times-larger batch, what fastai's
 * GradientAccumulation steps on, and the lr means what it means without accumulation. A
 * shorter group (the epoch's last) is divided by its own size. `reduce: 'sum'` steps on the
 * sum, n times larger: SGD's effective lr is then n·lr.
 *
 * A group is made of the batches that contribute a gradient. A batch cancelled by any
 * callback or guard (`cancelBatch`, from any train stage, before or after this callback's
 * backwardEnd hook) and a batch with `skipBackward` contribute none: they do not count toward
 * the group, and the group they fell in is completed by the next batches that do. The loop
 * drops a cancelled batch's own gradients and keeps what the group had kept, so every step is
 * on exactly the gradients of the contributing batches since the previous step — at most n,
 * never two groups merged. When the epoch's last batch is cancelled, nothing steps there: its
 * group continues in the next epoch, like one cut short by `stopEpoch` (and is dropped,
 * unstepped, if the run ends first).
 *
 * The count runs across epochs: a group cut short by `stopEpoch` continues in the next epoch.
 * It is reset at trainBegin; a resumed run's state is restored after that (see `fit`'s
 * callbackStates), so the reset never wipes it.
 */
export class GradientAccumulation extends Callback {
  // Before gradient clipping and anything else at backwardEnd: they see the reduced gradient.
  override order = -20;
  // It changes what a step is: lrFind keeps it, so the lr found is for this training.
  override readonly shapesTraining = true;
  readonly nBatches: number;
  readonly reduce: 'sum' | 'mean';
  /** Batches in the running sum, this one included once its backwardEnd ran. */
  count = 0;
  /** Does the current batch only accumulate (no step)? */
  accumulating = false;
  // nBatches and reduce are options, never restored from a state.
  protected override readonly stateKeys: readonly string[] = ['count', 'accumulating'];
  /**
   * The count as it was before this batch's backwardEnd, to put back at batchEnd if a later
   * hook or a guard cancelled the batch after this callback had counted it. Lives from
   * backwardEnd to batchEnd of one batch, so it is no run state.
   */
  #beforeThisBatch: { count: number; accumulating: boolean } | null = null;

  constructor(options: GradientAccumulationOptions = {}) {
    super();
    const n = options.nBatches ?? 2;
    if (!Number.isInteger(n) || n < 1) {
      throw new ConfigError(`GradientAccumulation: nBatches must be an integer ≥ 1 (batches per optimizer step), got ${String(n)}`);
    }
    const reduce = options.reduce ?? 'mean';
    if (reduce !== 'sum' && reduce !== 'mean') {
      throw new ConfigError(`GradientAccumulation: reduce must be 'sum' or 'mean', got ${JSON.stringify(reduce)}`);
    }
    this.nBatches = n;
    this.reduce = reduce;
  }

  onTrainBegin(): void {
    this.count = 0;
    this.accumulating = false;
    this.#beforeThisBatch = null;
  }

  onBackwardEnd(ctx: TrainContext) {
    // Cancelled by an earlier hook of this stage: the loop drops the batch, nothing to count.
    if (ctx.controls.cancelBatch) return;
    this.#beforeThisBatch = { count: this.count, accumulating: this.accumulating };
    // skipBackward: this batch has no gradient of its own, so it is no member of the group.
    if (!ctx.controls.skipBackward) this.count += 1;
    const lastOfEpoch = ctx.batchIndex === ctx.nBatches - 1;
    if (this.count < this.nBatches && !lastOfEpoch) {
      this.accumulating = true;
      return { skipStep: true };
    }
    this.accumulating = false;
    const k = this.count;
    this.count = 0;
    const grads = this.learn.grads;
    if (this.reduce === 'mean' && grads && k > 1) {
      // The learner's setter frees the summed tensors this replaces.
      this.learn.grads = tf.tidy(() => {
        const mean: tf.NamedTensorMap = {};
        for (const [name, g] of Object.entries(grads)) mean[name] = g.div(k);
        return mean;
      });
    }
  }

  onStepEnd() {
    if (this.accumulating) return { skipZero: true };
  }

  onBatchEnd(ctx: TrainContext): void {
    // Cancelled after this callback counted it (a later hook, or a guard read as backwardEnd
    // was left): the batch is not part of the group after all.
    if (ctx.train && ctx.controls.cancelBatch && this.#beforeThisBatch) {
      this.count = this.#beforeThisBatch.count;
      this.accumulating = this.#beforeThisBatch.accumulating;
    }
    this.#beforeThisBatch = null;
  }
}
