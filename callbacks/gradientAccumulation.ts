import * as tf from '@tensorflow/tfjs';
import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';

export interface GradientAccumulationOptions {
  /** Batches whose gradients make one optimizer step (≥ 1). Default 2. */
  nBatches?: number;
  /**
   * What the step uses: 'sum' (default), the group's gradients added up, as the loop's
   * skipZero accumulates them; or 'mean', that sum divided by the group's size.
   */
  reduce?: 'sum' | 'mean';
}

/**
 * Accumulates gradients over `nBatches` batches and steps once, with the loop's own controls:
 * the batches in between return `{ skipStep }` from backwardEnd and `{ skipZero }` from
 * stepEnd, so the engine keeps their gradients and adds the next batch's. The step comes at
 * every n-th batch and at the last batch of the epoch (a shorter group).
 *
 * `reduce: 'sum'` (the default) steps on the **sum** of the group's gradients, exactly what the
 * loop accumulated: accumulation over n batches is one step on the summed gradient. The losses
 * here are batch means, so that sum is n times the gradient of one n-times-larger batch (fastai
 * v1's AccumulateScheduler and v2's GradientAccumulation rescale to get the large batch's);
 * divide the lr by n for the same step size, or choose `reduce: 'mean'`, which divides the sum
 * by the group's own size (a shorter last group by its size).
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

  constructor(options: GradientAccumulationOptions = {}) {
    super();
    const n = options.nBatches ?? 2;
    if (!Number.isInteger(n) || n < 1) {
      throw new ConfigError(`GradientAccumulation: nBatches must be an integer ≥ 1 (batches per optimizer step), got ${String(n)}`);
    }
    const reduce = options.reduce ?? 'sum';
    if (reduce !== 'sum' && reduce !== 'mean') {
      throw new ConfigError(`GradientAccumulation: reduce must be 'sum' or 'mean', got ${JSON.stringify(reduce)}`);
    }
    this.nBatches = n;
    this.reduce = reduce;
  }

  onTrainBegin(): void {
    this.count = 0;
    this.accumulating = false;
  }

  onBackwardEnd(ctx: TrainContext) {
    this.count += 1;
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
}
