/**
 * A model with randomness no seed controls makes `fit` warn, once per learner, naming the
 * layer and the seeded replacement. A fully seeded model (trainchart's presets, SeededDropout,
 * seeded initializers) gets no warning, so each check here can fail both ways.
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Learner } from '../src/learner.js';
import { mlp } from '../src/models/presets.js';
import { SeededDropout } from '../src/models/seededDropout.js';
import { unseededRandomness } from '../src/models/unseeded.js';
import { tinyProblem } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const seeded = (seed: number) => tf.initializers.glorotUniform({ seed });

/** A 4 → 3 classifier with `middle` between two seeded dense layers. */
function modelWith(middle: tf.layers.Layer[], name = 'm') {
  return tf.sequential({
    name,
    layers: [
      tf.layers.dense({ name: 'first', inputShape: [4], units: 5, activation: 'relu', kernelInitializer: seeded(1) }),
      ...middle,
      tf.layers.dense({ name: 'last', units: 3, activation: 'softmax', kernelInitializer: seeded(2) }),
    ],
  });
}

function learnerOf(model: tf.LayersModel) {
  const { train } = tinyProblem(6, 0);
  return new Learner({ model, data: { train }, loss: 'categoricalCrossentropy', optimizer: 'sgd', recorder: false });
}

/** The TrainchartWarnings emitted while `run` ran. */
async function warningsDuring(run: () => Promise<unknown>): Promise<string[]> {
  const spy = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  try {
    await run();
    return spy.mock.calls
      .filter(([, options]) => (options as { type?: string } | undefined)?.type === 'TrainchartWarning')
      .map(([message]) => String(message));
  } finally {
    spy.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

describe('fit warns about unseeded random layers', () => {
  it('tf.layers.dropout without a seed: one warning at the first fit, naming the layer and SeededDropout; none at later fits or lrFind', async () => {
    const learn = learnerOf(modelWith([tf.layers.dropout({ name: 'drop', rate: 0.5 })]));
    const first = await warningsDuring(() => learn.fit(1));
    expect(first).toHaveLength(1);
    expect(first[0]).toMatch(/cannot be reproduced/);
    expect(first[0]).toMatch(/layer "drop": Dropout \(rate 0\.5\) draws unseeded masks; use SeededDropout from trainchart/);
    expect(await warningsDuring(() => learn.fit(1))).toEqual([]);
    expect(await warningsDuring(() => learn.lrFind({ numIt: 6 }))).toEqual([]);
  });

  it('warns per learner: a second learner on the same model warns again', async () => {
    const model = modelWith([tf.layers.dropout({ name: 'drop', rate: 0.5 })]);
    expect(await warningsDuring(() => learnerOf(model).fit(1))).toHaveLength(1);
    expect(await warningsDuring(() => learnerOf(model).fit(1))).toHaveLength(1);
  });

  it('the warning comes through process.emitWarning with type TrainchartWarning and code TRAINCHART_UNSEEDED', async () => {
    const spy = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    await learnerOf(modelWith([tf.layers.dropout({ name: 'drop', rate: 0.5 })])).fit(1);
    expect(spy).toHaveBeenCalledWith(expect.stringContaining('layer "drop"'), { type: 'TrainchartWarning', code: 'TRAINCHART_UNSEEDED' });
  });

  it('a fully seeded model (SeededDropout, seeded initializers; trainchart’s mlp preset) gets no warning', async () => {
    expect(await warningsDuring(() => learnerOf(modelWith([new SeededDropout({ name: 'sd', rate: 0.5, seed: 3 })])).fit(1))).toEqual([]);
    const { train } = tinyProblem(6, 0);
    const preset = new Learner({ model: mlp({ inputShape: [4], hidden: [5], classes: 3, dropout: 0.3, seed: 1 }), data: { train }, loss: 'categoricalCrossentropy', recorder: false });
    expect(await warningsDuring(() => preset.fit(1))).toEqual([]);
  });

  it.each([
    ['gaussianNoise', () => tf.layers.gaussianNoise({ name: 'noise', stddev: 0.1 }), /layer "noise": GaussianNoise \(stddev 0\.1\) draws unseeded noise/],
    ['gaussianDropout', () => tf.layers.gaussianDropout({ name: 'gdrop', rate: 0.2 }), /layer "gdrop": GaussianDropout \(rate 0\.2\) draws unseeded noise.*SeededDropout/],
    ['alphaDropout', () => tf.layers.alphaDropout({ name: 'adrop', rate: 0.2 }), /layer "adrop": AlphaDropout \(rate 0\.2\) draws unseeded noise.*SeededDropout/],
    ['a seeded tf.layers.dropout (the same mask at every step)', () => tf.layers.dropout({ name: 'fixed', rate: 0.5, seed: 7 }), /layer "fixed": Dropout \(rate 0\.5, seed 7\) re-seeds at every call: the same mask at every step; use SeededDropout/],
  ])('%s is named', async (_what, make, message) => {
    const warnings = await warningsDuring(() => learnerOf(modelWith([make()])).fit(1));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(message);
  });

  it('a dropout inside a nested model is named with its path; rate 0 is no randomness', async () => {
    const inner = tf.sequential({ name: 'inner', layers: [tf.layers.dropout({ name: 'deep', rate: 0.25, inputShape: [5] }), tf.layers.dropout({ name: 'off', rate: 0 })] });
    const warnings = await warningsDuring(() => learnerOf(modelWith([inner])).fit(1));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/layer "inner\/deep": Dropout \(rate 0\.25\)/);
    expect(warnings[0]).not.toMatch(/"inner\/off"/);
  });
});

describe('fit warns about unseeded initialisers (read from the model’s config)', () => {
  it('a dense layer with tfjs’s default kernel initializer (glorotNormal, no seed) is named with the initializer to seed', async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ name: 'plain', inputShape: [4], units: 3, activation: 'softmax' }),
      ],
    });
    const warnings = await warningsDuring(() => learnerOf(model).fit(1));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/layer "plain": kernelInitializer \(glorotNormal\) has no seed.*pass one: kernelInitializer: tf\.initializers\.glorotNormal\(\{ seed \}\)/);
    // Its bias starts at zeros: not random, not named.
    expect(warnings[0]).not.toMatch(/biasInitializer/);
  });

  it('unseededRandomness lists each source once: heUniform and randomNormal initializers, an LSTM’s dropout and its orthogonal default', () => {
    const model = tf.sequential({
      layers: [
        tf.layers.lstm({ name: 'rnn', inputShape: [3, 2], units: 4, dropout: 0.1, kernelInitializer: seeded(4), recurrentInitializer: tf.initializers.orthogonal({}) }),
        tf.layers.dense({ name: 'he', units: 3, kernelInitializer: 'heUniform', biasInitializer: tf.initializers.randomNormal({}) }),
        tf.layers.dense({ name: 'ok', units: 3, kernelInitializer: tf.initializers.randomNormal({ seed: 5 }) }),
      ],
    });
    const found = unseededRandomness(model).map((f) => `${f.layer} ${f.what.split(' ')[0]}`);
    expect(found).toEqual(['rnn LSTM', 'rnn recurrentInitializer', 'he kernelInitializer', 'he biasInitializer']);
  });
});
