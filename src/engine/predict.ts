/**
 * `Learner.predict`: the model's output for one sample or a batch, given as a tensor, a
 * nested array or a flat typed array, in inference mode (see evaluate.ts for why that
 * leaves the model and every random stream untouched).
 *
 * How an input is read, with S the shape of one sample (the model's input shape without
 * its batch axis):
 *   - a tensor or nested array of shape S is one sample; of shape [n, ...S], a batch of n;
 *   - a flat typed array (Float32Array, Float64Array, Int32Array, Uint8Array) of size(S)
 *     values is one sample; of n·size(S) values (n > 1), a batch of n. It is reshaped, so
 *     S must have no unknown dimension.
 * Anything else is a DataError saying which shape was expected.
 */
import * as tf from '@tensorflow/tfjs';
import { DataError } from '../errors.js';
import { forward } from './forward.js';

/** What `predict` accepts. */
export type PredictInput = tf.Tensor | Float32Array | Float64Array | Int32Array | Uint8Array | NestedArray;
export type NestedArray = readonly number[] | readonly NestedArray[];

export interface Prediction {
  /**
   * The model's output: for one sample its output without a batch axis (e.g. [10] class
   * probabilities), for a batch [n, ...]. The caller owns it: dispose it when done.
   */
  output: tf.Tensor;
  /**
   * For a classifier (a learner trained with a cross-entropy loss): the most probable class
   * of each sample (argmax of the output), one entry per sample — `classes[0]` for one
   * sample. `null` for any other model.
   */
  classes: number[] | null;
  /** Whether the input was read as a batch (true) or as one sample (false). */
  batch: boolean;
}

/** Runs `model` on `x` (one sample or a batch, see above); `classifier` adds the argmax classes. */
export function predict(model: tf.LayersModel, x: PredictInput, classifier: boolean): Prediction {
  const sample = model.inputs[0]!.shape.slice(1);
  const { input, batch } = toBatch(x, sample);
  try {
    const output = tf.tidy(() => {
      const out = forward(model, input, false);
      return batch ? out : tf.squeeze(out, [0]);
    });
    let classes: number[] | null = null;
    if (classifier && output.rank === (batch ? 2 : 1) && output.shape.at(-1)! >= 2) {
      const idx = tf.argMax(output, -1);
      classes = Array.from(idx.dataSync());
      idx.dispose();
    }
    return { output, classes, batch };
  } finally {
    if (input !== x) input.dispose();
  }
}

const fmt = (s: ReadonlyArray<number | null>) => `[${s.map((d) => d ?? '?').join(', ')}]`;

/** `x` as a float32 batch [n, ...sample], and whether it was a batch already. */
function toBatch(x: PredictInput, sample: ReadonlyArray<number | null>): { input: tf.Tensor; batch: boolean } {
  const expected = `one sample of shape ${fmt(sample)} or a batch of shape [n, ${sample.map((d) => d ?? '?').join(', ')}]`;
  if (x instanceof tf.Tensor) {
    if (x.isDisposed) throw new DataError('predict: the input tensor is disposed; pass a tensor that is still alive');
    if (x.dtype === 'string' || x.dtype === 'complex64') {
      throw new DataError(`predict: the input has dtype ${x.dtype}; pass numbers (a float32 tensor)`);
    }
    const batch = readShape(x.shape, sample, expected);
    if (batch && x.dtype === 'float32') return { input: x, batch };
    return {
      input: tf.tidy(() => {
        const f = x.dtype === 'float32' ? x : tf.cast(x, 'float32');
        return batch ? f : tf.expandDims(f, 0);
      }),
      batch,
    };
  }
  if (ArrayBuffer.isView(x) && !(x instanceof DataView)) {
    const flat = x as Float32Array | Float64Array | Int32Array | Uint8Array;
    if (sample.some((d) => d === null)) {
      throw new DataError(
        `predict: a flat typed array cannot be reshaped to the model's sample shape ${fmt(sample)} (it has an unknown dimension); ` +
          'pass a tensor or a nested array',
      );
    }
    const per = (sample as number[]).reduce((a, d) => a * d, 1);
    if (flat.length === 0 || flat.length % per !== 0) {
      throw new DataError(
        `predict: a flat typed array of ${flat.length} values is neither one sample nor a batch: the model takes samples of ` +
          `shape ${fmt(sample)} (${per} values each); pass ${per} values, or a multiple of ${per} for a batch`,
      );
    }
    const n = flat.length / per;
    const values = flat instanceof Float32Array ? flat : Float32Array.from(flat);
    return { input: tf.tensor(values, [n, ...(sample as number[])], 'float32'), batch: n > 1 };
  }
  if (Array.isArray(x)) {
    const { shape, values } = flattenNested(x as NestedArray);
    const batch = readShape(shape, sample, expected);
    return { input: tf.tensor(values, batch ? shape : [1, ...shape], 'float32'), batch };
  }
  throw new DataError(`predict: the input must be a tf.Tensor, a (nested) array of numbers or a typed array, got ${describe(x)}`);
}

/** Is `shape` a batch ([n, ...sample], true) or one sample (false)? Throws when it is neither. */
function readShape(shape: readonly number[], sample: ReadonlyArray<number | null>, expected: string): boolean {
  const fits = (s: readonly number[]) => s.length === sample.length && s.every((d, i) => sample[i] === null || sample[i] === d);
  if (fits(shape)) return false;
  if (shape.length === sample.length + 1 && shape[0]! > 0 && fits(shape.slice(1))) return true;
  throw new DataError(`predict: the input has shape ${fmt(shape)}, but the model takes ${expected}`);
}

/** The shape and values of a rectangular nested array of numbers; ragged or non-numeric input is a DataError. */
function flattenNested(a: NestedArray): { shape: number[]; values: Float32Array } {
  const shape: number[] = [];
  let cur: unknown = a;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    if (cur.length === 0) throw new DataError('predict: the input array has an empty dimension; pass at least one value');
    cur = cur[0];
  }
  const values = new Float32Array(shape.reduce((p, d) => p * d, 1));
  let pos = 0;
  const walk = (node: unknown, depth: number, path: string): void => {
    if (depth === shape.length) {
      if (typeof node !== 'number') throw new DataError(`predict: input${path} is ${describe(node)}, expected a number`);
      values[pos++] = node;
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[depth]) {
      throw new DataError(
        `predict: input${path} ${Array.isArray(node) ? `has length ${node.length}` : `is ${describe(node)}`}, but the array's ` +
          `first elements give it shape ${fmt(shape)}: the input is ragged; every sample must have the same shape`,
      );
    }
    node.forEach((child: unknown, i: number) => walk(child, depth + 1, `${path}[${i}]`));
  };
  walk(a, 0, '');
  return { shape, values };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return `a ${v.constructor?.name ?? 'object'}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}
