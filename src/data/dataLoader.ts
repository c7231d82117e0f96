import * as tf from '@tensorflow/tfjs';
import { ConfigError, DataError } from '../errors.js';
import { Rng } from '../rng.js';

/**
 * Serves a dataset held in memory as batches of fresh tensors, in an order that depends
 * only on (seed, epoch). Nothing about the order is carried from one epoch to the next,
 * so a run resumed at epoch N sees exactly the batches the original run saw.
 */

export interface DataLoaderOptions {
  /** Samples per batch; the last batch of an epoch may be smaller unless `dropLast`. */
  batchSize: number;
  /** Reorder samples every epoch (default false). */
  shuffle?: boolean;
  /** Seed of the per-epoch shuffles, an integer in [0, 2^32) (default 0). */
  seed?: number;
  /** Leave out the last batch when it would be smaller than `batchSize` (default false). */
  dropLast?: boolean;
}

export interface ArrayOptions extends DataLoaderOptions {
  /** Shape of ONE x sample (no batch dimension), e.g. [28, 28, 1]. Required when flat x is not one row per y sample. */
  xShape?: number[];
  /** Shape of ONE y sample (no batch dimension), e.g. [10] for a flat one-hot Float32Array. */
  yShape?: number[];
  /** Force the dtype of y; by default 1-D integer y becomes int32 sparse labels, anything else float32. */
  yDtype?: 'float32' | 'int32';
}

export interface Batch {
  /** float32, [size, ...sampleShape]. */
  x: tf.Tensor;
  /** targetDtype, [size, ...targetShape]. */
  y: tf.Tensor;
  size: number;
}

export interface DataLoaderState {
  seed: number;
  epoch: number;
}

/** Arbitrarily nested arrays of numbers, e.g. number[][][] for a list of 2-D samples. */
export type NestedNumbers = readonly number[] | readonly NestedNumbers[];
export type XArray = Float32Array | Float64Array | Int32Array | Uint8Array | NestedNumbers;
export type YArray = Float32Array | Float64Array | Int32Array | Uint8Array | NestedNumbers;

type TargetArray = Float32Array | Int32Array;

const LOADER_KEYS = ['batchSize', 'shuffle', 'seed', 'dropLast'] as const;
const ARRAY_KEYS = [...LOADER_KEYS, 'xShape', 'yShape', 'yDtype'] as const;
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
// Rows shorter than this are copied element by element: a subarray view per row costs more
// than the copy itself for scalar labels or a handful of features.
const SUBARRAY_MIN_ROW = 16;

export class DataLoader {
  /** Number of samples. */
  readonly length: number;
  readonly batchSize: number;
  /** Batches per epoch: ceil(length / batchSize), or floor with `dropLast`. */
  readonly nBatches: number;
  /** Shape of one x sample, e.g. [28, 28, 1]. */
  readonly sampleShape: number[];
  /** Shape of one y sample: [] for sparse integer labels, [10] for one-hot. */
  readonly targetShape: number[];
  readonly targetDtype: 'float32' | 'int32';
  readonly shuffle: boolean;
  readonly dropLast: boolean;

  private readonly x: Float32Array;
  private readonly y: TargetArray;
  private readonly xRow: number;
  private readonly yRow: number;
  private seed: number;
  private epoch = 0;
  /** Sample order of the current epoch; null is the identity; undefined means not computed yet. */
  private order: Uint32Array | null | undefined = undefined;
  /** labelRange's answer, once computed (the data never changes). */
  private range: { min: number; max: number; integral: boolean } | null | undefined = undefined;

  private constructor(
    x: Float32Array,
    sampleShape: number[],
    y: TargetArray,
    targetShape: number[],
    opts: Required<DataLoaderOptions>,
  ) {
    this.x = x;
    this.y = y;
    this.sampleShape = sampleShape;
    this.targetShape = targetShape;
    this.targetDtype = y instanceof Int32Array ? 'int32' : 'float32';
    this.xRow = product(sampleShape);
    this.yRow = product(targetShape);
    this.length = x.length / this.xRow;
    this.batchSize = opts.batchSize;
    this.shuffle = opts.shuffle;
    this.dropLast = opts.dropLast;
    this.seed = opts.seed;
    this.nBatches = opts.dropLast ? Math.floor(this.length / opts.batchSize) : Math.ceil(this.length / opts.batchSize);
    if (this.nBatches === 0) {
      throw new ConfigError(
        `dropLast with batchSize ${opts.batchSize} leaves no batch from ${this.length} samples: ` +
          `use a batchSize of at most ${this.length} or set dropLast to false`,
      );
    }
  }

