import * as tf from '@tensorflow/tfjs';
import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';

export interface GradientClippingOptions {
  /** The largest global norm the step may use (> 0). Default 1. */
  maxNorm?: number;
}

/**
 * Global-norm gradient clipping at backwardEnd (TensorFlow's `clip_by_global_norm`, fastai's
 * GradientClip with the global norm): with `norm = sqrt(Σ over every gradient of Σ g²)`,
 * every gradient is multiplied by `scale = min(1, maxNorm / norm)`, so above maxNorm the
 * direction is kept and the new global norm is maxNorm, and at or below it the values are
 * unchanged (× exactly 1). A non-finite norm gives scale 1 too: scaling cannot repair it
 * (TerminateOnNaN stops such runs). The scale is computed on the device: no batch waits for
 * a value to come back from it.
 *
 * Only batches that will step are clipped: when a hook that ran earlier at this backwardEnd
 * asked for skipStep or cancelBatch (`ctx.controls`), the gradients are left alone. With
 * GradientAccumulation (order −20) that means the clip applies to the gradient a step uses,
 * not to partial sums. (A skipStep *guard* fires as the stage is left, after this hook: it
 * cannot be seen here.)
 *
 * `lastNorm` and `clippedSteps` are read back from the device at each epochEnd and at
 * trainEnd, not per batch.
 */
export class GradientClipping extends Callback {
  // After GradientAccumulation (-20), before anything else that reads the gradients at backwardEnd.
  override order = -10;
  // It changes what a step is: lrFind keeps it, so the lr found is for this training.
  override readonly shapesTraining = true;
  readonly maxNorm: number;
  /** Global norm, before clipping, of the last gradients clipped or checked (null before the first); up to date at each epochEnd and trainEnd. */
  lastNorm: number | null = null;
  /** Steps whose gradients were scaled down this run; up to date at each epochEnd and trainEnd. */
  clippedSteps = 0;
  /** The latest norm, still on the device. */
  #norm: tf.Scalar | null = null;
  /** Clipped steps since the last read-back, counted on the device. */
  #pending: tf.Scalar | null = null;
  // maxNorm is an option, never restored from a state.
  protected override readonly stateKeys: readonly string[] = ['lastNorm', 'clippedSteps'];

  constructor(options: GradientClippingOptions = {}) {
    super();
    const maxNorm = options.maxNorm ?? 1;
    if (typeof maxNorm !== 'number' || !(maxNorm > 0) || !Number.isFinite(maxNorm)) {
      throw new ConfigError(`GradientClipping: maxNorm must be a positive finite number, got ${String(maxNorm)}`);
    }
    this.maxNorm = maxNorm;
  }

  onTrainBegin(): void {
    this.release();
    this.lastNorm = null;
    this.clippedSteps = 0;
  }

  onBackwardEnd(ctx: TrainContext): void {
    if (ctx.controls.skipStep || ctx.controls.cancelBatch) return;
    const grads = this.learn.grads;
    if (!grads) return;
    const entries = Object.entries(grads);
    if (entries.length === 0) return;
    const maxNorm = this.maxNorm;
    const { clipped, norm, pending } = tf.tidy(() => {
      const norm = tf.sqrt(tf.addN(entries.map(([, g]) => tf.sum(tf.square(g))))) as tf.Scalar;
      const clips = tf.logicalAnd(tf.isFinite(norm), tf.greater(norm, maxNorm));
      // 1 exactly when not clipping: x · 1 is x for every float, NaN and ±Infinity included.
      const scale = tf.where(clips, tf.div(maxNorm, norm), tf.onesLike(norm));
      const out: tf.NamedTensorMap = {};
      for (const [name, g] of entries) out[name] = tf.mul(g, scale);
      const counted = tf.cast(clips, 'float32');
      return { clipped: out, norm, pending: (this.#pending ? tf.add(this.#pending, counted) : counted) as tf.Scalar };
    });
    this.#norm?.dispose();
    this.#pending?.dispose();
    this.#norm = norm;
    this.#pending = pending;
    // The learner's setter frees the gradients this replaces.
    this.learn.grads = clipped;
  }

  onEpochEnd(): void {
    this.readBack();
  }

  onTrainEnd(): void {
    // Also after an error: the device tensors are freed on every path.
    this.release();
  }

  /** A checkpoint taken mid-epoch includes the steps counted on the device since the last epochEnd. */
  override getState(): Record<string, unknown> {
    this.readBack();
    return super.getState();
  }

  /** Brings lastNorm and clippedSteps up to date: one read from the device. */
  private readBack(): void {
    if (this.#norm === null || this.#pending === null) return;
    const values = tf.tidy(() => tf.stack([this.#norm!, this.#pending!]).dataSync());
    this.lastNorm = values[0]!;
    this.clippedSteps += values[1]!;
    this.#pending.dispose();
    this.#pending = null;
  }

  private release(): void {
    this.readBack();
    this.#norm?.dispose();
    this.#norm = null;
  }
}
