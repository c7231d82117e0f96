/**
 * Ingest: turning what a user hands `DataLoader.fromArrays` / `fromTensors` into the two flat
 * arrays a loader batches from, with every check on the way (option types and keys, shapes,
 * sample counts, ragged or non-numeric entries, NaN/Infinity, integer labels). Each mistake is
 * a ConfigError or DataError that says what was wrong and what to do. Nothing here batches
 * or orders samples (src/data/order.ts does).
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError, DataError } from '../errors.js';

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

/** Arbitrarily nested arrays of numbers, e.g. number[][][] for a list of 2-D samples. */
export type NestedNumbers = readonly number[] | readonly NestedNumbers[];
export type XArray = Float32Array | Float64Array | Int32Array | Uint8Array | NestedNumbers;
export type YArray = Float32Array | Float64Array | Int32Array | Uint8Array | NestedNumbers;

export type TargetArray = Float32Array | Int32Array;

/** A dataset as a loader holds it: flat values, one row per sample. */
export interface Ingested {
  x: Float32Array;
  sampleShape: number[];
  y: TargetArray;
  targetShape: number[];
}

export const LOADER_KEYS = ['batchSize', 'shuffle', 'seed', 'dropLast'] as const;
export const ARRAY_KEYS = [...LOADER_KEYS, 'xShape', 'yShape', 'yDtype'] as const;
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** fromArrays' data: shapes worked out (y first), values converted and checked. */
export function ingestArrays(x: XArray, y: YArray, opts: ArrayOptions): Ingested {
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
  return { x: xData, sampleShape, y: yData, targetShape };
}

/** fromTensors' data: read once (dataSync) and copied; the caller's tensors are neither kept nor disposed. */
export function ingestTensors(x: tf.Tensor, y: tf.Tensor): Ingested {
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
  return { x: xData, sampleShape, y: yData, targetShape };
}

export function checkLoaderOptions(opts: DataLoaderOptions, known: readonly string[]): Required<DataLoaderOptions> {
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

export function checkSeed(seed: unknown, what: string): number {
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

export function product(shape: readonly number[]): number {
  let p = 1;
  for (const d of shape) p *= d;
  return p;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array [${v.slice(0, 4).map(describe).join(', ')}${v.length > 4 ? ', …' : ''}]`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'undefined') return String(v);
  if (typeof v === 'object') return `a ${v.constructor?.name ?? 'object'}`;
  return typeof v;
}
