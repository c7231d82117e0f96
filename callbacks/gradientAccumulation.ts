import * as tf from '@tensorflow/tfjs';
import { Callback } from '../src/callback.js';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';

type Learn = TrainContext['learn'];

/** Learners whose current batch only accumulates (GradientClipping clips only real steps). */
const accumulatingOnly = new WeakSet<Learn>();

/**
 * Does the current batch of `learn` skip its optimizer step to accumulate gradients?
 * Read at backwardEnd by callbacks with a higher order than GradientAccumulation's.
 */
export function isAccumulatingOnly(learn: Learn): boolean {
  return accumulatingOnly.has(learn);
}

export interface GradientAccumulationOptions {
  /** Batches whose gradients make one optimizer step (≥ 1). Default 2. */
  nBatches?: number;
}

/**
 * Accumulates gradients over `nBatches` batches and steps once with their **mean**, with the
 * loop's own controls: the batches in between return `{ skipStep }` from backwardEnd and
 * `{ skipZero }` from stepEnd, so the engine keeps their gradients and adds the next batch's.
 * The step comes at every n-th batch and at the last batch of the epoch (a shorter group,
 * averaged over its own size).
 *
 * Mean, not sum: the losses are batch means, so averaging n batches' gradients is the gradient
 * of one batch n times as large, and the lr needs no change. fastai v1's AccumulateScheduler
 * divides by the number of samples (with a summed loss), which comes to the same; fastai v2's
 * GradientAccumulation scales the loss likewise. For the sum instead, multiply lr by n.
 *
 * The count runs across epochs: a group cut short by `stopEpoch` continues in the next epoch.
 */
export class GradientAccumulation extends Callback {
  // Before gradient clipping and anything else at backwardEnd: they see the averaged gradient.
  override order = -20;
  readonly nBatches: number;
  /** Batches in the running sum, this one included once its backwardEnd ran. */
  count = 0;
  /** Does the current batch only accumulate (no step)? */
  accumulating = false;
  #restored = false;

  constructor(options: GradientAccumulationOptions = {}) {
    super();
    const n = options.nBatches ?? 2;
    if (!Number.isInteger(n) || n < 1) {
      throw new ConfigError(`GradientAccumulation: nBatches must be an integer ≥ 1 (batches per optimizer step), got ${String(n)}`);
    }
    this.nBatches = n;
  }

  onTrainBegin(): void {
    if (this.#restored) {
      this.#restored = false;
      return;
    }
    this.count = 0;
    this.accumulating = false;
  }

  onBackwardEnd(ctx: TrainContext) {
    this.count += 1;
    const lastOfEpoch = ctx.batchIndex === ctx.nBatches - 1;
    if (this.count < this.nBatches && !lastOfEpoch) {
      this.accumulating = true;
      accumulatingOnly.add(this.learn);
      return { skipStep: true };
    }
    this.accumulating = false;
    accumulatingOnly.delete(this.learn);
    const grads = this.learn.grads;
    const k = this.count;
    this.count = 0;
    if (grads && k > 1) {
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

  onTrainEnd(): void {
    accumulatingOnly.delete(this.learn);
  }

  override setState(state: Record<string, unknown>): void {
    super.setState(state);
    this.#restored = true;
  }

  jumpToEpoch(): void {
    // A resume from a saved machine snapshot skips trainBegin; the restored count stands.
    this.#restored = false;
  }
}