  /**
   * A loader over in-memory arrays. A Float32Array x (and an Int32Array/Float32Array y that
   * needs no conversion) is used as is, not copied: the loader never writes to it, and the
   * caller must not modify it while the loader is in use. Uint8Array x is converted to
   * float32 without scaling. Nested arrays are flattened once.
   */
  static fromArrays(x: XArray, y: YArray, opts: ArrayOptions): DataLoader {
    const o = checkLoaderOptions(opts, ARRAY_KEYS);
    const xShape = opts.xShape === undefined ? undefined : checkShape(opts.xShape, 'xShape');
    const yShape = opts.yShape === undefined ? undefined : checkShape(opts.yShape, 'yShape');
    const yDtype = opts.yDtype;
    if (yDtype !== undefined && yDtype !== 'float32' && yDtype !== 'int32') {
      throw new ConfigError(`yDtype must be 'float32' or 'int32', got ${describe(yDtype)}`);
    }

    const xIn = inspect(x, 'x');
    const yIn = inspect(y, 'y');

    // y first: a flat x without xShape takes its sample count from y.
    let ny: number;
    let targetShape: number[];
    if (yIn.nested) {
      ny = yIn.shape[0]!;
      targetShape = yIn.shape.slice(1);
      if (yShape !== undefined) {
        requireSameSize(yShape, targetShape, 'y', yIn.shape);
        targetShape = yShape;
      }
    } else if (yShape !== undefined) {
      ny = splitFlat(yIn.length, yShape, 'y');
      targetShape = yShape;
    } else {
      ny = yIn.length;
      targetShape = [];
    }
    if (product(targetShape) === 0) {
      throw new DataError(`y samples have no values (y has shape [${yIn.shape.join(', ')}]): each sample needs at least one target value`);
    }

    let nx: number;
    let sampleShape: number[];
    if (xIn.nested) {
      nx = xIn.shape[0]!;
      sampleShape = xIn.shape.slice(1);
      if (product(sampleShape) === 0) {
        throw new DataError(`x samples have no values (x has shape [${xIn.shape.join(', ')}]): each sample needs at least one value`);
      }
      if (xShape !== undefined) {
        requireSameSize(xShape, sampleShape, 'x', xIn.shape);
        sampleShape = xShape;
      }
    } else if (xShape !== undefined) {
      nx = splitFlat(xIn.length, xShape, 'x');
      sampleShape = xShape;
    } else {
      if (xIn.length % ny !== 0) {
        throw new DataError(
          `flat x has ${xIn.length} values, which do not split evenly into the ${ny} samples of y: ` +
            `pass xShape (the shape of one sample) or check that x and y hold the same samples`,
        );
      }
      nx = ny;
      sampleShape = [xIn.length / ny];
    }
    if (nx !== ny) {
      throw new DataError(`x has ${nx} samples but y has ${ny}: x and y need exactly one entry per sample`);
    }

    const xData = toFloat32X(x, xIn, product(sampleShape));
    const yData = toTarget(y, yIn, targetShape, yDtype);
    return new DataLoader(xData, sampleShape, yData, targetShape, o);
  }

