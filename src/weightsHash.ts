import { createHash } from 'node:crypto';
import type * as tf from '@tensorflow/tfjs';
import { stableParamNames } from './models/paramNames.js';

/**
 * sha256 of all of a model's weights, in the model's weight order, each as its raw
 * float32 bytes preceded by its stable name (src/models/paramNames.ts) and shape — so two runs
 * are "the same" exactly when every bit of every weight is. Not tfjs's own names: they come
 * from process-wide counters, so two identical models built in one process would differ.
 */
export function weightsSha256(model: tf.LayersModel): string {
  const hash = createHash('sha256');
  const names = stableParamNames(model);
  for (const w of model.weights) {
    const t = w.read();
    hash.update(`${names.get(t as tf.Variable) ?? w.originalName}:${t.shape.join('x')};`);
    const data = t.dataSync() as Float32Array;
    hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return hash.digest('hex');
}
