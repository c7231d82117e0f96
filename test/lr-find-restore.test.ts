/**
 * `lrFind` leaves the learner exactly as it was: weights, optimizer state, every random
 * stream (nested models' SeededDropout layers included), `learn.rng` and the DataLoader's
 * order state. The reference is independent of the finder's snapshot code: a second learner
 * built identically that never ran lrFind must train to the very same weights.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Learner } from '../src/learner.js';
import { rngStatefulLayers, SeededDropout } from '../src/models/seededDropout.js';
import { weightsSha256 } from '../src/weightsHash.js';
import { tinyProblem } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/**
 * A model whose dropout sits two levels down: outer(sequential) → middle(functional) →
 * inner(sequential) → SeededDropout, plus one at the top level. Layer names are explicit so
 * that two builds hash alike (weightsSha256 hashes names).
 */
function nestedModel() {
  const glorot = (seed: number) => tf.initializers.glorotUniform({ seed });
  const inner = tf.sequential({
    name: 'inner',
    layers: [
      tf.layers.dense({ name: 'inner_dense', inputShape: [4], units: 6, activation: 'relu', kernelInitializer: glorot(1) }),
      new SeededDropout({ name: 'inner_dropout', rate: 0.5, seed: 11 }),
    ],
  });
  const input = tf.input({ shape: [4], name: 'middle_in' });
  const middle = tf.model({ name: 'middle', inputs: input, outputs: inner.apply(input) as tf.SymbolicTensor });
  return tf.sequential({
    name: 'outer',
    layers: [
      middle,
      new SeededDropout({ name: 'outer_dropout', rate: 0.3, seed: 12 }),
      tf.layers.dense({ name: 'outer_dense', units: 3, activation: 'softmax', kernelInitializer: glorot(2) }),
    ],
  });
}

function nestedLearner() {
  const { train, valid } = tinyProblem(12, 4);
  return new Learner({
    model: nestedModel(),
    data: { train, valid },
    loss: 'categoricalCrossentropy',
    optimizer: 'adam',
    seed: 5,
    recorder: false,
  });
}

describe('rngStatefulLayers finds every random stream of a model', () => {
  it('through a sequential inside a functional model inside a sequential, each once', () => {
    const model = nestedModel();
    expect(rngStatefulLayers(model).map((l) => l.name)).toEqual(['middle/inner/inner_dropout', 'outer_dropout']);
  });

  it('any layer with getRngState/setRngState qualifies, not only SeededDropout (duck-typed, as checkpoints need)', () => {
    class OwnNoise extends tf.layers.Layer {
      static className = 'OwnNoise';
      state = [1, 2, 3, 4];
      getRngState() {
        return [...this.state];
      }
      setRngState(s: number[]) {
        this.state = [...s];
      }
      override call(x: tf.Tensor | tf.Tensor[]) {
        return Array.isArray(x) ? x[0]! : x;
      }
    }
    const inner = tf.sequential({ name: 'inner2', layers: [new OwnNoise({ name: 'own', inputShape: [2] })] });
    const found = rngStatefulLayers(tf.sequential({ layers: [inner] }));
    expect(found.map((l) => l.name)).toEqual(['inner2/own']);
  });

  it('a layer shared by two branches is listed once', () => {
    const shared = new SeededDropout({ name: 'shared_dropout', rate: 0.5, seed: 3 });
    const x = tf.input({ shape: [3] });
    const a = shared.apply(x) as tf.SymbolicTensor;
    const b = shared.apply(a) as tf.SymbolicTensor;
    expect(rngStatefulLayers(tf.model({ inputs: x, outputs: b })).map((l) => l.name)).toEqual(['shared_dropout']);
  });
});

describe('lrFind leaves every random stream as it was', () => {
  it('a fit after lrFind ends with the same weightsSha256 as the same fit on an identical learner that never ran lrFind', async () => {
    const searched = nestedLearner();
    const fresh = nestedLearner();
    expect(weightsSha256(searched.model)).toBe(weightsSha256(fresh.model));
    await searched.lrFind({ numIt: 12 });
    await searched.fit(2, { lr: 1e-2 });
    await fresh.fit(2, { lr: 1e-2 });
    expect(weightsSha256(searched.model)).toBe(weightsSha256(fresh.model));
  });

  it('right after lrFind: the same streams (nested too), learn.rng, DataLoader order state, weights and lr', async () => {
    const learn = nestedLearner();
    const streams = (l: Learner) => rngStatefulLayers(l.model).map((s) => s.getRngState());
    // The loader's epoch as a previous fit left it (not 0), so putting it back is visible.
    await learn.fit(1, { lr: 1e-3 });
    learn.data.train.startEpoch(3);
    const before = {
      streams: streams(learn),
      rng: learn.rng.getState(),
      loader: learn.data.train.getState(),
      weights: weightsSha256(learn.model),
      lr: learn.lr,
      smoothLoss: learn.smoothLossState(),
    };
    expect(before.smoothLoss).not.toBeNull();
    await learn.lrFind({ numIt: 12 });
    // The search's smoothed loss is not the learner's (a manual resume continues from this one).
    expect(learn.smoothLossState()).toEqual(before.smoothLoss);
    expect(streams(learn)).toEqual(before.streams);
    expect(learn.rng.getState()).toEqual(before.rng);
    expect(learn.data.train.getState()).toEqual(before.loader);
    expect(weightsSha256(learn.model)).toBe(before.weights);
    expect(learn.lr).toBe(before.lr);
  });

  it('the check can fail: a fit after only the nested stream was advanced ends elsewhere', async () => {
    const advanced = nestedLearner();
    const fresh = nestedLearner();
    const nested = rngStatefulLayers(advanced.model)[0]!;
    const s = nested.getRngState();
    nested.setRngState([s[0], s[1], s[2], (s[3] + 1) >>> 0]);
    await advanced.fit(2, { lr: 1e-2 });
    await fresh.fit(2, { lr: 1e-2 });
    expect(weightsSha256(advanced.model)).not.toBe(weightsSha256(fresh.model));
  });
});
