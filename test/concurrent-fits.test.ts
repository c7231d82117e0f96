/**
 * Fits on two learners at once, interleaved on one event loop (each yields after every stage).
 * Every fit drives its own actor of one shared loop machine (provided once per definition, its
 * actions finding their run by the actor: src/loop/runLoop.ts), so nothing of one run may leak
 * into the other. Reference: the same two fits run one after the other, alone.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { DataLoader } from '../src/data/dataLoader.js';
import { Learner } from '../src/learner.js';
import { mlp } from '../src/models/presets.js';
import { weightsSha256 } from '../src/weightsHash.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function learner(seed: number, withValidation: boolean) {
  const make = (n: number, s: number) => {
    const x = new Float32Array(n * 12);
    const y = new Float32Array(n * 3);
    for (let i = 0; i < x.length; i++) x[i] = ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
    for (let i = 0; i < n; i++) y[i * 3 + (i % 3)] = 1;
    return DataLoader.fromArrays(x, y, { batchSize: 8, xShape: [12], yShape: [3], shuffle: true, seed: s % 1000 });
  };
  const train = make(64, seed);
  return new Learner({
    model: mlp({ inputShape: [12], hidden: [10], classes: 3, seed }),
    data: withValidation ? { train, valid: make(16, seed + 1) } : { train },
    loss: 'categoricalCrossentropy',
    optimizer: 'adam',
    metrics: withValidation ? ['accuracy'] : [],
    progress: false,
    seed,
  });
}

const outcome = async (learn: Learner, run: Promise<unknown>) => {
  const result = (await run) as { smoothLoss: number; iterations: number; metrics: unknown };
  return { hash: weightsSha256(learn.model), losses: [...learn.recorder!.losses], smoothLoss: result.smoothLoss, iterations: result.iterations, metrics: result.metrics };
};

describe('fits on two learners at once', () => {
  it('each ends exactly as it does alone (resolved actors; a live, inspected one beside a resolved one)', async () => {
    const alone1 = learner(1, true);
    const ref1 = await outcome(alone1, alone1.fit(3));
    const alone2 = learner(2, false);
    const ref2 = await outcome(alone2, alone2.fit(2));

    const a = learner(1, true);
    const b = learner(2, false);
    const [got1, got2] = await Promise.all([outcome(a, a.fit(3, { yieldEveryMs: 0 })), outcome(b, b.fit(2, { yieldEveryMs: 0 }))]);
    expect(got1).toEqual(ref1);
    expect(got2).toEqual(ref2);

    // One run watched (XState's live actor, inspected), the other not: still each its own.
    const c = learner(1, true);
    const d = learner(2, false);
    let inspected = 0;
    const [got3, got4] = await Promise.all([
      outcome(c, c.fit(3, { yieldEveryMs: 0, inspect: () => (inspected += 1) })),
      outcome(d, d.fit(2, { yieldEveryMs: 0 })),
    ]);
    expect(inspected).toBeGreaterThan(0);
    expect(got3).toEqual(ref1);
    expect(got4).toEqual(ref2);
    for (const l of [alone1, alone2, a, b, c, d]) l.dispose();
  });
});
