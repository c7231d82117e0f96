/**
 * `learn.stop()` and `fit(n, { signal })` (issue 8): the run ends after the current train
 * batch through the machine's own stopTraining path — the epoch under way skips its
 * remaining batches, validates and ends (contract §3, stopTraining), trainEnd runs, and the
 * status is `stopped`. Expectations are the contract's, checked on the stage trace.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import { stagesOf, tinyLearner, TraceCallback, TRAIN_BATCH, VALID_BATCH, type TraceEntry } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Calls learn.stop() in the batchEnd of train batch `at` of epoch 0. */
class StopAt extends Callback {
  constructor(readonly at: number) {
    super();
  }
  onBatchEnd(ctx: TrainContext) {
    if (ctx.train && ctx.epoch === 0 && ctx.batchIndex === this.at) this.learn.stop();
  }
}

describe('learn.stop() and fit(n, { signal })', () => {
  it('stop() from a hook: the batch finishes, the epoch validates and ends, trainEnd runs, status stopped', async () => {
    const trace: TraceEntry[] = [];
    // 6 samples in batches of 2: 3 train batches; 4 validation samples: 2 batches.
    const learn = tinyLearner([new TraceCallback('t', trace), new StopAt(1)]);
    const result = await learn.fit(3);
    expect(result.status).toBe('stopped');
    expect(result.iterations).toBe(2);
    expect(result.epochs).toBe(1);
    expect(stagesOf(trace, 't')).toEqual(['trainBegin', 'epochBegin', ...TRAIN_BATCH, ...TRAIN_BATCH, 'validateBegin(valid)', ...VALID_BATCH, ...VALID_BATCH, 'validateEnd(valid)', 'epochEnd', 'trainEnd']);
  });

  it('an AbortSignal aborted from outside during a batch stops after that batch', async () => {
    const trace: TraceEntry[] = [];
    const controller = new AbortController();
    const learn = tinyLearner([new TraceCallback('t', trace)]);
    const result = await learn.fit(3, {
      signal: controller.signal,
      // Outside the callbacks, as a signal handler would: while epoch 1's batch 0 is under way.
      inspect: (e) => {
        const s = e.type === '@xstate.snapshot' ? (e.snapshot as unknown as { value: unknown; context?: { epoch: number; batchIndex: number } }) : null;
        if (s?.context && JSON.stringify(s.value) === '{"epoch":{"train":"backwardEnd"}}' && s.context.epoch === 1 && s.context.batchIndex === 0) controller.abort();
      },
    });
    expect(result.status).toBe('stopped');
    expect(result.iterations).toBe(4); // 3 of epoch 0, 1 of epoch 1
    expect(stagesOf(trace, 't').filter((s) => s === 'epochEnd')).toHaveLength(2);
    expect(stagesOf(trace, 't').at(-1)).toBe('trainEnd');
    // The listener is gone: the next fit (no signal) trains to the end.
    expect((await learn.fit(1)).status).toBe('completed');
  });

  it('a signal aborted before the fit runs no epoch; stop() outside a fit does nothing', async () => {
    const trace: TraceEntry[] = [];
    const learn = tinyLearner([new TraceCallback('t', trace)]);
    const controller = new AbortController();
    controller.abort();
    const result = await learn.fit(2, { signal: controller.signal });
    expect(result).toMatchObject({ status: 'stopped', epochs: 0, iterations: 0 });
    expect(stagesOf(trace, 't')).toEqual(['trainBegin', 'trainEnd']);
    learn.stop();
    expect((await learn.fit(1)).status).toBe('completed');
  });

  it('a signal that is not an AbortSignal is a ConfigError', async () => {
    const learn = tinyLearner([]);
    await expect(learn.fit(1, { signal: { aborted: false } as never })).rejects.toThrow(ConfigError);
    await expect(learn.fit(1, { signal: 'stop' as never })).rejects.toThrow(/signal must be an AbortSignal/);
  });
});