  /**
   * A loader over tensors of shape [n, ...sampleShape] and [n, ...targetShape]. The data is
   * read once (dataSync) and copied; the caller's tensors are neither kept nor disposed.
   * A 1-D int32 y is sparse labels and stays int32; any other y becomes float32 (so the
   * int32 output of tf.oneHot gives float one-hot targets, as a loss expects).
   */
  static fromTensors(x: tf.Tensor, y: tf.Tensor, opts: DataLoaderOptions): DataLoader {
    const o = checkLoaderOptions(opts, LOADER_KEYS);
    if (!(x instanceof tf.Tensor) || !(y instanceof tf.Tensor)) {
      throw new DataError(`fromTensors needs two tf.Tensor arguments, got ${describe(x)} and ${describe(y)}: use fromArrays for arrays`);
    }
    if (x.isDisposed || y.isDisposed) {
      throw new DataError(`fromTensors got a disposed ${x.isDisposed ? 'x' : 'y'} tensor: pass tensors that are still alive`);
    }
    for (const [t, name] of [[x, 'x'], [y, 'y']] as const) {
      if (t.rank === 0) throw new DataError(`${name} is a scalar: its first dimension must be the sample count`);
      if (t.dtype !== 'float32' && t.dtype !== 'int32' && t.dtype !== 'bool') {
        throw new DataError(`${name} has dtype ${t.dtype}: pass float32, int32 or bool tensors`);
      }
      if (t.shape[0] === 0) throw new DataError(`${name} has 0 samples: pass at least one sample`);
    }
    if (x.shape[0] !== y.shape[0]) {
      throw new DataError(`x has ${x.shape[0]} samples but y has ${y.shape[0]}: x and y need exactly one entry per sample`);
    }
    const sampleShape = x.shape.slice(1);
    if (product(sampleShape) === 0) {
      throw new DataError(`x samples have no values (x has shape [${x.shape.join(', ')}]): each sample needs at least one value`);
    }
    const targetShape = y.shape.slice(1);
    if (product(targetShape) === 0) {
      throw new DataError(`y samples have no values (y has shape [${y.shape.join(', ')}]): each sample needs at least one target value`);
    }
    // dataSync may hand back the backend's own storage, so copy before holding on to it.
    const xRaw = x.dataSync();
    const xData = xRaw instanceof Float32Array ? xRaw.slice() : Float32Array.from(xRaw as ArrayLike<number>);
    checkFinite(xData, 'x', product(sampleShape));
    const yRaw = y.dataSync() as ArrayLike<number>;
    let yData: TargetArray;
    if (y.dtype === 'int32' && targetShape.length === 0) yData = Int32Array.from(yRaw);
    else {
      yData = Float32Array.from(yRaw);
      checkFinite(yData, 'y', product(targetShape));
    }
    return new DataLoader(xData, sampleShape, yData, targetShape, o);
  }

  /**
   * Fix the sample order for `epoch`: the identity without shuffle, else a permutation that
   * depends only on (seed, epoch), so any epoch can be reproduced without replaying earlier ones.
   */
  orderEpoch(epoch: number): void {
    if (!Number.isSafeInteger(epoch) || epoch < 0) {
      throw new ConfigError(`orderEpoch needs a non-negative integer epoch, got ${describe(epoch)}`);
    }
    this.epoch = epoch;
    this.order = undefined;
  }

  /** @deprecated The old name of `orderEpoch` (it orders the batches of `epoch`; it starts nothing). */
  startEpoch(epoch: number): void {
    this.orderEpoch(epoch);
  }

  /** Batch `index` of the current epoch as fresh tensors; the caller disposes them. */
  batch(index: number): Batch {
    if (!Number.isInteger(index) || index < 0 || index >= this.nBatches) {
      throw new ConfigError(
        `batch index ${describe(index)} is out of range: this loader has ${this.nBatches} batches per epoch (0 … ${this.nBatches - 1})`,
      );
    }
    let order = this.order;
    if (order === undefined) order = this.order = this.computeOrder();
    const start = index * this.batchSize;
    const size = Math.min(this.batchSize, this.length - start);
    const xs = gather(this.x, new Float32Array(size * this.xRow), this.xRow, order, start, size);
    const ys = gather(
      this.y,
      this.y instanceof Int32Array ? new Int32Array(size * this.yRow) : new Float32Array(size * this.yRow),
      this.yRow,
      order,
      start,
      size,
    );
    return {
      x: tf.tensor(xs, [size, ...this.sampleShape], 'float32'),
      y: tf.tensor(ys, [size, ...this.targetShape], this.targetDtype),
      size,
    };
  }

