import * as tf from '@tensorflow/tfjs';
import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import { sampleBeta } from '../src/random/beta.js';

export interface MixUpOptions {
  /** The Beta(α, α) parameter (> 0). Default 0.4, as fastai. */
  alpha?: number;
}

/**
 * MixUp (Zhang et al. 2018), as fastai's: at batchBegin of every train batch, for each
 * sample i of the batch
 *
 *   λᵢ ~ Beta(α, α),  λᵢ ← max(λᵢ, 1 − λᵢ)        (the sample itself keeps the larger share)
 *   xᵢ ← λᵢ·xᵢ + (1 − λᵢ)·x_π(i)
 *   yᵢ ← λᵢ·yᵢ + (1 − λᵢ)·y_π(i)
 *
 * with π a random permutation of the batch. One λ per sample, as fastai v1 and v2 draw them.
 * Every draw comes from `learn.rng` (the λs first, then π), so a run is reproducible from its
 * seed and a resume continues the same stream. Validation batches are left alone.
 *
 * Targets are mixed linearly, which needs one-hot or probability targets (with
 * categoricalCrossentropy, or meanSquaredError): integer class labels cannot be mixed, and
 * are refused with a ConfigError.
 */
export class MixUp extends Callback {
  // It changes what a step is: lrFind keeps it, so the lr found is for this training.
  override readonly shapesTraining = true;
  readonly alpha: number;
  #lambdas: number[] = [];
  #permutation: number[] = [];
  // No state of its own: alpha is an option, the λs describe the last batch only, and the
  // random stream is the learner's (`learn.rng`).
  protected override readonly stateKeys: readonly string[] = [];

  constructor(options: MixUpOptions = {}) {
    super();
    const alpha = options.alpha ?? 0.4;
    if (typeof alpha !== 'number' || !(alpha > 0) || !Number.isFinite(alpha)) {
      throw new ConfigError(`MixUp: alpha must be a positive finite number (0.4 is fastai's default), got ${String(alpha)}`);
    }
    this.alpha = alpha;
  }

  /** The λs of the last mixed batch, per sample. */
  get lastLambdas(): readonly number[] {
    return this.#lambdas;
  }

  /** The partner of each sample in the last mixed batch: sample i was mixed with sample π(i). */
  get lastPermutation(): readonly number[] {
    return this.#permutation;
  }

  onTrainBegin(): void {
    const { loss, data } = this.learn;
    if (loss.name === 'sparseCategoricalCrossentropy' || data.train.targetDtype === 'int32') {
      throw sparseLabels();
    }
  }

  onBatchBegin(ctx: TrainContext): void {
    if (!ctx.train) return;
    const x = ctx.lastInput;
    const y = ctx.lastTarget;
    if (!x || !y) return;
    if (y.dtype === 'int32') throw sparseLabels();
    const n = x.shape[0]!;
    const rng = this.learn.rng;
    const lambdas = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const l = sampleBeta(rng, this.alpha, this.alpha);
      lambdas[i] = Math.max(l, 1 - l);
    }
    const perm = new Int32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    rng.shuffle(perm);

    const [mixedX, mixedY] = tf.tidy(() => {
      const permT = tf.tensor1d(perm, 'int32');
      const mix = (t: tf.Tensor) => {
        const lam = tf.tensor(lambdas, [n, ...t.shape.slice(1).map(() => 1)]);
        return tf.add(tf.mul(t, lam), tf.mul(tf.gather(t, permT), tf.sub(1, lam)));
      };
      return [mix(x), mix(y)];
    });
    // The engine frees the batch's own tensors and whatever ctx holds after batchEnd.
    ctx.lastInput = mixedX!;
    ctx.lastTarget = mixedY!;
    this.#lambdas = Array.from(lambdas);
    this.#permutation = Array.from(perm);
  }
}

function sparseLabels() {
  return new ConfigError(
    'MixUp mixes targets linearly and needs one-hot (or probability) targets; integer class labels cannot be mixed: ' +
      "give one-hot labels (e.g. DataLoader with y of shape [n, classes]) and loss 'categoricalCrossentropy'",
  );
}
