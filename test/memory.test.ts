import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Callback } from '../src/loop/callback.js';
import { Learner } from '../src/learner.js';
import { tinyModel, tinyProblem } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('tensor memory', () => {
  for (const optimizer of ['sgd', 'adam', 'adamw'] as const) {
    it(`after fit with ${optimizer}: tensors = before + what the optimizer now owns`, async () => {
      const { train, valid } = tinyProblem(10, 6);
      const model = tinyModel();
      const before = tf.memory().numTensors;
      const learn = new Learner({ model, data: { train, valid }, loss: 'categoricalCrossentropy', optimizer, metrics: ['accuracy', 'errorRate'] });
      await learn.fit(2);
      expect(learn.optimizer.numTensors).toBeGreaterThanOrEqual(optimizer === 'sgd' ? 0 : 1);
      expect(tf.memory().numTensors).toBe(before + learn.optimizer.numTensors);
      // A second fit reuses the optimizer's slots: no growth at all.
      const mid = tf.memory().numTensors;
      await learn.fit(1);
      expect(tf.memory().numTensors).toBe(mid);
    });
  }

  it('no leak when hooks replace the batch tensors and keep gradients across batches', async () => {
    class Meddler extends Callback {
      onBatchBegin(ctx: Parameters<NonNullable<Callback['onBatchBegin']>>[0]) {
        ctx.lastInput = ctx.lastInput!.mul(1);
      }
      onLossBegin(ctx: Parameters<NonNullable<Callback['onLossBegin']>>[0]) {
        if (ctx.train) ctx.lastOutput = ctx.lastOutput!.mul(1);
      }
      onBackwardBegin(ctx: Parameters<NonNullable<Callback['onBackwardBegin']>>[0]) {
        ctx.lastLoss = ctx.lastLoss!.mul(2) as tf.Scalar;
      }
      onStepEnd(ctx: Parameters<NonNullable<Callback['onStepEnd']>>[0]) {
        return ctx.batchIndex % 2 === 0 ? { skipZero: true } : undefined;
      }
    }
    const { train, valid } = tinyProblem(10, 6);
    const model = tinyModel();
    const before = tf.memory().numTensors;
    const learn = new Learner({ model, data: { train, valid }, loss: 'categoricalCrossentropy', optimizer: 'sgd', callbacks: [new Meddler()] });
    await learn.fit(2);
    expect(tf.memory().numTensors).toBe(before + learn.optimizer.numTensors);
  });

  it('no leak when batches are cancelled inside the tape or skip their backward pass', async () => {
    class Canceller extends Callback {
      onLossBegin(ctx: Parameters<NonNullable<Callback['onLossBegin']>>[0]) {
        return ctx.train && ctx.batchIndex === 0 ? { cancelBatch: true } : undefined;
      }
      onBackwardBegin(ctx: Parameters<NonNullable<Callback['onBackwardBegin']>>[0]) {
        return ctx.batchIndex === 1 ? { skipBackward: true } : undefined;
      }
    }
    const { train, valid } = tinyProblem(10, 6);
    const model = tinyModel();
    const before = tf.memory().numTensors;
    const learn = new Learner({ model, data: { train, valid }, loss: 'categoricalCrossentropy', optimizer: 'adam', callbacks: [new Canceller()] });
    await learn.fit(2);
    expect(tf.memory().numTensors).toBe(before + learn.optimizer.numTensors);
  });
});