  /**
   * The smallest and largest target value, and whether all are whole numbers, when each
   * sample has one target value (shape [] or [1], any dtype: class labels may come as
   * float32 too), else null. One pass the first time, cached after: `fit` checks it against
   * the model's number of classes before training (a label ≥ classes, or 2.5, one-hot
   * encodes to a row of zeros and would train silently with zero loss).
   */
  labelRange(): { min: number; max: number; integral: boolean } | null {
    if (this.range === undefined) {
      const y = this.y;
      if (this.yRow !== 1 || y.length === 0) this.range = null;
      else {
        let min = y[0]!;
        let max = y[0]!;
        let integral = true;
        for (let i = 0; i < y.length; i++) {
          const v = y[i]!;
          if (v < min) min = v;
          else if (v > max) max = v;
          if (integral && !Number.isInteger(v)) integral = false;
        }
        this.range = { min, max, integral };
      }
    }
    return this.range && { ...this.range };
  }

  getState(): DataLoaderState {
    return { seed: this.seed, epoch: this.epoch };
  }

  /** Restore a state from getState (e.g. from a checkpoint): same seed and epoch, same batches. */
  setState(s: DataLoaderState): void {
    if (typeof s !== 'object' || s === null) {
      throw new ConfigError(`setState needs an object { seed, epoch } as returned by getState, got ${describe(s)}`);
    }
    const seed = checkSeed(s.seed, 'setState: seed');
    if (!Number.isSafeInteger(s.epoch) || s.epoch < 0) {
      throw new ConfigError(`setState: epoch must be a non-negative integer, got ${describe(s.epoch)}`);
    }
    this.seed = seed;
    this.orderEpoch(s.epoch);
  }

  private computeOrder(): Uint32Array | null {
    if (!this.shuffle) return null;
    const perm = new Uint32Array(this.length);
    for (let i = 0; i < perm.length; i++) perm[i] = i;
    return Rng.derive(this.seed, this.epoch).shuffle(perm);
  }
}

/** Copy rows order[start … start+size) (or contiguous rows when order is null) of src into out. */
function gather<T extends TargetArray>(
  src: T,
  out: T,
  row: number,
  order: Uint32Array | null,
  start: number,
  size: number,
): T {
  if (order === null) {
    out.set(src.subarray(start * row, (start + size) * row));
  } else if (row >= SUBARRAY_MIN_ROW) {
    for (let i = 0; i < size; i++) {
      const from = order[start + i]! * row;
      out.set(src.subarray(from, from + row), i * row);
    }
  } else {
    for (let i = 0; i < size; i++) {
      const from = order[start + i]! * row;
      const to = i * row;
      for (let j = 0; j < row; j++) out[to + j] = src[from + j]!;
    }
  }
  return out;
}

function checkLoaderOptions(opts: DataLoaderOptions, known: readonly string[]): Required<DataLoaderOptions> {
  if (typeof opts !== 'object' || opts === null) {
    throw new ConfigError(`DataLoader needs an options object with at least batchSize, got ${describe(opts)}`);
  }
  for (const key of Object.keys(opts)) {
    if (!known.includes(key)) {
      throw new ConfigError(`unknown DataLoader option '${key}': the known options are ${known.join(', ')}`);
    }
  }
  const { batchSize, shuffle = false, seed = 0, dropLast = false } = opts;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new ConfigError(`batchSize must be a positive integer, got ${describe(batchSize)}`);
  }
  if (typeof shuffle !== 'boolean') throw new ConfigError(`shuffle must be true or false, got ${describe(shuffle)}`);
  if (typeof dropLast !== 'boolean') throw new ConfigError(`dropLast must be true or false, got ${describe(dropLast)}`);
  return { batchSize, shuffle, seed: checkSeed(seed, 'seed'), dropLast };
}

function checkSeed(seed: unknown, what: string): number {
  // Seeds are used modulo 2^32; rejecting the rest keeps two different seeds from silently aliasing.
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new ConfigError(`${what} must be an integer in [0, 4294967295], got ${describe(seed)}`);
  }
  return seed;
}

