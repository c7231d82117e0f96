/**
 * Loss functions, and the check that a dataset's labels fit the model's output before any
 * training starts. The losses also refuse mismatched shapes themselves: tfjs would broadcast
 * e.g. a [batch] target against a [batch, 1] prediction into a [batch, batch] difference and
 * train on nonsense without a word.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError, DataError } from './errors.js';

export type LossName = 'categoricalCrossentropy' | 'sparseCategoricalCrossentropy' | 'meanSquaredError';
export type LossFn = (yPred: tf.Tensor, yTrue: tf.Tensor) => tf.Scalar;

export const LOSS_NAMES: readonly LossName[] = [
  'categoricalCrossentropy',
  'sparseCategoricalCrossentropy',
  'meanSquaredError',
];

/** Probabilities are clipped to [EPS, 1 − EPS] so log(0) never yields Infinity (Keras's ε). */
const EPS = 1e-7;

const fmtShape = (s: readonly number[]) => `[${s.join(', ')}]`;

function shapesEqual(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** −Σ yTrue·log(p) over the class axis, averaged over everything else. `yTrue` is float32. */
function crossentropy(yPred: tf.Tensor, oneHot: tf.Tensor): tf.Scalar {
  const logP = tf.log(tf.clipByValue(yPred, EPS, 1 - EPS));
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, logP), -1))) as tf.Scalar;
}

function toFloat(t: tf.Tensor): tf.Tensor {
  return t.dtype === 'float32' ? t : tf.cast(t, 'float32');
}

/** Mean over the batch of −Σ yTrue·log(clip(yPred)); yPred holds probabilities (softmax output). */
export function categoricalCrossentropy(yPred: tf.Tensor, yTrue: tf.Tensor): tf.Scalar {
  if (!shapesEqual(yPred.shape, yTrue.shape)) {
    throw new DataError(
      `categoricalCrossentropy needs one-hot targets shaped like the predictions ${fmtShape(yPred.shape)}, ` +
        `got targets of shape ${fmtShape(yTrue.shape)}` +
        (yTrue.rank === yPred.rank - 1 ? "; for integer class labels use labels: 'sparse' with sparseCategoricalCrossentropy" : ''),
    );
  }
  return tf.tidy(() => crossentropy(yPred, toFloat(yTrue)));
}

/** Categorical cross-entropy with integer class labels of shape [batch] (or [batch, 1]). */
export function sparseCategoricalCrossentropy(yPred: tf.Tensor, yTrue: tf.Tensor): tf.Scalar {
  const outer = yPred.shape.slice(0, -1);
  const ok =
    shapesEqual(yTrue.shape, outer) || (shapesEqual(yTrue.shape.slice(0, -1), outer) && yTrue.shape.at(-1) === 1);
  if (!ok) {
    throw new DataError(
      `sparseCategoricalCrossentropy needs integer class labels of shape ${fmtShape(outer)} for predictions of ` +
        `shape ${fmtShape(yPred.shape)}, got labels of shape ${fmtShape(yTrue.shape)}` +
        (shapesEqual(yTrue.shape, yPred.shape) ? '; these look one-hot — use categoricalCrossentropy' : ''),
    );
  }
  const classes = yPred.shape.at(-1)!;
  return tf.tidy(() => {
    // cast truncates, which is exact for the integral floats a label file holds.
    const labels = tf.cast(tf.reshape(yTrue, outer), 'int32');
    return crossentropy(yPred, tf.oneHot(labels, classes));
  });
}

/** Mean over all elements of (yPred − yTrue)². A [batch] target is accepted for a [batch, 1] output. */
export function meanSquaredError(yPred: tf.Tensor, yTrue: tf.Tensor): tf.Scalar {
  if (!shapesEqual(yPred.shape, yTrue.shape) && yPred.size !== yTrue.size) {
    throw new DataError(
      `meanSquaredError needs targets shaped like the predictions ${fmtShape(yPred.shape)}, ` +
        `got ${fmtShape(yTrue.shape)}; reshape the targets or change the model's output layer`,
    );
  }
  return tf.tidy(() => {
    // Same size, different shape ([b] vs [b, 1]): reshape rather than let tfjs broadcast.
    const t = shapesEqual(yPred.shape, yTrue.shape) ? yTrue : tf.reshape(yTrue, yPred.shape);
    return tf.mean(tf.squaredDifference(toFloat(yPred), toFloat(t)));
  });
}

const LOSSES: Record<LossName, LossFn> = {
  categoricalCrossentropy,
  sparseCategoricalCrossentropy,
  meanSquaredError,
};

