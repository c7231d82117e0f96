import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { EarlyStopping } from '../callbacks/earlyStopping.js';
import { Callback } from '../src/loop/callback.js';
import { ConfigError, StageError } from '../src/errors.js';
import { decodeState, encodeState } from '../src/io/stateCodec.js';
import type { TrainContext } from '../src/loop/context.js';
import { modelBytes, sameBytes, ScriptedMetrics, WeightsAtEpochEnd } from './support/scripted.js';
import { tinyLearner } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

class EpochEnds extends Callback {
  override order = 100;
  epochs: number[] = [];
  onEpochEnd(ctx: TrainContext) {
    this.epochs.push(ctx.epoch);
  }
}

async function runScripted(values: Record<string, number[]>, es: EarlyStopping, nEpochs = values[Object.keys(values)[0]!]!.length) {
  const seen = new EpochEnds();
  const learn = tinyLearner([new ScriptedMetrics(values), es, seen]);
  const result = await learn.fit(nEpochs);
  return { result, epochs: seen.epochs, learn };
}

describe('EarlyStopping (fastai: stop after `patience` epochs without improvement > minDelta)', () => {
  it('min mode: counts epochs without improvement and stops at the epoch the count reaches patience', async () => {
    // validLoss by epoch; best/wait worked out by hand from "improved ⇔ value < best − minDelta":
    //   e0 1.00 best → 1.00   e1 0.80 best → 0.80   e2 0.85 wait 1   e3 0.79 best → 0.79
    //   e4 0.81 wait 1        e5 0.80 wait 2 → stop (patience 2)
    const validLoss = [1.0, 0.8, 0.85, 0.79, 0.81, 0.8, 0.3, 0.2];
    const es = new EarlyStopping({ patience: 2 });
    const { result, epochs } = await runScripted({ validLoss }, es);
    expect(epochs).toEqual([0, 1, 2, 3, 4, 5]);
    expect(result.status).toBe('stopped');
    expect(result.epochs).toBe(6);
    expect(es.stoppedEpoch).toBe(5);
    expect(es.best).toBe(0.79);
    expect(es.bestEpoch).toBe(3);
  });

  it('minDelta: an improvement smaller than minDelta counts as none', async () => {
    // minDelta 0.02: e3's 0.79 is not < 0.80 − 0.02, so e2, e3 are two epochs without improvement.
    const validLoss = [1.0, 0.8, 0.85, 0.79, 0.81, 0.8, 0.3, 0.2];
    const es = new EarlyStopping({ patience: 2, minDelta: 0.02 });
    const { result, epochs } = await runScripted({ validLoss }, es);
    expect(epochs).toEqual([0, 1, 2, 3]);
    expect(result.status).toBe('stopped');
    expect(es.best).toBe(0.8);
  });

  it('auto mode maximizes accuracy; patience 1 stops at the first epoch without improvement', async () => {
    const accuracy = [0.5, 0.6, 0.6, 0.9];
    const es = new EarlyStopping({ monitor: 'accuracy' });
    expect(es.mode).toBe('max');
    const { epochs } = await runScripted({ accuracy }, es);
    // e2 equals the best (0.6): not an improvement.
    expect(epochs).toEqual([0, 1, 2]);
  });

  it('runs to the end (status completed) while the metric keeps improving', async () => {
    const es = new EarlyStopping({ patience: 1 });
    const { result } = await runScripted({ validLoss: [3, 2, 1] }, es);
    expect(result.status).toBe('completed');
    expect(es.wait).toBe(0);
  });

  it('monitor trainLoss needs no validation data and reads the mean train loss of the epoch', async () => {
    const es = new EarlyStopping({ monitor: 'trainLoss', patience: 5 });
    const losses: number[][] = [];
    class Losses extends Callback {
      onEpochBegin(ctx: TrainContext) {
        losses[ctx.epoch] = [];
      }
      onBatchEnd(ctx: TrainContext) {
        if (ctx.train) losses[ctx.epoch]!.push(ctx.lastLossValue!);
      }
    }
    const learn = tinyLearner([new Losses(), es], {}, 6, 0);
    await learn.fit(2);
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(es.lastValue).toBeCloseTo(mean(losses[1]!), 12);
  });

  it('restoreBest puts back exactly the weights at the end of the best epoch, and leaks no tensor', async () => {
    // Best validLoss at e1; stops at the end of e3 (patience 2).
    const validLoss = [1.0, 0.5, 0.6, 0.7, 0.1];
    const es = new EarlyStopping({ patience: 2, restoreBest: true });
    const probe = new WeightsAtEpochEnd(0);
    const learn = tinyLearner([new ScriptedMetrics({ validLoss }), probe, es]);
    const before = tf.memory().numTensors;
    const result = await learn.fit(5);
    expect(result.status).toBe('stopped');
    expect(result.epochs).toBe(4);
    const now = modelBytes(learn.model);
    expect(sameBytes(probe.byEpoch[3]!, probe.byEpoch[1]!)).toBe(false); // training moved the weights
    expect(sameBytes(now, probe.byEpoch[1]!)).toBe(true);
    expect(tf.memory().numTensors).toBe(before + learn.optimizer.numTensors);
  });

  it('without restoreBest the last weights stay', async () => {
    const probe = new WeightsAtEpochEnd(0);
    const learn = tinyLearner([new ScriptedMetrics({ validLoss: [1, 0.5, 0.6, 0.7] }), probe, new EarlyStopping({ patience: 2 })]);
    await learn.fit(4);
    expect(sameBytes(modelBytes(learn.model), probe.byEpoch[3]!)).toBe(true);
  });

  it('getState/setState (through the state codec and JSON) carry best, wait and the best weights into a resumed run', async () => {
    const first = new EarlyStopping({ patience: 3, restoreBest: true });
    const probe = new WeightsAtEpochEnd(0);
    const validLoss = [1, 0.5, 0.9, 0.7, 0.8, 0.1];
    const learnA = tinyLearner([new ScriptedMetrics({ validLoss }), probe, first]);
    await learnA.fit(3);
    expect(first.wait).toBe(1);
    const state = decodeState(JSON.parse(JSON.stringify(encodeState(first.getState())))) as Record<string, unknown>;
    expect(state).toEqual(first.getState());

    // Continue at epoch 3: two more epochs without improvement reach patience 3 at once.
    const resumed = new EarlyStopping({ patience: 3, restoreBest: true });
    const learnB = tinyLearner([new ScriptedMetrics({ validLoss }), resumed]);
    const result = await learnB.fit(6, { startEpoch: 3, callbackStates: { EarlyStopping: state } });
    expect(result.status).toBe('stopped');
    expect(result.epochs).toBe(2);
    expect(resumed.stoppedEpoch).toBe(4);
    expect(resumed.bestEpoch).toBe(1);
    expect(sameBytes(modelBytes(learnB.model), probe.byEpoch[1]!)).toBe(true);

    // A plain fit afterwards starts afresh (fastai's reset_on_fit); the instance moves to a new learner once detached.
    learnB.removeCallback(resumed);
    const learnC = tinyLearner([new ScriptedMetrics({ validLoss: [0.7, 0.8, 0.9] }), resumed]);
    await learnC.fit(3);
    expect(resumed.best).toBe(0.7);
  });

  it('a state carries no options: patience, restoreBest and monitor stay as constructed', () => {
    const old = new EarlyStopping({ patience: 2, monitor: 'accuracy' });
    old.wait = 1;
    const fresh = new EarlyStopping({ patience: 5, restoreBest: true });
    fresh.setState(old.getState());
    expect([fresh.patience, fresh.restoreBest, fresh.monitor, fresh.mode, fresh.wait]).toEqual([5, true, 'validLoss', 'min', 1]);
    // A state that does carry an option (as states saved before states and options were told apart did) is refused whole.
    expect(() => fresh.setState({ wait: 4, patience: 1 })).toThrow(ConfigError);
    expect(() => fresh.setState({ wait: 4, patience: 1 })).toThrow(/EarlyStopping\.setState: "patience" is not part of EarlyStopping's state/);
    expect(fresh.wait).toBe(1);
    expect(() => fresh.setState({ bestWeights: [{ shape: [2], dtype: 'float32', values: new Float32Array(3) }] })).toThrow(/holds 3 values for shape \[2\]/);
    expect(fresh.hasBestWeights).toBe(false);
  });

  it('bad options and a monitor that is not a metric are ConfigErrors that say what to do', async () => {
    expect(() => new EarlyStopping({ patience: 0 })).toThrow(ConfigError);
    expect(() => new EarlyStopping({ mode: 'up' as never })).toThrow(/'min', 'max' or 'auto'/);
    expect(() => new EarlyStopping({ minDelta: -1 })).toThrow(/minDelta/);
    const err = await tinyLearner([new EarlyStopping({ monitor: 'validAcc' })]).fit(1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StageError);
    expect((err as StageError).cause).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/choose one of 'validLoss', 'accuracy'/);
    const noValid = await tinyLearner([new EarlyStopping()], {}, 6, 0).fit(1).catch((e: unknown) => e);
    expect((noValid as Error).message).toMatch(/no validation data.*monitor 'trainLoss'/);
  });
});