function checkShape(shape: unknown, name: string): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
    throw new ConfigError(`${name} must be an array of positive integers (the shape of one sample), got ${describe(shape)}`);
  }
  return [...(shape as number[])];
}

interface Inspected {
  nested: boolean;
  /** Full shape of a nested array (first dimension = samples). */
  shape: number[];
  /** Number of values of a flat input. */
  length: number;
}

function inspect(a: unknown, name: string): Inspected {
  const isTyped = ArrayBuffer.isView(a) && !(a instanceof DataView);
  if (!isTyped && !Array.isArray(a)) {
    throw new DataError(`${name} must be a typed array or a (nested) array of numbers, got ${describe(a)}`);
  }
  const length = (a as ArrayLike<unknown>).length;
  if (length === 0) throw new DataError(`${name} has 0 samples: pass at least one sample`);
  if (isTyped || !Array.isArray((a as unknown[])[0])) return { nested: false, shape: [length], length };
  const shape: number[] = [];
  let cur: unknown = a;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    if (cur.length === 0) break;
    cur = cur[0];
  }
  return { nested: true, shape, length: product(shape) };
}

/** Number of samples in a flat array of `length` values whose samples have shape `shape`. */
function splitFlat(length: number, shape: number[], name: string): number {
  const per = product(shape);
  if (length % per !== 0) {
    throw new DataError(
      `${name} has ${length} values, not a multiple of ${name}Shape [${shape.join(', ')}] (${per} values per sample): ` +
        `${name}Shape is the shape of ONE sample, without the batch dimension`,
    );
  }
  return length / per;
}

function requireSameSize(given: number[], actual: number[], name: string, full: number[]): void {
  if (product(given) !== product(actual)) {
    throw new DataError(
      `${name}Shape [${given.join(', ')}] has ${product(given)} values per sample but ${name} samples have ` +
        `${product(actual)} (${name} has shape [${full.join(', ')}]): ${name}Shape is the shape of ONE sample, ` +
        `and its size must match`,
    );
  }
}

/** x as float32; `row` (values per sample) only locates a bad value in error messages. */
function toFloat32X(x: XArray, info: Inspected, row: number): Float32Array {
  if (x instanceof Float32Array) {
    checkFinite(x, 'x', row);
    return x;
  }
  if (x instanceof Uint8Array) return Float32Array.from(x);
  if (x instanceof Int32Array || x instanceof Float64Array) {
    const out = Float32Array.from(x);
    checkFinite(out, 'x', row, x);
    return out;
  }
  const out = new Float32Array(info.length);
  if (info.nested) flattenInto(x as NestedNumbers, info.shape, out, 'x');
  else copyNumbers(x as readonly unknown[], out, 'x');
  checkFinite(out, 'x', row, info.nested ? undefined : (x as readonly number[]));
  return out;
}

function toTarget(y: YArray, info: Inspected, targetShape: number[], yDtype: 'float32' | 'int32' | undefined): TargetArray {
  let values: Float64Array | Float32Array | Int32Array | Uint8Array;
  if (ArrayBuffer.isView(y)) values = y as Float64Array | Float32Array | Int32Array | Uint8Array;
  else {
    values = new Float64Array(info.length);
    if (info.nested) flattenInto(y as NestedNumbers, info.shape, values, 'y');
    else copyNumbers(y as readonly unknown[], values, 'y');
  }
  const row = product(targetShape);
  const integerTyped = values instanceof Int32Array || values instanceof Uint8Array;
  let dtype = yDtype;
  if (dtype === undefined) {
    // One integer per sample is a class index (sparse labels); anything else — one-hot,
    // multi-hot, regression — is what losses expect as float32, even if stored as integers.
    const sparse = targetShape.length === 0;
    dtype = sparse && (integerTyped || firstNonInt32(values) < 0) ? 'int32' : 'float32';
  }
  if (dtype === 'int32') {
    if (values instanceof Int32Array) return values;
    if (!integerTyped) {
      const bad = firstNonInt32(values);
      if (bad >= 0) {
        throw new DataError(
          `yDtype is 'int32' but y value ${values[bad]} at flat index ${bad} (sample ${Math.floor(bad / row)}) ` +
            `is not a 32-bit integer: pass integer labels or use yDtype 'float32'`,
        );
      }
    }
    return Int32Array.from(values);
  }
  if (values instanceof Float32Array) {
    checkFinite(values, 'y', row);
    return values;
  }
  const out = Float32Array.from(values);
  checkFinite(out, 'y', row, values);
  return out;
}

