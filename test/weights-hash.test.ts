/**
 * `weightsSha256` says "same weights" exactly when every bit of every weight is the same: two
 * models built by the same code in one process (tfjs gives their layers different counter
 * names) with equal weights hash the same; one flipped bit changes the hash.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { mlp } from '../src/models/presets.js';

/** Layers without names: tfjs names them from process-wide counters (dense_Dense1, dense_Dense2 …). */
const autoNamed = () =>
  tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3 }), tf.layers.dense({ units: 2 })] });
import { weightsSha256 } from '../src/weightsHash.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('weightsSha256', () => {
  it('two instances of one architecture in one process, same weights: same hash (tfjs names differ)', () => {
    const a = autoNamed();
    const b = autoNamed();
    // The premise: tfjs's own names differ between the two instances.
    expect(a.weights.map((w) => w.originalName)).not.toEqual(b.weights.map((w) => w.originalName));
    expect(weightsSha256(a)).not.toBe(weightsSha256(b));
    b.setWeights(a.getWeights());
    expect(weightsSha256(b)).toBe(weightsSha256(a));
    a.dispose();
    b.dispose();
  });

  it('one flipped bit in one weight changes the hash', () => {
    const a = mlp({ seed: 1 });
    const before = weightsSha256(a);
    const w = a.getWeights();
    const last = w.length - 1;
    const values = (w[last]!.dataSync() as Float32Array).slice();
    new Uint32Array(values.buffer)[0]! ^= 1;
    a.setWeights([...w.slice(0, last), tf.tensor(values, w[last]!.shape)]);
    expect(weightsSha256(a)).not.toBe(before);
    a.dispose();
  });
});
