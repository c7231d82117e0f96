import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { TerminateOnNaN } from '../callbacks/terminateOnNan.js';
import { Callback } from '../src/callback.js';
import { categoricalCrossentropy } from '../src/losses.js';
import type { TrainContext } from '../src/loop/context.js';
import { tinyLearner } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Counts what ran after the bad batch. */
class Watch extends Callback {
  override order = 100;
  trainBatches = 0;
  validations = 0;
  epochEnds = 0;
  trainEnds = 0;
  onBatchEnd(ctx: TrainContext) {
    if (ctx.train) this.trainBatches += 1;
  }
  onValidateBegin() {
    this.validations += 1;
  }
  onEpochEnd() {
    this.epochEnds += 1;
  }
  onTrainEnd() {
    this.trainEnds += 1;
  }
}

describe('TerminateOnNaN (stop when a train loss is NaN or ±Infinity)', () => {
  it('a NaN loss (bad input) at iteration 4: that batch ends, no validation, epochEnd and trainEnd run, status stopped', async () => {
    class PoisonInput extends Callback {
      override order = -50;
      onBatchBegin(ctx: TrainContext) {
        // A new tensor in ctx; the engine frees both it and the batch's own input.
        if (ctx.train && ctx.iteration === 4) ctx.lastInput = tf.fill(ctx.lastInput!.shape, Number.NaN);
      }
    }
    const nan = new TerminateOnNaN();
    const watch = new Watch();
    const learn = tinyLearner([new PoisonInput(), nan, watch]);
    const before = tf.memory().numTensors;
    const result = await learn.fit(3);
    expect(result.status).toBe('stopped');
    expect(result.iterations).toBe(5);
    expect(result.epochs).toBe(2);
    expect(nan.stoppedAt).toMatchObject({ epoch: 1, iteration: 4 });
    expect(Number.isNaN(nan.stoppedAt!.loss)).toBe(true);
    expect(watch.trainBatches).toBe(5);
    expect(watch.validations).toBe(1); // epoch 0 only
    expect(watch.epochEnds).toBe(2);
    expect(watch.trainEnds).toBe(1);
    expect(tf.memory().numTensors).toBe(before + learn.optimizer.numTensors);
  });

  it('an infinite loss stops too; finite losses never do', async () => {
    let scale = 1;
    const loss = (p: tf.Tensor, t: tf.Tensor) => tf.tidy(() => tf.mul(categoricalCrossentropy(p, t), scale) as tf.Scalar);
    class Blow extends Callback {
      override order = -50;
      onBatchBegin(ctx: TrainContext) {
        scale = ctx.train && ctx.iteration === 2 ? Number.POSITIVE_INFINITY : 1;
      }
    }
    const nan = new TerminateOnNaN();
    const learn = tinyLearner([new Blow(), nan], { loss });
    const result = await learn.fit(2);
    expect(result.status).toBe('stopped');
    expect(nan.stoppedAt).toEqual({ epoch: 0, iteration: 2, loss: Number.POSITIVE_INFINITY });

    const calm = new TerminateOnNaN();
    const ok = await tinyLearner([calm]).fit(2);
    expect(ok.status).toBe('completed');
    expect(calm.stoppedAt).toBeNull();
  });
});
