import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Callback } from '../src/loop/callback.js';
import type { TrainContext } from '../src/loop/context.js';
import { createOptimizer } from '../src/optim/optimizer.js';
import { tinyLearner } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** The gradient of the batch's loss, computed outside the loop from the same tensors. */
function independentGrads(ctx: TrainContext, scale = 1): Float32Array[] {
  const { learn } = ctx;
  const { grads } = tf.variableGrads(
    () => learn.loss.fn(learn.model.apply(ctx.lastInput!) as tf.Tensor, ctx.lastTarget!).mul(scale) as tf.Scalar,
    learn.params,
  );
  const out = learn.params.map((p) => grads[p.name]!.dataSync().slice() as Float32Array);
  tf.dispose(grads);
  return out;
}

function gradsSeen(ctx: TrainContext): Float32Array[] {
  return ctx.learn.params.map((p) => ctx.learn.grads![p.name]!.dataSync().slice() as Float32Array);
}

function expectClose(a: Float32Array[], b: Float32Array[]) {
  expect(a.length).toBe(b.length);
  a.forEach((arr, i) => arr.forEach((v, j) => expect(v).toBeCloseTo(b[i]![j]!, 5)));
}

describe('explicit gradients: the stages mean what the contract says', () => {
  it('backwardEnd sees the gradients of the batch loss', async () => {
    const pairs: Array<[Float32Array[], Float32Array[]]> = [];
    class Probe extends Callback {
      onBackwardEnd(ctx: TrainContext) {
        pairs.push([gradsSeen(ctx), independentGrads(ctx)]);
      }
    }
    await tinyLearner([new Probe()], { optimizer: createOptimizer({ kind: 'sgd', momentum: 0 }) }).fit(1);
    expect(pairs).toHaveLength(3);
    for (const [seen, expected] of pairs) expectClose(seen, expected);
  });

  it('a loss replaced at backwardBegin is the one the gradients are taken of', async () => {
    const pairs: Array<[Float32Array[], Float32Array[]]> = [];
    class TripleLoss extends Callback {
      onBackwardBegin(ctx: TrainContext) {
        ctx.lastLoss = ctx.lastLoss!.mul(3) as tf.Scalar;
      }
      onBackwardEnd(ctx: TrainContext) {
        pairs.push([gradsSeen(ctx), independentGrads(ctx, 3)]);
      }
    }
    await tinyLearner([new TripleLoss()], { optimizer: createOptimizer({ kind: 'sgd', momentum: 0 }) }).fit(1);
    expect(pairs).toHaveLength(3);
    for (const [seen, expected] of pairs) expectClose(seen, expected);
  });

  it('gradients replaced at backwardEnd are the ones the optimizer steps with', async () => {
    class ZeroGrads extends Callback {
      before: Float32Array[] = [];
      after: Float32Array[] = [];
      onBackwardEnd(ctx: TrainContext) {
        const zeros: tf.NamedTensorMap = {};
        for (const p of ctx.learn.params) zeros[p.name] = tf.zerosLike(p);
        ctx.learn.grads = zeros;
        if (ctx.batchIndex === 0) this.before = ctx.learn.params.map((p) => p.dataSync().slice() as Float32Array);
      }
      onStepEnd(ctx: TrainContext) {
        if (ctx.batchIndex === 0) this.after = ctx.learn.params.map((p) => p.dataSync().slice() as Float32Array);
      }
    }
    const zero = new ZeroGrads();
    const learn = tinyLearner([zero], { optimizer: createOptimizer({ kind: 'sgd', momentum: 0 }) });
    const tensorsBefore = tf.memory().numTensors;
    await learn.fit(1);
    learn.smoothLossState(); // reads the losses no callback read (held for the fit's smoothed loss)
    expect(zero.after).toEqual(zero.before);
    // Nothing leaked: what is left is what the optimizer owns (its cached hyper-parameter scalars).
    expect(tf.memory().numTensors).toBe(tensorsBefore + learn.optimizer.numTensors);
  });

  it('lr set by a hook is the lr of the next step', async () => {
    class Lr extends Callback {
      deltas: number[] = [];
      private w0 = 0;
      onBatchBegin(ctx: TrainContext) {
        ctx.learn.lr = [0.1, 0.2, 0.4][ctx.batchIndex]!;
      }
      onBackwardEnd(ctx: TrainContext) {
        const p = ctx.learn.params[0]!;
        this.w0 = p.dataSync()[0]!;
        this.deltas.push(ctx.learn.grads![p.name]!.dataSync()[0]! * ctx.learn.lr);
      }
      onStepEnd(ctx: TrainContext) {
        const moved = this.w0 - ctx.learn.params[0]!.dataSync()[0]!;
        expect(moved).toBeCloseTo(this.deltas.at(-1)!, 6);
      }
    }
    const cb = new Lr();
    await tinyLearner([cb], { optimizer: createOptimizer({ kind: 'sgd', momentum: 0 }) }).fit(1);
    expect(cb.deltas).toHaveLength(3);
  });
});
