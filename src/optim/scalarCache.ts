/**
 * Hyper-parameter scalars kept between steps, re-made only when a value changes: with fixed
 * hyper-parameters a step uploads no new scalar for them. Scalars that change every step
 * (Adam's debiased step size) are not worth caching and are made inside the step's tidy.
 */
import * as tf from '@tensorflow/tfjs';

export class ScalarCache {
  private entries = new Map<string, { value: number; tensor: tf.Scalar }>();

  /** The scalar for `key` holding `value`; kept (outlives any tidy) until it changes or `clear`. */
  get(key: string, value: number): tf.Scalar {
    const e = this.entries.get(key);
    // Object.is: -0 and 0 are different scalars; NaN never reaches here (hp is checked first).
    if (e && Object.is(e.value, value) && !e.tensor.isDisposed) return e.tensor;
    e?.tensor.dispose();
    const tensor = tf.keep(tf.scalar(value, 'float32'));
    this.entries.set(key, { value, tensor });
    return tensor;
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    for (const e of this.entries.values()) e.tensor.dispose();
    this.entries.clear();
  }
}
