/**
 * A loss replaced in onBackwardBegin is the batch's loss for everything, not only for the
 * gradients: the value hooks and guards read (`ctx.lastLossValue`), the smoothed loss, the
 * Recorder, the trackers, TerminateOnNaN and the LR finder. The reference for each batch is
 * the loss recomputed outside the loop from the batch's own output and target (at lossBegin),
 * times the factor the replacing callback applies.
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TerminateOnNaN } from '../callbacks/terminateOnNan.js';
import { Callback } from '../src/loop/callback.js';
import type { TrainContext } from '../src/loop/context.js';
import { tinyLearner } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Multiplies each train batch's loss by `factor` at backwardBegin (differentiably). */
class ScaleLoss extends Callback {
  constructor(readonly factor: (ctx: TrainContext) => number) {
    super();
  }
  onBackwardBegin(ctx: TrainContext) {
    ctx.lastLoss = ctx.lastLoss!.mul(this.factor(ctx)) as tf.Scalar;
  }
}

/** The batch's loss recomputed from its output and target, before any hook could touch it. */
class IndependentLoss extends Callback {
  override order = -100;
  values: number[] = [];
  onLossBegin(ctx: TrainContext) {
    if (!ctx.train) return;
    const loss = tf.tidy(() => this.learn.loss.fn(ctx.lastOutput!, ctx.lastTarget!));
    this.values.push(loss.dataSync()[0]!);
    loss.dispose();
  }
}

/** What later hooks and a guard at backwardBegin see. */
class Seen extends Callback {
  override order = 100;
  atBatchEnd: Array<{ loss: number | null; smooth: number }> = [];
  atGuard: Array<number | null> = [];
  constructor() {
    super();
    // A guard of the stage whose hooks replaced the loss reads the replacement.
    this.guards = {
      skipBackward: (ctx) => {
        this.atGuard.push(ctx.lastLossValue);
        return false;
      },
    };
  }
  onBatchEnd(ctx: TrainContext) {
    if (ctx.train) this.atBatchEnd.push({ loss: ctx.lastLossValue, smooth: ctx.smoothLoss });
  }
}

/** fastai's debiased EMA (β = 0.98), in float64. */
function smoothed(values: number[]): number[] {
  let avg = 0;
  return values.map((v, i) => {
    avg = 0.98 * avg + 0.02 * v;
    return avg / (1 - 0.98 ** (i + 1));
  });
}

// Tensors read from the host, by tensor id (the loop must read each batch's loss once).
let reads: Map<number, number> | null = null;
const realDataSync = tf.Tensor.prototype.dataSync;
afterEach(() => {
  tf.Tensor.prototype.dataSync = realDataSync;
  reads = null;
});
function countReads() {
  reads = new Map();
  tf.Tensor.prototype.dataSync = function (this: tf.Tensor) {
    reads?.set(this.id, (reads.get(this.id) ?? 0) + 1);
    return realDataSync.call(this) as never;
  } as typeof realDataSync;
}

describe('a loss replaced at backwardBegin is the one recorded', () => {
  it('lastLossValue, smoothLoss, the Recorder and a backwardBegin guard see the replacement; the replaced loss is never read', async () => {
    const independent = new IndependentLoss();
    const seen = new Seen();
    const replaced: tf.Tensor[] = [];
    const original: tf.Tensor[] = [];
    class Track extends Callback {
      override order = 50;
      onBackwardBegin(ctx: TrainContext) {
        replaced.push(ctx.lastLoss!);
      }
    }
    class Before extends Callback {
      override order = -50;
      onBackwardBegin(ctx: TrainContext) {
        original.push(ctx.lastLoss!);
      }
    }
    const learn = tinyLearner([independent, new Before(), new ScaleLoss(() => 3), new Track(), seen], { recorder: true });
    countReads();
    await learn.fit(2);
    const counted = reads!;
    tf.Tensor.prototype.dataSync = realDataSync;

    const expected = independent.values.map((v) => 3 * v);
    expect(expected).toHaveLength(6);
    const close = (got: Array<number | null>, want: number[]) => {
      expect(got).toHaveLength(want.length);
      got.forEach((g, i) => expect(g).toBeCloseTo(want[i]!, 5));
    };
    close(seen.atBatchEnd.map((s) => s.loss), expected);
    close(seen.atBatchEnd.map((s) => s.smooth), smoothed(expected));
    close(learn.recorder!.losses, expected);
    close(learn.recorder!.smoothLosses, smoothed(expected));
    // The Recorder's (and every tracker's) epoch train loss is the mean of the replaced losses.
    close(learn.recorder!.epochs.map((e) => e.trainLoss), [0, 1].map((e) => (expected[3 * e]! + expected[3 * e + 1]! + expected[3 * e + 2]!) / 3));
    close(seen.atGuard, expected);
    // The loop reads the final losses in bulk (a copy kept on the device, test/host-reads), and
    // the loss a hook replaced never.
    expect(original.map((t) => counted.get(t.id) ?? 0)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('TerminateOnNaN stops on a loss made NaN at backwardBegin', async () => {
    const nan = new TerminateOnNaN();
    const learn = tinyLearner([new ScaleLoss((ctx) => (ctx.iteration === 1 ? Number.NaN : 1)), nan]);
    const result = await learn.fit(2);
    expect(result.status).toBe('stopped');
    expect(nan.stoppedAt?.iteration).toBe(1);
    expect(Number.isNaN(nan.stoppedAt!.loss)).toBe(true);
  });

  it("the LR finder's raw losses are the replaced ones", async () => {
    const independent = new IndependentLoss();
    const learn = tinyLearner([], { recorder: true });
    const result = await learn.lrFind({ numIt: 6, callbacks: [independent, new ScaleLoss(() => 0.5)] });
    expect(result.rawLosses.length).toBeGreaterThan(0);
    result.rawLosses.forEach((l, i) => expect(l).toBeCloseTo(0.5 * independent.values[i]!, 5));
    result.losses.forEach((l, i) => expect(l).toBeCloseTo(smoothed(independent.values.map((v) => 0.5 * v))[i]!, 5));
  });

  it('validation: the loss hooks see at batchEnd and validLoss are the loss of the final output', async () => {
    // A lossBegin hook replaces the validation output; the loss is computed from the replacement.
    class HalveOutput extends Callback {
      onLossBegin(ctx: TrainContext) {
        if (!ctx.train) ctx.lastOutput = ctx.lastOutput!.div(2);
      }
    }
    const perBatch: Array<{ seen: number | null; reference: number; size: number }> = [];
    let validLoss = Number.NaN;
    class Probe extends Callback {
      override order = 100;
      onBatchEnd(ctx: TrainContext) {
        if (ctx.train) return;
        const ref = tf.tidy(() => this.learn.loss.fn(ctx.lastOutput!, ctx.lastTarget!));
        perBatch.push({ seen: ctx.lastLossValue, reference: ref.dataSync()[0]!, size: ctx.lastTarget!.shape[0]! });
        ref.dispose();
      }
      onValidateEnd(ctx: TrainContext) {
        validLoss = ctx.lastMetrics!.validLoss!;
      }
    }
    await tinyLearner([new HalveOutput(), new Probe()]).fit(1);
    expect(perBatch).toHaveLength(2);
    for (const b of perBatch) expect(b.seen).toBeCloseTo(b.reference, 6);
    const n = perBatch.reduce((s, b) => s + b.size, 0);
    expect(validLoss).toBeCloseTo(perBatch.reduce((s, b) => s + b.reference * b.size, 0) / n, 6);
  });
});