/** A loss by name, or a custom function (named after the function, or 'customLoss'). */
export function resolveLoss(loss: LossName | LossFn): { name: string; fn: LossFn } {
  if (typeof loss === 'function') return { name: loss.name || 'customLoss', fn: loss };
  if (typeof loss === 'string' && Object.hasOwn(LOSSES, loss)) return { name: loss, fn: LOSSES[loss] };
  throw new ConfigError(
    `unknown loss ${typeof loss === 'string' ? `'${loss}'` : `of type ${typeof loss}`}; ` +
      `use one of ${LOSS_NAMES.map((n) => `'${n}'`).join(', ')}, or pass a function (yPred, yTrue) => tf.Scalar`,
  );
}

/**
 * Checks, before training, that targets fit the model's output under `lossName`. Shapes are
 * per sample (no batch axis): a 10-class classifier has outputShape [10]. Custom losses (any
 * other name) are not checked. With `labels`, the smallest and largest class label (a
 * DataLoader's `labelRange()`), sparse labels must also lie in [0, classes): tf.oneHot turns
 * any other label into a row of zeros, whose loss is 0, so it would train without a word.
 */
export function checkTargets(
  lossName: string,
  outputShape: number[],
  targetShape: number[],
  targetDtype: tf.DataType | string,
  labels: { min: number; max: number; integral?: boolean } | null = null,
): void {
  const out = fmtShape(outputShape);
  const tgt = fmtShape(targetShape);
  if (!(LOSS_NAMES as readonly string[]).includes(lossName)) return;
  if (targetDtype === 'string' || targetDtype === 'complex64') {
    throw new DataError(`${lossName} needs numeric targets, got ${targetDtype} targets; encode them as numbers first`);
  }
  const isLabel = targetShape.length === 0 || (targetShape.length === 1 && targetShape[0] === 1);
  const classes = outputShape.length === 1 ? outputShape[0]! : -1;

  if (lossName === 'categoricalCrossentropy' || lossName === 'sparseCategoricalCrossentropy') {
    if (classes < 2) {
      throw new DataError(
        `${lossName} needs a model output of class probabilities, shape [classes] with at least 2 classes, ` +
          `but the model outputs ${out}; end the model in a softmax layer with one unit per class, ` +
          "or use meanSquaredError for regression",
      );
    }
  }
  if (lossName === 'categoricalCrossentropy') {
    if (isLabel) {
      throw new DataError(
        `categoricalCrossentropy needs one-hot targets of shape ${out} but the targets are class labels of shape ` +
          `${tgt}; use labels: 'sparse' with sparseCategoricalCrossentropy, or one-hot encode the labels`,
      );
    }
    if (!shapesEqual(outputShape, targetShape)) {
      throw new DataError(
        `one-hot targets of shape ${tgt} do not match the model output ${out} (${classes} classes); ` +
          'make the last layer have one unit per class, or fix the one-hot width of the labels',
      );
    }
    return;
  }
  if (lossName === 'sparseCategoricalCrossentropy') {
    if (!isLabel) {
      const hint = shapesEqual(outputShape, targetShape)
        ? 'these look one-hot — use categoricalCrossentropy, or labels: \'sparse\' to get class indices'
        : 'targets must be one integer class index per sample';
      throw new DataError(
        `sparseCategoricalCrossentropy needs integer class labels of shape [] or [1] per sample for a model ` +
          `output of ${out}, got targets of shape ${tgt}; ${hint}`,
      );
    }
    if (targetDtype === 'bool') {
      throw new DataError('sparseCategoricalCrossentropy needs integer class labels, got bool targets; cast them to int32');
    }
    if (labels && labels.integral === false) {
      throw new DataError(
        'sparseCategoricalCrossentropy needs whole-number class labels, but the targets hold fractions; ' +
          'round or relabel them (0 … classes − 1), or use one-hot targets with categoricalCrossentropy',
      );
    }
    if (labels && (labels.min < 0 || labels.max >= classes)) {
      const bad = labels.min < 0 ? labels.min : labels.max;
      throw new DataError(
        `sparseCategoricalCrossentropy: the targets hold the class label ${bad}, but the model outputs ${out} ` +
          `(${classes} classes, labels 0 … ${classes - 1}); relabel the classes from 0, or give the last layer one unit per class`,
      );
    }
    return;
  }
  // meanSquaredError: [] and [1] are interchangeable (the loss reshapes same-size targets).
  const same =
    shapesEqual(outputShape, targetShape) ||
    (outputShape.reduce((a, d) => a * d, 1) === 1 && targetShape.reduce((a, d) => a * d, 1) === 1);
  if (!same) {
    throw new DataError(
      `meanSquaredError needs targets shaped like the model output ${out}, got targets of shape ${tgt}; ` +
        'change the output layer to match the targets, or reshape the targets',
    );
  }
}
