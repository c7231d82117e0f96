import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { DataLoader, type ArrayOptions } from '../src/data/index.js';
import { ConfigError, DataError } from '../src/errors.js';
import { Rng } from '../src/rng.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** n samples of shape [2]: sample i is [i, -i]; its label is i, so pairing can be checked. */
function indexed(n: number, opts: ArrayOptions): DataLoader {
  const x = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    x[2 * i] = i;
    x[2 * i + 1] = -i;
  }
  const y = Array.from({ length: n }, (_, i) => i);
  return DataLoader.fromArrays(x, y, opts);
}

/** Sample indices of one epoch, batch by batch, checking x/y pairing and disposing the tensors. */
function epochOrder(loader: DataLoader, epoch: number): number[][] {
  loader.orderEpoch(epoch);
  const batches: number[][] = [];
  for (let b = 0; b < loader.nBatches; b++) {
    const { x, y, size } = loader.batch(b);
    const xs = x.dataSync();
    const ys = y.dataSync();
    expect(x.shape).toEqual([size, 2]);
    expect(y.shape).toEqual([size]);
    const ids: number[] = [];
    for (let i = 0; i < size; i++) {
      expect(xs[2 * i]! + xs[2 * i + 1]!).toBe(0);
      expect(ys[i]).toBe(xs[2 * i]);
      ids.push(ys[i]!);
    }
    batches.push(ids);
    x.dispose();
    y.dispose();
  }
  return batches;
}

function expectError(fn: () => unknown, cls: typeof DataError | typeof ConfigError, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(cls);
  expect((caught as Error).message).toMatch(message);
}

