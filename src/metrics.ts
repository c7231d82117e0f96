/**
 * Batch metrics. Each returns the mean over the batch, so the loop can weight batches by
 * their size to get an exact epoch value.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError, DataError } from './errors.js';

export type MetricName = 'accuracy' | 'errorRate';

export interface Metric {
  name: string;
  /** Mean over the batch. */
  fn: (yPred: tf.Tensor, yTrue: tf.Tensor) => tf.Scalar;
}

export const METRIC_NAMES: readonly MetricName[] = ['accuracy', 'errorRate'];

const fmtShape = (s: readonly number[]) => `[${s.join(', ')}]`;

/** 1 where the predicted class is the true one, else 0, shaped like yPred without its class axis. */
function hits(yPred: tf.Tensor, yTrue: tf.Tensor): tf.Tensor {
  const outer = yPred.shape.slice(0, -1);
  const classes = yPred.shape.at(-1) ?? 0;
  if (classes < 2) {
    throw new DataError(
      `accuracy needs class scores of shape [batch, classes] with at least 2 classes, got predictions of shape ` +
        `${fmtShape(yPred.shape)}`,
    );
  }
  const predicted = tf.argMax(yPred, -1);
  // Same shape as the predictions → one-hot (whatever its dtype); otherwise class indices,
  // [batch] or [batch, 1], int32 or integral floats.
  if (yTrue.shape.length === yPred.shape.length && yTrue.shape.every((d, i) => d === yPred.shape[i])) {
    return tf.cast(tf.equal(predicted, tf.argMax(yTrue, -1)), 'float32');
  }
  if (yTrue.size !== predicted.size) {
    throw new DataError(
      `accuracy needs one-hot targets of shape ${fmtShape(yPred.shape)} or class labels of shape ` +
        `${fmtShape(outer)}, got ${fmtShape(yTrue.shape)}`,
    );
  }
  const labels = tf.cast(tf.reshape(yTrue, outer), 'int32');
  return tf.cast(tf.equal(predicted, labels), 'float32');
}

export const accuracy: Metric = {
  name: 'accuracy',
  fn: (yPred, yTrue) => tf.tidy(() => tf.mean(hits(yPred, yTrue))),
};

export const errorRate: Metric = {
  name: 'errorRate',
  fn: (yPred, yTrue) => tf.tidy(() => tf.sub(1, tf.mean(hits(yPred, yTrue)))),
};

const METRICS: Record<MetricName, Metric> = { accuracy, errorRate };

/** A metric by name, or a custom `{ name, fn }` passed through after a shape check. */
export function resolveMetric(m: MetricName | Metric): Metric {
  if (typeof m === 'string') {
    if (Object.hasOwn(METRICS, m)) return METRICS[m as MetricName];
    throw new ConfigError(
      `unknown metric '${m}'; use one of ${METRIC_NAMES.map((n) => `'${n}'`).join(', ')}, ` +
        'or pass { name, fn: (yPred, yTrue) => tf.Scalar }',
    );
  }
  if (typeof m === 'object' && m !== null && typeof m.name === 'string' && m.name !== '' && typeof m.fn === 'function') {
    return m;
  }
  throw new ConfigError(
    `a metric must be one of ${METRIC_NAMES.map((n) => `'${n}'`).join(', ')} or an object ` +
      '{ name: string, fn: (yPred, yTrue) => tf.Scalar }',
  );
}
