import * as tf from '@tensorflow/tfjs';
import { Callback } from '../src/callback.js';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import { isAccumulatingOnly } from './gradientAccumulation.js';

export interface GradientClippingOptions {
  /** The largest global norm the step may use (> 0). Default 1. */
  maxNorm?: number;
}

/**
 * Global-norm gradient clipping at backwardEnd (TensorFlow's `clip_by_global_norm`, fastai's
 * GradientClip with the global norm): with `norm = sqrt(Σ over every gradient of Σ g²)`,
 * when `norm > maxNorm` every gradient is scaled by `maxNorm / norm` (so the direction is
 * kept and the new global norm is maxNorm); otherwise the gradients are left untouched.
 * A non-finite norm is left alone too: scaling cannot repair it (TerminateOnNaN stops such runs).
 *
 * With GradientAccumulation, only the batches that step are clipped, so the clip applies
 * to the averaged gradient, not to partial sums.
 */
export class GradientClipping extends Callback {
  // After GradientAccumulation (-20), before anything else that reads the gradients at backwardEnd.
  override order = -10;
  readonly maxNorm: number;
  /** Global norm of the last gradients seen, before clipping (null before the first). */
  lastNorm: number | null = null;
  /** Steps whose gradients were clipped, this run. */
  clippedSteps = 0;

  constructor(options: GradientClippingOptions = {}) {
    super();
    const maxNorm = options.maxNorm ?? 1;
    if (typeof maxNorm !== 'number' || !(maxNorm > 0) || !Number.isFinite(maxNorm)) {
      throw new ConfigError(`GradientClipping: maxNorm must be a positive finite number, got ${String(maxNorm)}`);
    }
    this.maxNorm = maxNorm;
  }

  onTrainBegin(): void {
    this.lastNorm = null;
    this.clippedSteps = 0;
  }

  onBackwardEnd(_ctx: TrainContext): void {
    const grads = this.learn.grads;
    if (!grads || isAccumulatingOnly(this.learn)) return;
    const tensors = Object.values(grads);
    if (tensors.length === 0) return;
    const normT = tf.tidy(() => tf.sqrt(tf.addN(tensors.map((g) => tf.sum(tf.square(g))))));
    const norm = normT.dataSync()[0]!;
    normT.dispose();
    this.lastNorm = norm;
    if (!(norm > this.maxNorm) || !Number.isFinite(norm)) return;
    const scale = this.maxNorm / norm;
    // The learner's setter frees the gradients this replaces.
    this.learn.grads = tf.tidy(() => {
      const clipped: tf.NamedTensorMap = {};
      for (const [name, g] of Object.entries(grads)) clipped[name] = g.mul(scale);
      return clipped;
    });
    this.clippedSteps += 1;
  }
}