describe('DataLoader batching', () => {
  it('covers every sample exactly once per epoch, including the last partial batch', () => {
    for (const shuffle of [false, true]) {
      const loader = indexed(10, { batchSize: 3, shuffle, seed: 7 });
      expect(loader.length).toBe(10);
      expect(loader.nBatches).toBe(4);
      for (const epoch of [0, 1, 5]) {
        const batches = epochOrder(loader, epoch);
        expect(batches.map((b) => b.length)).toEqual([3, 3, 3, 1]);
        expect(batches.flat().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      }
    }
  });

  it('covers each sample at most once, and all but the remainder, for any size, batch size and flags', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 120 }),
        fc.integer({ min: 1, max: 40 }),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 1000 }),
        (n, batchSize, shuffle, dropLast, seed, epoch) => {
          fc.pre(!dropLast || batchSize <= n);
          const loader = indexed(n, { batchSize, shuffle, dropLast, seed });
          const ids = epochOrder(loader, epoch).flat();
          const expected = dropLast ? Math.floor(n / batchSize) * batchSize : n;
          expect(ids.length).toBe(expected);
          expect(new Set(ids).size).toBe(expected);
          expect(ids.every((i) => i >= 0 && i < n)).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('dropLast leaves out the partial batch', () => {
    const loader = indexed(10, { batchSize: 3, dropLast: true });
    expect(loader.nBatches).toBe(3);
    expect(epochOrder(loader, 0)).toEqual([
      [0, 1, 2],
      [3, 4, 5],
      [6, 7, 8],
    ]);
    expectError(() => loader.batch(3), ConfigError, /batch index 3 is out of range.*3 batches/);
    // Exact multiples lose nothing.
    expect(indexed(9, { batchSize: 3, dropLast: true }).nBatches).toBe(3);
  });

  it('without shuffle the order is the identity in every epoch', () => {
    const loader = indexed(7, { batchSize: 4, seed: 123 });
    for (const epoch of [0, 1, 2, 99]) {
      expect(epochOrder(loader, epoch)).toEqual([
        [0, 1, 2, 3],
        [4, 5, 6],
      ]);
    }
  });

  it('shuffle differs between epochs and is exactly the permutation of Rng.derive(seed, epoch)', () => {
    const n = 50;
    const loader = indexed(n, { batchSize: 8, shuffle: true, seed: 42 });
    const e0 = epochOrder(loader, 0).flat();
    const e1 = epochOrder(loader, 1).flat();
    expect(e0).not.toEqual(e1);
    expect(e0).not.toEqual([...Array(n).keys()]);
    for (const [epoch, order] of [
      [0, e0],
      [1, e1],
    ] as const) {
      const expected = Rng.derive(42, epoch).shuffle(Uint32Array.from({ length: n }, (_, i) => i));
      expect(order).toEqual(Array.from(expected));
    }
    // A different seed gives a different order.
    expect(epochOrder(indexed(n, { batchSize: 8, shuffle: true, seed: 43 }), 0).flat()).not.toEqual(e0);
  });

  it('an epoch reached directly, or through earlier epochs, or restored by setState on a fresh loader, has the same order', () => {
    const opts = { batchSize: 6, shuffle: true, seed: 9 };
    const played = indexed(40, opts);
    for (const e of [0, 1, 2]) epochOrder(played, e);
    const after3 = epochOrder(played, 3);
    expect(epochOrder(indexed(40, opts), 3)).toEqual(after3);

    played.orderEpoch(4);
    const state = played.getState();
    expect(state).toEqual({ seed: 9, epoch: 4 });
    const e4 = epochOrder(played, 4);

    // A fresh loader built with another seed adopts the saved seed and epoch.
    const fresh = indexed(40, { ...opts, seed: 1 });
    fresh.setState(state);
    expect(fresh.getState()).toEqual(state);
    const restored: number[][] = [];
    for (let b = 0; b < fresh.nBatches; b++) {
      const { x, y } = fresh.batch(b);
      restored.push(Array.from(y.dataSync()));
      x.dispose();
      y.dispose();
    }
    expect(restored).toEqual(e4);
  });

  it('batch tensors have the documented shapes and dtypes', () => {
    // number[][][]: 5 samples of shape [2, 3]; 2-D y: one-hot float targets.
    const x = Array.from({ length: 5 }, (_, i) => [
      [i, i, i],
      [i, i, i],
    ]);
    const y = Array.from({ length: 5 }, (_, i) => [i % 2, 1 - (i % 2)]);
    const loader = DataLoader.fromArrays(x, y, { batchSize: 2 });
    expect(loader.sampleShape).toEqual([2, 3]);
    expect(loader.targetShape).toEqual([2]);
    expect(loader.targetDtype).toBe('float32');
    const last = loader.batch(2);
    expect(last.size).toBe(1);
    expect(last.x.shape).toEqual([1, 2, 3]);
    expect(last.x.dtype).toBe('float32');
    expect(last.y.shape).toEqual([1, 2]);
    expect(last.y.dtype).toBe('float32');
    expect(Array.from(last.x.dataSync())).toEqual([4, 4, 4, 4, 4, 4]);
    expect(Array.from(last.y.dataSync())).toEqual([0, 1]);
    tf.dispose([last.x, last.y]);

    // Flat Float32Array with xShape, 1-D integer labels: sparse int32 targets of shape [].
    const flat = DataLoader.fromArrays(new Float32Array(4 * 12).fill(0.5), Int32Array.from([0, 1, 2, 3]), {
      batchSize: 3,
      xShape: [2, 2, 3],
    });
    expect(flat.sampleShape).toEqual([2, 2, 3]);
    expect(flat.targetShape).toEqual([]);
    expect(flat.targetDtype).toBe('int32');
    const b = flat.batch(0);
    expect(b.x.shape).toEqual([3, 2, 2, 3]);
    expect(b.y.shape).toEqual([3]);
    expect(b.y.dtype).toBe('int32');
    tf.dispose([b.x, b.y]);

    // Plain number[] labels that are integers become int32 too.
    const sparse = DataLoader.fromArrays([[1], [2], [3]], [2, 0, 1], { batchSize: 3 });
    expect(sparse.targetDtype).toBe('int32');
    expect(sparse.targetShape).toEqual([]);
    // … unless they are not integers, or float32 is asked for.
    expect(DataLoader.fromArrays([[1], [2]], [0.5, 1], { batchSize: 1 }).targetDtype).toBe('float32');
    expect(DataLoader.fromArrays([[1], [2]], [0, 1], { batchSize: 1, yDtype: 'float32' }).targetDtype).toBe('float32');

    // Flat x without xShape is one row per y sample; Uint8Array x becomes float32 unscaled.
    const bytes = DataLoader.fromArrays(Uint8Array.from([0, 255, 7, 8, 9, 10]), [1, 2], { batchSize: 2 });
    expect(bytes.sampleShape).toEqual([3]);
    const bb = bytes.batch(0);
    expect(bb.x.dtype).toBe('float32');
    expect(Array.from(bb.x.dataSync())).toEqual([0, 255, 7, 8, 9, 10]);
    tf.dispose([bb.x, bb.y]);

    // A flat one-hot Float32Array with yShape keeps float32 [k] targets.
    const oneHot = DataLoader.fromArrays([[1], [2]], Float32Array.from([1, 0, 0, 1]), { batchSize: 2, yShape: [2] });
    expect(oneHot.targetShape).toEqual([2]);
    expect(oneHot.targetDtype).toBe('float32');
    // Integer storage does not make a one-hot target sparse: it is float32 unless int32 is asked for.
    const intHot = DataLoader.fromArrays([[1], [2]], Int32Array.from([1, 0, 0, 1]), { batchSize: 2, yShape: [2] });
    expect(intHot.targetDtype).toBe('float32');
    const bi = intHot.batch(0);
    expect(bi.y.dtype).toBe('float32');
    expect(Array.from(bi.y.dataSync())).toEqual([1, 0, 0, 1]);
    tf.dispose([bi.x, bi.y]);
    expect(DataLoader.fromArrays([[1], [2]], [[1, 0], [0, 1]], { batchSize: 2, yDtype: 'int32' }).targetDtype).toBe('int32');
  });

  it('every batch is a fresh buffer: earlier batch tensors keep their values', () => {
    const loader = indexed(8, { batchSize: 4, shuffle: true, seed: 3 });
    const b0 = loader.batch(0);
    const first = Array.from(b0.x.dataSync());
    const again = loader.batch(0);
    const b1 = loader.batch(1);
    loader.orderEpoch(1);
    const c0 = loader.batch(0);
    expect(Array.from(b0.x.dataSync())).toEqual(first);
    expect(Array.from(again.x.dataSync())).toEqual(first);
    expect(again.x).not.toBe(b0.x);
    tf.dispose([b0.x, b0.y, again.x, again.y, b1.x, b1.y, c0.x, c0.y]);
  });

  it('fromTensors serves the same batches as fromArrays and leaves the caller tensors alone', () => {
    const n = 13;
    const xArr = Array.from({ length: n }, (_, i) => [i, i * 2, i * 3]);
    const yArr = Array.from({ length: n }, (_, i) => i % 4);
    const xT = tf.tensor2d(xArr);
    const yT = tf.tensor1d(yArr, 'int32');
    const before = tf.memory().numTensors;
    const opts = { batchSize: 4, shuffle: true, seed: 5 };
    const fromT = DataLoader.fromTensors(xT, yT, opts);
    const fromA = DataLoader.fromArrays(xArr, yArr, opts);
    expect(tf.memory().numTensors).toBe(before);
    expect(xT.isDisposed).toBe(false);
    expect(yT.isDisposed).toBe(false);
    xT.dispose();
    yT.dispose();

    for (const key of ['length', 'nBatches', 'sampleShape', 'targetShape', 'targetDtype'] as const) {
      expect(fromT[key]).toEqual(fromA[key]);
    }
    for (const epoch of [0, 3]) {
      fromT.orderEpoch(epoch);
      fromA.orderEpoch(epoch);
      for (let b = 0; b < fromT.nBatches; b++) {
        const t = fromT.batch(b);
        const a = fromA.batch(b);
        expect(t.size).toBe(a.size);
        expect(t.x.shape).toEqual(a.x.shape);
        expect(t.y.dtype).toBe(a.y.dtype);
        expect(Array.from(t.x.dataSync())).toEqual(Array.from(a.x.dataSync()));
        expect(Array.from(t.y.dataSync())).toEqual(Array.from(a.y.dataSync()));
        tf.dispose([t.x, t.y, a.x, a.y]);
      }
    }
  });

  it('fromTensors keeps float y float and the tensor shapes', () => {
    const x = tf.zeros([6, 4, 4, 1]);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32'), 3);
    const loader = DataLoader.fromTensors(x, y, { batchSize: 4 });
    expect(loader.sampleShape).toEqual([4, 4, 1]);
    expect(loader.targetShape).toEqual([3]);
    expect(loader.targetDtype).toBe('float32');
    const b = loader.batch(1);
    expect(b.x.shape).toEqual([2, 4, 4, 1]);
    expect(Array.from(b.y.dataSync())).toEqual([0, 1, 0, 0, 0, 1]);
    tf.dispose([x, y, b.x, b.y]);
  });

  it('leaves no tensors behind once batches are disposed', () => {
    const before = tf.memory().numTensors;
    const loaders = [
      indexed(20, { batchSize: 3, shuffle: true }),
      DataLoader.fromArrays([[1, 2], [3, 4], [5, 6]], [[1], [0], [1]], { batchSize: 2 }),
    ];
    for (const loader of loaders) {
      for (let e = 0; e < 2; e++) {
        loader.orderEpoch(e);
        for (let b = 0; b < loader.nBatches; b++) {
          const { x, y } = loader.batch(b);
          x.dispose();
          y.dispose();
        }
      }
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('DataLoader validation', () => {
  const x2 = [
    [1, 2],
    [3, 4],
  ];

  it('rejects empty data', () => {
    expectError(() => DataLoader.fromArrays([], [], { batchSize: 1 }), DataError, /^x has 0 samples: pass at least one sample$/);
    expectError(() => DataLoader.fromArrays(new Float32Array(0), [1], { batchSize: 1 }), DataError, /x has 0 samples/);
    expectError(() => DataLoader.fromArrays(x2, [], { batchSize: 1 }), DataError, /y has 0 samples/);
    const empty = tf.zeros([0, 3]);
    const y = tf.zeros([0]);
    expectError(() => DataLoader.fromTensors(empty, y, { batchSize: 1 }), DataError, /x has 0 samples/);
    tf.dispose([empty, y]);
  });

  it('rejects x and y with different sample counts, naming both counts', () => {
    expectError(() => DataLoader.fromArrays([[1], [2], [3], [4]], [0, 1, 2], { batchSize: 2 }), DataError, /x has 4 samples but y has 3/);
    expectError(
      () => DataLoader.fromArrays(new Float32Array(12), [0, 1], { batchSize: 2, xShape: [4] }),
      DataError,
      /x has 3 samples but y has 2/,
    );
    const x = tf.zeros([5, 2]);
    const y = tf.zeros([4]);
    expectError(() => DataLoader.fromTensors(x, y, { batchSize: 2 }), DataError, /x has 5 samples but y has 4/);
    tf.dispose([x, y]);
  });

  it('rejects a batchSize that is not a positive integer', () => {
    for (const batchSize of [0, -3, 1.5, NaN, Infinity, '8' as unknown as number, undefined as unknown as number]) {
      expectError(() => DataLoader.fromArrays(x2, [0, 1], { batchSize }), ConfigError, /batchSize must be a positive integer/);
    }
  });

  it('rejects other bad options', () => {
    expectError(() => DataLoader.fromArrays(x2, [0, 1], { batchSize: 1, seed: -1 }), ConfigError, /seed must be an integer/);
    expectError(() => DataLoader.fromArrays(x2, [0, 1], { batchSize: 1, seed: 0.5 }), ConfigError, /seed/);
    expectError(
      () => DataLoader.fromArrays(x2, [0, 1], { batchSize: 1, shuffle: 'yes' as unknown as boolean }),
      ConfigError,
      /shuffle must be true or false/,
    );
    expectError(
      () => DataLoader.fromArrays(x2, [0, 1], { batchSize: 1, batch_size: 2 } as unknown as ArrayOptions),
      ConfigError,
      /unknown DataLoader option 'batch_size'/,
    );
    expectError(() => DataLoader.fromArrays(x2, [0, 1], { batchSize: 1, xShape: [0] }), ConfigError, /xShape must be an array of positive integers/);
    expectError(
      () => DataLoader.fromArrays(x2, [0, 1], { batchSize: 1, yDtype: 'int64' as 'int32' }),
      ConfigError,
      /yDtype must be 'float32' or 'int32'/,
    );
    expectError(() => DataLoader.fromArrays(x2, [0, 1], { batchSize: 3, dropLast: true }), ConfigError, /leaves no batch from 2 samples/);
  });

  it('rejects ragged nested arrays, naming the offending element', () => {
    expectError(() => DataLoader.fromArrays([[1, 2], [3]], [0, 1], { batchSize: 1 }), DataError, /x\[1\] has length 1 but x\[0\] has length 2.*ragged/);
    expectError(
      () => DataLoader.fromArrays([[[1], [2]], [[3], [4, 5]]], [0, 1], { batchSize: 1 }),
      DataError,
      /x\[1\]\[1\] has length 2 but x\[0\]\[0\] has length 1.*ragged/,
    );
    expectError(
      () => DataLoader.fromArrays([[1, 2], 3] as unknown as number[][], [0, 1], { batchSize: 1 }),
      DataError,
      /x\[1\] is 3 but an array of length 2 was expected.*ragged/,
    );
    expectError(
      () => DataLoader.fromArrays([[1, 2], [3, [4]]] as unknown as number[][], [0, 1], { batchSize: 1 }),
      DataError,
      /x\[1\]\[1\] is an array.*expected a number.*ragged/,
    );
    expectError(() => DataLoader.fromArrays(x2, [[1, 0], [1]], { batchSize: 1 }), DataError, /y\[1\] has length 1 but y\[0\] has length 2/);
    expectError(
      () => DataLoader.fromArrays([[1, 'a']] as unknown as number[][], [0], { batchSize: 1 }),
      DataError,
      /x\[0\]\[1\] is the string "a", expected a number/,
    );
  });

  it('rejects non-finite x values, naming the first index', () => {
    const x = new Float32Array(8);
    x[5] = NaN;
    x[7] = Infinity;
    expectError(() => DataLoader.fromArrays(x, [0, 1], { batchSize: 1, xShape: [4] }), DataError, /x has a non-finite value NaN at flat index 5 \(sample 1\)/);
    expectError(
      () => DataLoader.fromArrays([[1, 2], [3, -Infinity]], [0, 1], { batchSize: 1 }),
      DataError,
      /x has a non-finite value -Infinity at flat index 3 \(sample 1\)/,
    );
    expectError(() => DataLoader.fromArrays([0, 1e39], [0, 1], { batchSize: 1 }), DataError, /1e\+39 is beyond the float32 range.*flat index 1/);
    const t = tf.tensor2d([
      [1, NaN],
      [0, 0],
    ]);
    const y = tf.tensor1d([0, 1], 'int32');
    expectError(() => DataLoader.fromTensors(t, y, { batchSize: 1 }), DataError, /x has a non-finite value NaN at flat index 1 \(sample 0\)/);
    tf.dispose([t, y]);
    expectError(() => DataLoader.fromArrays(x2, [[0], [NaN]], { batchSize: 1 }), DataError, /y has a non-finite value NaN at flat index 1/);
  });

  it('rejects shapes whose size does not match the data', () => {
    expectError(
      () => DataLoader.fromArrays(new Float32Array(10), [0, 1], { batchSize: 1, xShape: [3] }),
      DataError,
      /x has 10 values, not a multiple of xShape \[3\] \(3 values per sample\)/,
    );
    expectError(
      () => DataLoader.fromArrays(new Float32Array(7), [0, 1], { batchSize: 1 }),
      DataError,
      /flat x has 7 values, which do not split evenly into the 2 samples of y/,
    );
    expectError(
      () => DataLoader.fromArrays([[1, 2, 3, 4]], [0], { batchSize: 1, xShape: [3] }),
      DataError,
      /xShape \[3\] has 3 values per sample but x samples have 4/,
    );
    expectError(
      () => DataLoader.fromArrays(x2, Float32Array.from([1, 0, 0]), { batchSize: 1, yShape: [2] }),
      DataError,
      /y has 3 values, not a multiple of yShape \[2\]/,
    );
    expectError(() => DataLoader.fromArrays([[], []], [0, 1], { batchSize: 1 }), DataError, /x samples have no values/);
    expectError(
      () => DataLoader.fromArrays(x2, [0.5, 1], { batchSize: 1, yDtype: 'int32' }),
      DataError,
      /yDtype is 'int32' but y value 0.5 at flat index 0/,
    );
  });

  it('rejects a batch index out of range', () => {
    const loader = DataLoader.fromArrays(x2, [0, 1], { batchSize: 1 });
    for (const index of [-1, 2, 0.5, NaN]) {
      expectError(() => loader.batch(index), ConfigError, /batch index .* is out of range: this loader has 2 batches per epoch \(0 … 1\)/);
    }
  });

  it('startEpoch, the deprecated name of orderEpoch, orders the same batches', () => {
    const opts = { batchSize: 3, shuffle: true, seed: 5 };
    const a = indexed(12, opts);
    const b = indexed(12, opts);
    a.startEpoch(2);
    expect(a.getState()).toEqual({ seed: 5, epoch: 2 });
    const first = a.batch(0);
    const viaAlias = Array.from(first.y.dataSync());
    tf.dispose([first.x, first.y]);
    expect(viaAlias).toEqual(epochOrder(b, 2)[0]);
  });

  it('rejects a negative or non-integer epoch and a malformed state', () => {
    const loader = DataLoader.fromArrays(x2, [0, 1], { batchSize: 1, shuffle: true });
    for (const epoch of [-1, 1.5, NaN]) {
      expectError(() => loader.orderEpoch(epoch), ConfigError, /orderEpoch needs a non-negative integer epoch/);
    }
    // The deprecated name still works, with the same check.
    expectError(() => loader.startEpoch(-1), ConfigError, /orderEpoch needs a non-negative integer epoch/);
    expectError(() => loader.setState({ seed: 1, epoch: -2 }), ConfigError, /setState: epoch must be a non-negative integer/);
    expectError(() => loader.setState({ seed: 2 ** 32, epoch: 0 }), ConfigError, /setState: seed must be an integer/);
    expectError(() => loader.setState(null as unknown as { seed: number; epoch: number }), ConfigError, /setState needs an object/);
    // A rejected state leaves the loader as it was.
    expect(loader.getState()).toEqual({ seed: 0, epoch: 0 });
  });
});

describe('DataLoader.labelRange', () => {
  it('one target value per sample, any dtype: the smallest and largest, and whether all are whole; one-hot rows: null', () => {
    const x = new Float32Array(5);
    expect(DataLoader.fromArrays(x, [2, 0, 5, 1, 3], { batchSize: 2, shuffle: true }).labelRange()).toEqual({ min: 0, max: 5, integral: true });
    expect(DataLoader.fromArrays(x, Int32Array.from([-1, 4, 4, 0, 2]), { batchSize: 2 }).labelRange()).toEqual({ min: -1, max: 4, integral: true });
    expect(DataLoader.fromArrays(x, [7, 7, 7, 7, 7], { batchSize: 5 }).labelRange()).toEqual({ min: 7, max: 7, integral: true });
    // fromTensors: int32 labels are labels too.
    const [tx, ty] = [tf.tensor2d([[1], [2], [3]]), tf.tensor1d([1, 0, 2], 'int32')];
    expect(DataLoader.fromTensors(tx, ty, { batchSize: 2 }).labelRange()).toEqual({ min: 0, max: 2, integral: true });
    tf.dispose([tx, ty]);
    // float32 single values: labels or regression targets, the loss decides; fractions are flagged.
    expect(DataLoader.fromArrays(x, [0.5, 1, 2, 3, 4], { batchSize: 2 }).labelRange()).toEqual({ min: 0.5, max: 4, integral: false });
    expect(DataLoader.fromArrays(x, [0, 1, 2, 3, 10], { batchSize: 2, yDtype: 'float32' }).labelRange()).toEqual({ min: 0, max: 10, integral: true });
    expect(DataLoader.fromArrays(x, [[0], [1], [2], [3], [4]], { batchSize: 2 }).labelRange()).toEqual({ min: 0, max: 4, integral: true });
    // One-hot (or any multi-value) targets: no labels to range over.
    expect(DataLoader.fromArrays(new Float32Array(2), [[0, 1], [1, 0]], { batchSize: 2 }).labelRange()).toBeNull();
  });

  it('is computed once: later calls answer from the cache, and a caller cannot change it', () => {
    const loader = DataLoader.fromArrays(new Float32Array(4), [3, 1, 2, 0], { batchSize: 2 });
    const first = loader.labelRange()!;
    first.max = 99;
    expect(loader.labelRange()).toEqual({ min: 0, max: 3, integral: true });
    // The cache, not a new pass: its internal arrays are not read again.
    const y = (loader as unknown as { y: Int32Array }).y;
    y[0] = 42;
    expect(loader.labelRange()).toEqual({ min: 0, max: 3, integral: true });
  });
});
