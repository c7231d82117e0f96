/**
 * Inference over a whole DataLoader, outside the training loop: the loss and metrics of a
 * dataset (`Learner.validate`) and every prediction beside its target (`Learner.getPreds`).
 *
 * Nothing here changes what a later fit does. The model runs in inference mode through
 * `forward(…, false)`: dropout passes its input through without drawing from its random
 * stream, batch normalization uses its moving statistics and does not update them. The
 * loader's batches are read in the order of its current epoch, without starting an epoch:
 * a shuffled loader's order is a pure function of (seed, epoch), so reading it consumes no
 * random state and the next fit shuffles exactly as it would have.
 */
import * as tf from '@tensorflow/tfjs';
import type { DataLoader } from '../data/dataLoader.js';
import { ConfigError } from '../errors.js';
import type { LossFn } from '../losses.js';
import type { Metric } from '../metrics.js';
import { forward } from './forward.js';

/**
 * `{ validLoss, <metric name>: value, … }` over every batch of `loader`: each batch's loss
 * and metrics are means over the batch, weighted here by the batch's size, so the result is
 * the mean over all samples the loader serves (the last, smaller batch counts for what it
 * holds), exactly as the loop's validation pass computes it.
 */
export function evaluateLoader(
  model: tf.LayersModel,
  loader: DataLoader,
  lossFn: LossFn,
  metrics: readonly Metric[],
): Record<string, number> {
  const sums = new Float64Array(1 + metrics.length);
  let seen = 0;
  for (let i = 0; i < loader.nBatches; i++) {
    // One tidy per batch frees the batch, the output and every intermediate; one read per batch.
    let size = 0;
    const values = tf.tidy(() => {
      const { x, y, size: n } = loader.batch(i);
      size = n;
      const out = forward(model, x, false);
      const parts = [
        scalarOf(lossFn(out, y), 'the loss'),
        ...metrics.map((m) => scalarOf(m.fn(out, y), `metric ${m.name}`)),
      ];
      // float32 for all: one stack, one read (a metric may compute in int32 or bool).
      return tf.stack(parts.map((t) => t.cast('float32'))).dataSync();
    });
    for (let k = 0; k < sums.length; k++) sums[k]! += values[k]! * size;
    seen += size;
  }
  const result: Record<string, number> = { validLoss: sums[0]! / seen };
  metrics.forEach((m, k) => (result[m.name] = sums[k + 1]! / seen));
  return result;
}

/**
 * The model's output for every sample of `loader`, and the targets beside them, each
 * concatenated over the batches in loader order (`preds[i]` is the prediction for
 * `targets[i]`). The caller owns both tensors.
 */
export function predictLoader(model: tf.LayersModel, loader: DataLoader): { preds: tf.Tensor; targets: tf.Tensor } {
  const preds: tf.Tensor[] = [];
  const targets: tf.Tensor[] = [];
  try {
    for (let i = 0; i < loader.nBatches; i++) {
      const { x, y } = loader.batch(i);
      targets.push(y);
      try {
        preds.push(tf.tidy(() => forward(model, x, false)));
      } finally {
        x.dispose();
      }
    }
    return { preds: tf.concat(preds, 0), targets: tf.concat(targets, 0) };
  } finally {
    // concat copies (a single part too), so the per-batch parts can always go.
    tf.dispose([...preds, ...targets]);
  }
}

/**
 * A loss or metric gives one number per batch: anything else is a ConfigError naming it (`what`).
 * Shared by validate() and fit's validation, so both refuse the same things in the same words.
 */
export function checkOneNumber(t: unknown, what: string): asserts t is tf.Tensor {
  if (!(t instanceof tf.Tensor) || t.size !== 1) {
    const got = t instanceof tf.Tensor ? `a tensor of shape [${t.shape.join(', ')}]` : String(t);
    throw new ConfigError(`${what} must return one number per batch (a tf.Scalar, the batch mean), got ${got}`);
  }
}

/** The single value of a loss or metric as a rank-0 tensor. */
function scalarOf(t: tf.Tensor, what: string): tf.Tensor {
  checkOneNumber(t, what);
  return t.rank === 0 ? t : tf.reshape(t, []);
}
