import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { DataLoader } from '../src/data/dataLoader.js';
import { ConfigError, DataError } from '../src/errors.js';
import { Learner } from '../src/learner.js';
import { tinyLearner, tinyModel, tinyProblem } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('bad input gets a clear, typed error', () => {
  it.each([0, -1, 1.5, Number.NaN])('epochs = %s', async (epochs) => {
    await expect(tinyLearner([]).fit(epochs)).rejects.toThrow(ConfigError);
    await expect(tinyLearner([]).fit(epochs)).rejects.toThrow(/epochs must be a positive integer/);
  });

  it.each([-0.1, Number.NaN, Number.POSITIVE_INFINITY])('lr = %s', async (lr) => {
    await expect(tinyLearner([]).fit(1, { lr })).rejects.toThrow(ConfigError);
    await expect(tinyLearner([]).fit(1, { lr })).rejects.toThrow(/lr must be a finite number ≥ 0/);
  });

  it('lr = 0 is valid (schedules anneal to 0): the fit runs and the weights stay as they were', async () => {
    const learn = tinyLearner([]);
    const before = learn.model.getWeights().map((w) => Array.from(w.dataSync()));
    const result = await learn.fit(1, { lr: 0 });
    expect(result.status).toBe('completed');
    expect(learn.model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before);
  });

  it('empty data', () => {
    expect(() => DataLoader.fromArrays(new Float32Array(0), new Float32Array(0), { batchSize: 2, xShape: [4], yShape: [3] })).toThrow(
      DataError,
    );
    expect(() => DataLoader.fromArrays([], [], { batchSize: 2 })).toThrow(/0 samples/);
  });

  it('input shape that does not match the model', async () => {
    const x = new Float32Array(6 * 5);
    const y = new Float32Array(6 * 3);
    const train = DataLoader.fromArrays(x, y, { batchSize: 2, xShape: [5], yShape: [3] });
    const learn = new Learner({ model: tinyModel(), data: { train }, loss: 'categoricalCrossentropy' });
    await expect(learn.fit(1)).rejects.toThrow(DataError);
    await expect(learn.fit(1)).rejects.toThrow(/shape \[5\] but the model expects \[4\]/);
  });

  it('labels that do not match the output', async () => {
    const x = new Float32Array(6 * 4);
    const y = new Float32Array(6 * 7);
    const train = DataLoader.fromArrays(x, y, { batchSize: 2, xShape: [4], yShape: [7] });
    const learn = new Learner({ model: tinyModel(), data: { train }, loss: 'categoricalCrossentropy' });
    await expect(learn.fit(1)).rejects.toThrow(DataError);
    await expect(learn.fit(1)).rejects.toThrow(/7/);
  });

  it('a bad model, loss or optimizer at construction', () => {
    const { train } = tinyProblem();
    expect(() => new Learner({ model: {} as never, data: { train }, loss: 'categoricalCrossentropy' })).toThrow(/tf.LayersModel/);
    expect(() => new Learner({ model: tinyModel(), data: { train }, loss: 'hinge' as never })).toThrow(ConfigError);
    expect(() => new Learner({ model: tinyModel(), data: { train }, loss: 'categoricalCrossentropy', optimizer: 'rmsprop' as never })).toThrow(
      ConfigError,
    );
    expect(() => new Learner({ model: tinyModel(), data: {} as never, loss: 'categoricalCrossentropy' })).toThrow(/data/);
  });

  it('one optimizer given to a second Learner is refused when that Learner is built; the first trains on, unharmed', async () => {
    const { createOptimizer } = await import('../src/optim/optimizer.js');
    const { train } = tinyProblem();
    const optimizer = createOptimizer('adam');
    const first = new Learner({ model: tinyModel(), data: { train }, loss: 'categoricalCrossentropy', optimizer, progress: false });
    expect(() => new Learner({ model: tinyModel(), data: { train }, loss: 'categoricalCrossentropy', optimizer, progress: false })).toThrow(
      /this optimizer already belongs to another Learner/,
    );
    await expect(first.fit(1, { lr: 1e-2 })).resolves.toMatchObject({ status: 'completed' });
    expect(first.optimizer.numTensors).toBeGreaterThan(0);
    first.dispose();
  });

  it('a callback setting a NaN lr mid-run fails the run naming the callback and the stage; the lr is not changed', async () => {
    const learn = tinyLearner([]);
    learn.addCallback(
      new (class extends (await import('../src/loop/callback.js')).Callback {
        onBatchBegin() {
          this.learn.lr = Number.NaN;
        }
      })(),
    );
    const lr = learn.lr;
    await expect(learn.fit(1)).rejects.toThrow(/hook of stage batchBegin: lr must be a finite number ≥ 0.*learn\.lr = NaN/);
    expect(learn.lr).toBe(lr);
  });
});

describe('sparse labels that do not fit the model are refused when fit starts', () => {
  const x = new Float32Array(6 * 4);
  const sparse = (y: number[] | Int32Array, opts: Record<string, unknown> = {}) =>
    new Learner({
      model: tinyModel(),
      data: { train: DataLoader.fromArrays(x, y, { batchSize: 2, xShape: [4], ...opts }) },
      loss: 'sparseCategoricalCrossentropy',
    });
  it.each([
    ['int32 label 5 with 3 classes', Int32Array.from([0, 1, 2, 5, 0, 1]), {}, /class label 5/],
    ['a negative label', Int32Array.from([0, -1, 2, 1, 0, 1]), {}, /class label -1/],
    ['float32 labels, one out of range', [0, 1, 2, 10, 0, 1], { yDtype: 'float32' }, /class label 10/],
    ['labels of shape [1]', [[0], [1], [2], [3], [0], [1]], {}, /class label 3/],
    ['fractional labels', [0, 1, 2.5, 1, 0, 1], {}, /whole-number class labels/],
  ])('%s', async (_name, y, opts, pattern) => {
    const learn = sparse(y as number[], opts);
    await expect(learn.fit(1)).rejects.toThrow(DataError);
    await expect(learn.fit(1)).rejects.toThrow(pattern as RegExp);
  });

  it('labels in range train', async () => {
    await expect(sparse(Int32Array.from([0, 1, 2, 1, 0, 2])).fit(1)).resolves.toMatchObject({ status: 'completed' });
  });
});
