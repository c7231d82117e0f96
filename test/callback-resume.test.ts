import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import { tinyLearner } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Counts train batches over a run; resets at trainBegin, as most stateful callbacks do. */
class BatchCounter extends Callback {
  count = 0;
  seenAtJump: number | null = null;
  iterations: number[] = [];
  onTrainBegin() {
    this.count = 0;
  }
  onBatchEnd(ctx: TrainContext) {
    if (!ctx.train) return;
    this.count += 1;
    this.iterations.push(ctx.iteration);
  }
  jumpToEpoch() {
    this.seenAtJump = this.count;
  }
}

describe('callback state across a resume (fit with startEpoch and callbackStates)', () => {
  it('states are restored after onTrainBegin and before jumpToEpoch, so the resumed run ends like an uninterrupted one', async () => {
    const whole = new BatchCounter();
    await tinyLearner([whole]).fit(4);

    const first = new BatchCounter();
    const learnA = tinyLearner([first]);
    await learnA.fit(2);
    const states = learnA.callbackStates();
    expect(states).toEqual({ BatchCounter: { count: 6, seenAtJump: null, iterations: [0, 1, 2, 3, 4, 5] } });

    const resumed = new BatchCounter();
    const learnB = tinyLearner([resumed]);
    const result = await learnB.fit(4, { startEpoch: 2, callbackStates: states });
    expect(resumed.seenAtJump).toBe(6);
    expect(resumed.count).toBe(whole.count);
    // iteration counts the whole run: the resumed epochs continue at 6, as the uninterrupted run did
    expect(resumed.iterations).toEqual(whole.iterations);
    // …while the fit's own count is the batches it trained: epochs 2 and 3, 3 batches each.
    expect(result.iterations).toBe(6);
    expect(result.epochs).toBe(2);
  });

  it('two callbacks of the same name get distinct keys', () => {
    const learn = tinyLearner([new BatchCounter(), new BatchCounter()]);
    expect(Object.keys(learn.callbackStates())).toEqual(['BatchCounter', 'BatchCounter#2']);
  });

  it('bad resume options are ConfigErrors and change nothing', async () => {
    const learn = tinyLearner([new BatchCounter()]);
    const lr = learn.lr;
    await expect(learn.fit(2, { lr: 0.5, callbackStates: {} })).rejects.toThrow(/give startEpoch > 0/);
    await expect(learn.fit(2, { startEpoch: -1 })).rejects.toThrow(ConfigError);
    await expect(learn.fit(2, { startEpoch: 1, callbackStates: { Nope: {} } })).rejects.toThrow(/"Nope", but no callback/);
    expect(learn.lr).toBe(lr);
  });
});

describe('where a resumed run starts has one source', () => {
  it("a hook's { epoch } cannot override fit's startEpoch", async () => {
    class Jumper extends Callback {
      onTrainBegin() {
        return { epoch: 0 };
      }
    }
    const learn = tinyLearner([new Jumper()]);
    await expect(learn.fit(3, { startEpoch: 2 })).rejects.toThrow(/returned \{ epoch: 0 \}, but this fit resumes at startEpoch 2/);
  });

  it("the learner's own callback passed again to fit runs once and stays attached", async () => {
    const counter = new BatchCounter();
    const learn = tinyLearner([counter]);
    await learn.fit(1, { callbacks: [counter, counter] });
    expect(counter.count).toBe(3);
    await learn.fit(1);
    expect(counter.count).toBe(3);
    expect(counter.learn).toBe(learn);
  });
});
