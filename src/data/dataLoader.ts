import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors.js';
import { dataFingerprint } from './fingerprint.js';
import {
  ARRAY_KEYS,
  LOADER_KEYS,
  checkLoaderOptions,
  checkSeed,
  describe,
  ingestArrays,
  ingestTensors,
  product,
  type ArrayOptions,
  type DataLoaderOptions,
  type Ingested,
  type TargetArray,
  type XArray,
  type YArray,
} from './ingest.js';
import { epochOrder, gather } from './order.js';

export type { ArrayOptions, DataLoaderOptions, NestedNumbers, XArray, YArray } from './ingest.js';
export { markFinite } from './ingest.js';

/**
 * Serves a dataset held in memory as batches of fresh tensors, in an order that depends
 * only on (seed, epoch). Nothing about the order is carried from one epoch to the next,
 * so a run resumed at epoch N — or in the middle of it — sees exactly the batches the
 * original run saw. Checking and converting the input is src/data/ingest.ts; the order and
 * the copying of rows, src/data/order.ts.
 */

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

/** Everything that decides which samples make which batch, as a checkpoint records it. */
export interface DataOrder {
  length: number;
  sampleShape: number[];
  targetShape: number[];
  targetDtype: 'float32' | 'int32';
  fingerprint: string;
  batchSize: number;
  nBatches: number;
  shuffle: boolean;
  seed: number;
  dropLast: boolean;
}

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
  /** The epoch `batch(i)` serves when no epoch is given (set by orderEpoch). */
  private epoch = 0;
  /** The epoch whose sample order is cached, and that order (null: the identity). */
  private cachedOrderEpoch = -1;
  private order: Uint32Array | null = null;
  /** The content fingerprint, once computed (the data never changes). */
  private fingerprintHex: string | null = null;
  /** labelRange's answer, once computed (the data never changes). */
  private range: { min: number; max: number; integral: boolean } | null | undefined = undefined;

  private constructor({ x, sampleShape, y, targetShape }: Ingested, opts: Required<DataLoaderOptions>) {
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
    return new DataLoader(ingestArrays(x, y, opts), o);
  }

  /**
   * A loader over tensors of shape [n, ...sampleShape] and [n, ...targetShape]. The data is
   * read once (dataSync) and copied; the caller's tensors are neither kept nor disposed.
   * A 1-D int32 y is sparse labels and stays int32; any other y becomes float32 (so the
   * int32 output of tf.oneHot gives float one-hot targets, as a loss expects).
   */
  static fromTensors(x: tf.Tensor, y: tf.Tensor, opts: DataLoaderOptions): DataLoader {
    const o = checkLoaderOptions(opts, LOADER_KEYS);
    return new DataLoader(ingestTensors(x, y), o);
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
  }

  /** @deprecated The old name of `orderEpoch` (it orders the batches of `epoch`; it starts nothing). */
  startEpoch(epoch: number): void {
    this.orderEpoch(epoch);
  }

  /**
   * Batch `index` of `epoch` (default: the epoch of the last orderEpoch) as fresh tensors; the
   * caller disposes them. The batch depends only on (seed, epoch, index): the training loop
   * always names the epoch, so no earlier call (an epochBegin that a resumed run skips) matters.
   * Tensors are immutable: on a backend that keeps the array it is given (cpu), an unshuffled
   * batch's tensors are views of the loader's own data, so never write into their `dataSync()`.
   */
  batch(index: number, epoch: number = this.epoch): Batch {
    if (!Number.isInteger(index) || index < 0 || index >= this.nBatches) {
      throw new ConfigError(
        `batch index ${describe(index)} is out of range: this loader has ${this.nBatches} batches per epoch (0 … ${this.nBatches - 1})`,
      );
    }
    if (epoch !== this.cachedOrderEpoch) {
      if (!Number.isSafeInteger(epoch) || epoch < 0) {
        throw new ConfigError(`batch(index, epoch) needs a non-negative integer epoch, got ${describe(epoch)}`);
      }
      this.order = epochOrder(this.seed, epoch, this.length, this.shuffle);
      this.cachedOrderEpoch = epoch;
    }
    const order = this.order;
    const start = index * this.batchSize;
    const size = Math.min(this.batchSize, this.length - start);
    // Unshuffled (validation) batches are contiguous rows: the tensor is made straight from a
    // view of them, without copying them into a batch array first (tensors are never written to).
    const xs = order === null ? this.x.subarray(start * this.xRow, (start + size) * this.xRow) : gather(this.x, new Float32Array(size * this.xRow), this.xRow, order, start, size);
    const ys =
      order === null
        ? this.y.subarray(start * this.yRow, (start + size) * this.yRow)
        : gather(
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
    if (seed !== this.seed) this.cachedOrderEpoch = -1;
    this.seed = seed;
    this.orderEpoch(s.epoch);
  }

  /**
   * sha256 of the data (shapes, target dtype, every value), computed once: a checkpoint records
   * it, and a resume on data that differs in any value is refused.
   */
  fingerprint(): string {
    this.fingerprintHex ??= dataFingerprint(this.x, this.sampleShape, this.y, this.targetShape);
    return this.fingerprintHex;
  }

  /** What fixes the batches of every epoch: the data (by fingerprint), batching and the order's seed. */
  describeOrder(): DataOrder {
    return {
      length: this.length,
      sampleShape: [...this.sampleShape],
      targetShape: [...this.targetShape],
      targetDtype: this.targetDtype,
      fingerprint: this.fingerprint(),
      batchSize: this.batchSize,
      nBatches: this.nBatches,
      shuffle: this.shuffle,
      seed: this.seed,
      dropLast: this.dropLast,
    };
  }
}
