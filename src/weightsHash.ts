import { createHash } from 'node:crypto';
import type * as tf from '@tensorflow/tfjs';

/**
 * sha256 of all of a model's weights, in the model's weight order, each as its raw
 * float32 bytes preceded by its name and shape — so two runs are "the same" exactly when
 * every bit of every weight is.
 */
export function weightsSha256(model: tf.LayersModel): string {
  const hash = createHash('sha256');
  for (const w of model.weights) {
    const t = w.read();
    hash.update(`${w.originalName}:${t.shape.join('x')};`);
    const data = t.dataSync() as Float32Array;
    hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return hash.digest('hex');
}