function firstNonInt32(a: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    if (!Number.isInteger(v) || v < INT32_MIN || v > INT32_MAX) return i;
  }
  return -1;
}

function copyNumbers(src: readonly unknown[], out: Float32Array | Float64Array, name: string): void {
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    if (typeof v !== 'number') {
      throw new DataError(`${name}[${i}] is ${describe(v)}, expected a number: ${name} must hold only numbers`);
    }
    out[i] = v;
  }
}

/** Flatten a nested array of the given full shape into out, rejecting ragged or non-numeric entries. */
function flattenInto(a: NestedNumbers, shape: number[], out: Float32Array | Float64Array, name: string): void {
  const last = shape.length - 1;
  const path: number[] = [];
  const where = () => `${name}${path.map((i) => `[${i}]`).join('')}`;
  let pos = 0;
  const walk = (node: unknown, depth: number): void => {
    if (!Array.isArray(node)) {
      throw new DataError(
        `${where()} is ${describe(node)} but an array of length ${shape[depth]} was expected ` +
          `(${name} has shape [${shape.join(', ')}] from its first elements): ${name} is ragged; every sample must have the same shape`,
      );
    }
    if (node.length !== shape[depth]) {
      throw new DataError(
        `${where()} has length ${node.length} but ${name}${'[0]'.repeat(depth)} has length ${shape[depth]}: ` +
          `${name} is ragged; every sample must have the same shape`,
      );
    }
    if (depth === last) {
      for (let i = 0; i < node.length; i++) {
        const v: unknown = node[i];
        if (typeof v !== 'number') {
          path.push(i);
          throw new DataError(
            `${where()} is ${describe(v)}, expected a number` +
              (Array.isArray(v) ? `: ${name} is ragged; every sample must have the same shape` : ''),
          );
        }
        out[pos++] = v;
      }
      return;
    }
    for (let i = 0; i < node.length; i++) {
      path.push(i);
      walk(node[i], depth + 1);
      path.pop();
    }
  };
  walk(a, 0);
}

/**
 * Arrays the library built itself and that are finite by construction (e.g. MNIST pixels
 * scaled from bytes), so fromArrays can skip its full scan — ~35 ms for the MNIST training
 * set, which would otherwise be paid again on every cached `mnist()` call.
 */
const knownFinite = new WeakSet<Float32Array>();

/** @internal For built-in datasets only; deliberately not re-exported from the package. */
export function markFinite(a: Float32Array): Float32Array {
  knownFinite.add(a);
  return a;
}

/** Throw on the first NaN/±Infinity; `original` gives the value before float32 conversion, for the message. */
function checkFinite(a: Float32Array, name: string, row: number, original?: ArrayLike<number>): void {
  if (knownFinite.has(a)) return;
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    // v - v is 0 for every finite v and NaN for NaN and ±Infinity: one test, no call.
    if (v - v !== 0) {
      const o = original ? original[i]! : v;
      const overflow = Number.isFinite(o) ? ` (${o} is beyond the float32 range ±3.4e38)` : '';
      throw new DataError(
        `${name} has a non-finite value ${o}${overflow} at flat index ${i} (sample ${Math.floor(i / row)}): ` +
          `remove or replace NaN/Infinity values before training`,
      );
    }
  }
}

function product(shape: readonly number[]): number {
  let p = 1;
  for (const d of shape) p *= d;
  return p;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array [${v.slice(0, 4).map(describe).join(', ')}${v.length > 4 ? ', …' : ''}]`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'undefined') return String(v);
  if (typeof v === 'object') return `a ${v.constructor?.name ?? 'object'}`;
  return typeof v;
}
