import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SaveModel } from '../callbacks/saveModel.js';
import { TerminateOnNaN } from '../callbacks/terminateOnNan.js';
import { readWeights } from '../src/io/weightsFile.js';
import { Callback } from '../src/loop/callback.js';
import { categoricalCrossentropy } from '../src/losses.js';
import type { TrainContext } from '../src/loop/context.js';
import { modelBytes, sameBytes, WeightsAtEpochEnd } from './support/scripted.js';
import { tinyLearner } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Makes the train batch at `iteration` a NaN input: its loss and gradients are NaN, and so are the weights after its step. */
class PoisonInput extends Callback {
  override order = -50;
  constructor(readonly iteration: number) {
    super();
  }
  onBatchBegin(ctx: TrainContext) {
    // A new tensor in ctx; the engine frees both it and the batch's own input.
    if (ctx.train && ctx.iteration === this.iteration) ctx.lastInput = tf.fill(ctx.lastInput!.shape, Number.NaN);
  }
}

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
    const nan = new TerminateOnNaN();
    const watch = new Watch();
    const learn = tinyLearner([new PoisonInput(4), nan, watch]);
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

  it("with SaveModel({ every: 'epoch' }): the stopped epoch's NaN weights are not written, the earlier epochs' files stay", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trainchart-nan-'));
    dirs.push(dir);
    const weights = new WeightsAtEpochEnd(0);
    const save = new SaveModel({ every: 'epoch', dir, name: 'm' });
    const learn = tinyLearner([new PoisonInput(4), new TerminateOnNaN(), weights, save]);
    const result = await learn.fit(3);
    expect(result.status).toBe('stopped');
    expect(result.epochs).toBe(2);
    // The run did reach epochEnd of epoch 1 with weights that are not finite.
    expect(modelBytes(learn.model).some((b) => new Float32Array(b.buffer, b.byteOffset, b.length / 4).some((v) => !Number.isFinite(v)))).toBe(true);
    expect(readdirSync(dir)).toEqual(['m_0.weights']);
    expect(save.saved).toEqual([join(dir, 'm_0.weights')]);
    const held = readWeights(join(dir, 'm_0.weights')).values.map((v) => Buffer.from(v.slice().buffer));
    expect(sameBytes(held, weights.byEpoch[0]!)).toBe(true);
  });

  it('its state is stoppedAt', async () => {
    const nan = new TerminateOnNaN();
    await tinyLearner([new PoisonInput(1), nan]).fit(1);
    expect(nan.getState()).toEqual({ stoppedAt: nan.stoppedAt });
    expect(nan.stoppedAt).toMatchObject({ epoch: 0, iteration: 1 });
  });
});
