/**
 * `learn.grads = …` replaces the gradients the optimizer steps with, so it means something at
 * backwardEnd only (after the gradients exist, before the step). Elsewhere it is a ConfigError
 * naming the stage. What it replaces is freed — exactly that: not the tensors the new map
 * still holds, not the sum skipZero carries from earlier batches. Leaks are counted with
 * `tf.memory().numTensors`, less the optimizer's own tensors (SGD without momentum keeps no
 * buffers, but its hyper-parameter scalars are cached across steps), so a run ends where it began.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Callback } from '../src/loop/callback.js';
import { ConfigError, StageError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import { createOptimizer } from '../src/optim/optimizer.js';
import { tinyLearner } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Tensors that are not the optimizer's own (its cached hyper-parameter scalars are state, not leaks). */
const loopTensors = (learn: { optimizer: { numTensors: number } }) => tf.memory().numTensors - learn.optimizer.numTensors;

const sgd = () => ({ optimizer: createOptimizer({ kind: 'sgd', momentum: 0 }) });

/** The gradient of the batch's loss, computed outside the loop from the batch's own tensors. */
function independentGrads(ctx: TrainContext): Float32Array[] {
  const { learn } = ctx;
  const { value, grads } = tf.variableGrads(
    () => learn.loss.fn(learn.model.apply(ctx.lastInput!) as tf.Tensor, ctx.lastTarget!) as tf.Scalar,
    learn.params,
  );
  const out = learn.params.map((p) => grads[p.name]!.dataSync().slice() as Float32Array);
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

const seen = (ctx: TrainContext) => ctx.learn.params.map((p) => ctx.learn.grads![p.name]!.dataSync().slice() as Float32Array);

describe('learn.grads = … (backwardEnd only, frees exactly what it replaces)', () => {
  for (const stage of ['batchBegin', 'lossBegin', 'backwardBegin', 'stepEnd', 'batchEnd'] as const) {
    it(`set at ${stage}: a ConfigError naming the stage; nothing leaks, the learner fits again`, async () => {
      const hook = `on${stage[0]!.toUpperCase()}${stage.slice(1)}`;
      class SetsGrads extends Callback {}
      (SetsGrads.prototype as unknown as Record<string, unknown>)[hook] = function (this: Callback, ctx: TrainContext) {
        if (!ctx.train) return;
        const zeros: tf.NamedTensorMap = {};
        for (const p of ctx.learn.params) zeros[p.name] = tf.zerosLike(p);
        try {
          this.learn.grads = zeros;
        } catch (e) {
          tf.dispose(zeros); // refused: the map is still the caller's
          throw e;
        }
      };
      const learn = tinyLearner([new SetsGrads()], sgd());
      const before = loopTensors(learn);
      const err = (await learn.fit(1).catch((e: unknown) => e)) as StageError;
      expect(err).toBeInstanceOf(StageError);
      expect(err.stage).toBe(stage);
      expect(err.cause).toBeInstanceOf(ConfigError);
      expect((err.cause as ConfigError).code).toBe('CONFIG');
      expect(err.message).toMatch(new RegExp(`learn\\.grads can only be set at backwardEnd.*not at ${stage}`));
      expect(loopTensors(learn)).toBe(before);
      learn.removeCallback(learn.callbacks[0]!);
      await expect(learn.fit(1)).resolves.toMatchObject({ status: 'completed' });
    });
  }

  it('set outside fit: a ConfigError', () => {
    const learn = tinyLearner([]);
    expect(() => (learn.grads = {})).toThrow(ConfigError);
    expect(() => (learn.grads = {})).toThrow(/only be set during fit, at backwardEnd/);
  });

  it('a value that is not a map of tensors (or null) is a ConfigError', async () => {
    class Bad extends Callback {
      onBackwardEnd() {
        this.learn.grads = { w: 3 } as never;
      }
    }
    const err = (await tinyLearner([new Bad()], sgd()).fit(1).catch((e: unknown) => e)) as StageError;
    expect(err.cause).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/learn\.grads\["w"\] is not a tensor/);
  });

  it('the map replaced in place (entries swapped, then set again): the old tensors are freed', async () => {
    class HalveInPlace extends Callback {
      onBackwardEnd(ctx: TrainContext) {
        const g = ctx.learn.grads!;
        for (const name of Object.keys(g)) g[name] = g[name]!.div(2);
        ctx.learn.grads = g;
      }
    }
    const learn = tinyLearner([new HalveInPlace()], sgd());
    const before = loopTensors(learn);
    await learn.fit(2);
    learn.smoothLossState(); // reads the losses no callback read (held for the fit's smoothed loss)
    expect(loopTensors(learn)).toBe(before);
  });

  it('a new map sharing some tensors with the old one: the shared ones survive to the step, the rest is freed', async () => {
    const pairs: Array<[Float32Array[], Float32Array[]]> = [];
    class ScaleFirst extends Callback {
      onBackwardEnd(ctx: TrainContext) {
        const g = ctx.learn.grads!;
        const [first, ...rest] = Object.keys(g);
        const next: tf.NamedTensorMap = { [first!]: g[first!]!.mul(0) };
        for (const name of rest) next[name] = g[name]!; // kept: must not be freed
        ctx.learn.grads = next;
      }
    }
    class Check extends Callback {
      override order = -1;
      onBackwardEnd(ctx: TrainContext) {
        const want = independentGrads(ctx);
        want[0] = want[0]!.map(() => 0);
        pairs.push([want, []]);
      }
    }
    class After extends Callback {
      override order = 1;
      onBackwardEnd(ctx: TrainContext) {
        pairs.at(-1)![1] = seen(ctx);
      }
    }
    const learn = tinyLearner([new Check(), new ScaleFirst(), new After()], sgd());
    const before = loopTensors(learn);
    await learn.fit(1);
    learn.smoothLossState(); // reads the losses no callback read (held for the fit's smoothed loss)
    expect(loopTensors(learn)).toBe(before);
    expect(pairs).toHaveLength(3);
    for (const [want, got] of pairs) want.forEach((w, i) => w.forEach((v, j) => expect(got[i]![j]).toBeCloseTo(v, 5)));
  });

  it('learn.grads = null while accumulating keeps the sum carried by skipZero', async () => {
    // Batch 0: accumulate (skipStep, skipZero). Batch 1: grads = null (this batch adds nothing),
    // accumulate again. Batch 2: step with the carried sum plus its own gradients: g0 + g2.
    let g0: Float32Array[] = [];
    let want: Float32Array[] = [];
    let got: Float32Array[] = [];
    class Accumulate extends Callback {
      onBackwardEnd(ctx: TrainContext) {
        if (ctx.epoch !== 0) return;
        if (ctx.batchIndex === 0) g0 = independentGrads(ctx);
        if (ctx.batchIndex === 1) ctx.learn.grads = null;
        if (ctx.batchIndex === 2) {
          want = independentGrads(ctx).map((g, i) => g.map((v, j) => v + g0[i]![j]!));
          got = seen(ctx);
        }
        return ctx.batchIndex < 2 ? { skipStep: true } : undefined;
      }
      onStepEnd(ctx: TrainContext) {
        if (ctx.epoch === 0 && ctx.batchIndex < 2) return { skipZero: true };
      }
    }
    const learn = tinyLearner([new Accumulate()], sgd());
    const before = loopTensors(learn);
    await learn.fit(1);
    learn.smoothLossState(); // reads the losses no callback read (held for the fit's smoothed loss)
    expect(loopTensors(learn)).toBe(before);
    expect(got).toHaveLength(want.length);
    want.forEach((w, i) => w.forEach((v, j) => expect(got[i]![j]).toBeCloseTo(v, 5)));
  });

  it('replacing the carried sum itself (skipBackward while accumulating) frees nothing it still needs', async () => {
    // Batch 0 accumulates; batch 1 skips backward, so its backwardEnd sees the carried sum and
    // replaces it with a doubled copy; the step of batch 1 uses 2·g0. Nothing leaks.
    let g0: Float32Array[] = [];
    let got: Float32Array[] = [];
    class Run extends Callback {
      onBackwardBegin(ctx: TrainContext) {
        if (ctx.epoch === 0 && ctx.batchIndex === 1) return { skipBackward: true };
      }
      onBackwardEnd(ctx: TrainContext) {
        if (ctx.epoch !== 0) return;
        if (ctx.batchIndex === 0) {
          g0 = independentGrads(ctx);
          return { skipStep: true };
        }
        if (ctx.batchIndex === 1) {
          const doubled: tf.NamedTensorMap = {};
          for (const [name, g] of Object.entries(ctx.learn.grads!)) doubled[name] = g.mul(2);
          ctx.learn.grads = doubled;
          got = seen(ctx);
        }
      }
      onStepEnd(ctx: TrainContext) {
        if (ctx.epoch === 0 && ctx.batchIndex === 0) return { skipZero: true };
      }
    }
    const learn = tinyLearner([new Run()], sgd());
    const before = loopTensors(learn);
    await learn.fit(1);
    learn.smoothLossState(); // reads the losses no callback read (held for the fit's smoothed loss)
    expect(loopTensors(learn)).toBe(before);
    g0.forEach((w, i) => w.forEach((v, j) => expect(got[i]![j]).toBeCloseTo(2 * v, 5)));
  });

  it('gradients set as tf.Variables are each freed once: the tensors they were made from keep their data', async () => {
    // tfjs frees a Variable's data again on a second dispose (no isDisposed guard), so a
    // gradient freed twice would take the data of the tensor it shares it with.
    const bases: tf.Tensor[] = [];
    class VariableGrads extends Callback {
      onBackwardEnd(ctx: TrainContext) {
        const out: tf.NamedTensorMap = {};
        for (const [name, g] of Object.entries(ctx.learn.grads!)) {
          const base = g.clone();
          bases.push(base);
          out[name] = tf.variable(base, false);
        }
        ctx.learn.grads = out;
      }
    }
    const learn = tinyLearner([new VariableGrads()], sgd());
    const before = loopTensors(learn);
    await learn.fit(1);
    learn.smoothLossState(); // reads the losses no callback read (held for the fit's smoothed loss)
    expect(bases.length).toBeGreaterThan(0);
    // What is left is exactly the bases the hook kept, each still readable.
    expect(loopTensors(learn) - before).toBe(bases.length);
    for (const b of bases) expect(() => b.dataSync()).not.toThrow();
    tf.dispose(bases);
    expect(loopTensors(learn)).toBe(before);
  });
});
