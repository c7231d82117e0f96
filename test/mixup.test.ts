import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { MixUp } from '../callbacks/mixUp.js';
import { Callback } from '../src/loop/callback.js';
import { DataLoader } from '../src/data/dataLoader.js';
import { ConfigError, StageError } from '../src/errors.js';
import { Learner } from '../src/learner.js';
import type { TrainContext } from '../src/loop/context.js';
import { sampleBeta } from '../src/random/beta.js';
import { Rng } from '../src/rng.js';
import { tinyLearner, tinyModel, tinyProblem } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

interface Seen {
  train: boolean;
  x: number[][];
  y: number[][];
}

/** Copies ctx.lastInput / lastTarget at batchBegin, as rows. */
class BatchCopy extends Callback {
  seen: Seen[] = [];
  constructor(order: number) {
    super();
    this.order = order;
  }
  onBatchBegin(ctx: TrainContext) {
    this.seen.push({ train: ctx.train, x: ctx.lastInput!.arraySync() as number[][], y: ctx.lastTarget!.arraySync() as number[][] });
  }
}

/** Reads the mixing of each train batch from the MixUp callback right after it ran. */
class MixRecord extends Callback {
  override order = 1;
  lambdas: number[][] = [];
  perms: number[][] = [];
  constructor(readonly mix: MixUp) {
    super();
  }
  onBatchBegin(ctx: TrainContext) {
    if (!ctx.train) return;
    this.lambdas.push([...this.mix.lastLambdas]);
    this.perms.push([...this.mix.lastPermutation]);
  }
}

describe('MixUp', () => {
  it('train batches: x and y are λᵢ·vᵢ + (1−λᵢ)·v_π(i), λᵢ = max(λ, 1−λ) ≥ ½, π a permutation; validation untouched', async () => {
    const original = new BatchCopy(-1);
    const mixed = new BatchCopy(2);
    const mix = new MixUp({ alpha: 0.4 });
    const record = new MixRecord(mix);
    // Batches of 4, then one of 2: permutations of 4 are far from trivial.
    const { train, valid } = tinyProblem(14, 4, 4);
    const learn = new Learner({
      model: tinyModel(),
      data: { train, valid },
      loss: 'categoricalCrossentropy',
      optimizer: 'sgd',
      callbacks: [original, mix, record, mixed],
      recorder: false,
      seed: 5,
    });
    const before = tf.memory().numTensors;
    await learn.fit(2);
    learn.smoothLossState(); // reads the losses no callback read (held for the fit's smoothed loss)
    expect(tf.memory().numTensors).toBe(before + learn.optimizer.numTensors);

    let t = 0;
    original.seen.forEach((o, b) => {
      const m = mixed.seen[b]!;
      if (!o.train) {
        expect(m.x).toEqual(o.x);
        expect(m.y).toEqual(o.y);
        return;
      }
      const lam = record.lambdas[t]!;
      const perm = record.perms[t]!;
      t += 1;
      expect([...perm].sort()).toEqual(o.x.map((_, i) => i));
      for (let i = 0; i < o.x.length; i++) {
        expect(lam[i]).toBeGreaterThanOrEqual(0.5);
        expect(lam[i]).toBeLessThanOrEqual(1);
        const p = perm[i]!;
        o.x[i]!.forEach((v, j) => expect(m.x[i]![j]).toBeCloseTo(lam[i]! * v + (1 - lam[i]!) * o.x[p]![j]!, 6));
        o.y[i]!.forEach((v, j) => expect(m.y[i]![j]).toBeCloseTo(lam[i]! * v + (1 - lam[i]!) * o.y[p]![j]!, 6));
      }
    });
    expect(t).toBe(8); // 4 train batches × 2 epochs
  });

  it('draws from learn.rng only: the λs then π of each batch follow the seeded stream', async () => {
    const mix = new MixUp();
    const record = new MixRecord(mix);
    const learn = tinyLearner([mix, record], { seed: 11 });
    await learn.fit(1);
    const rng = new Rng(11);
    record.lambdas.forEach((lam, b) => {
      const n = lam.length;
      const expectLam = Array.from({ length: n }, () => {
        const l = sampleBeta(rng, 0.4, 0.4);
        return Math.fround(Math.max(l, 1 - l));
      });
      const perm = Int32Array.from({ length: n }, (_, i) => i);
      rng.shuffle(perm);
      expect(lam).toEqual(expectLam);
      expect(record.perms[b]).toEqual(Array.from(perm));
    });
    const other = new MixUp();
    const otherRecord = new MixRecord(other);
    await tinyLearner([other, otherRecord], { seed: 12 }).fit(1);
    expect(otherRecord.lambdas).not.toEqual(record.lambdas);
  });

  it('integer class labels are refused with a ConfigError telling to use one-hot labels', async () => {
    const x = new Float32Array(16).map((_, i) => Math.sin(i));
    const y = new Int32Array([0, 1, 2, 0]);
    const learn = new Learner({
      model: tinyModel(),
      data: { train: DataLoader.fromArrays(x, y, { batchSize: 2, xShape: [4] }) },
      loss: 'sparseCategoricalCrossentropy',
      optimizer: 'sgd',
      callbacks: [new MixUp()],
      recorder: false,
    });
    const err = await learn.fit(1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StageError);
    expect((err as StageError).cause).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/needs one-hot .*give one-hot labels/);
    expect(() => new MixUp({ alpha: 0 })).toThrow(ConfigError);
  });
});
