/**
 * The loop reads nothing from the device that nobody asked for (issue 10): a host read
 * (`dataSync`, `data`) waits for every queued kernel — on a GPU backend, the whole pipeline.
 * Counted, not timed: every read of any tensor goes through the backend's `readSync` or `read`,
 * so those two are wrapped and the calls counted during real fits.
 *
 * Reference (the contract of src/loop/lossLog.ts): the train losses stay on the device and are
 * read in one host read per epoch when callbacks want them (the Recorder and Progress do, by
 * `ctx.readLossLater`); with no reader, none — the fit's smoothed loss reads them when asked
 * for (`FitResult.smoothLoss`, `smoothLossState()`, or `dispose()`); a validation pass
 * reads its loss and metrics once; a hook that reads `ctx.lastLossValue` gets it on demand.
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CSVLogger } from '../callbacks/csvLogger.js';
import { Progress } from '../callbacks/progress.js';
import { Callback } from '../src/loop/callback.js';
import type { TrainContext } from '../src/loop/context.js';
import { DataLoader } from '../src/data/dataLoader.js';
import { Learner, type FitResult } from '../src/learner.js';
import type { FitObserver } from '../src/loop/observer.js';
import * as v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mlp } from '../src/models/presets.js';

const N_BATCHES = 40;
const BATCH = 8;
const EPOCHS = 3;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

let restore: (() => void) | null = null;
afterEach(() => {
  restore?.();
  restore = null;
});

/** Counts every host read of the current backend from now on. */
function countReads(): { n: number } {
  const backend = tf.backend() as unknown as { readSync: (id: unknown) => unknown; read: (id: unknown) => Promise<unknown> };
  const { readSync, read } = backend;
  const count = { n: 0 };
  backend.readSync = function (this: unknown, id: unknown) {
    count.n += 1;
    return readSync.call(this, id);
  };
  backend.read = function (this: unknown, id: unknown) {
    count.n += 1;
    return read.call(this, id);
  };
  restore = () => {
    backend.readSync = readSync;
    backend.read = read;
  };
  return count;
}

function loaders(withValidation: boolean) {
  const make = (n: number, seed: number) => {
    const x = new Float32Array(n * 20);
    const y = new Float32Array(n * 3);
    let s = seed;
    for (let i = 0; i < x.length; i++) x[i] = ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
    for (let i = 0; i < n; i++) y[i * 3 + (i % 3)] = 1;
    return DataLoader.fromArrays(x, y, { batchSize: BATCH, xShape: [20], yShape: [3], shuffle: true, seed });
  };
  return { train: make(N_BATCHES * BATCH, 7), valid: withValidation ? make(5 * BATCH, 11) : null };
}

function learner(opts: { withValidation: boolean; recorder: boolean; callbacks?: Callback[] }) {
  const { train, valid } = loaders(opts.withValidation);
  return new Learner({
    model: mlp({ inputShape: [20], hidden: [16], classes: 3, seed: 1 }),
    data: valid ? { train, valid } : { train },
    loss: 'categoricalCrossentropy',
    optimizer: 'adam',
    metrics: opts.withValidation ? ['accuracy'] : [],
    recorder: opts.recorder,
    progress: false,
    callbacks: opts.callbacks ?? [],
  });
}

/** Progress as a pipe sees it (no bar: its table rows only), the default off a terminal. */
const pipedProgress = () => new Progress({ stream: { write: () => true, isTTY: false } });

/** Notes the reads made by the time trainEnd's hooks run. */
class ReadsAtTrainEnd extends Callback {
  seen = -1;
  constructor(private readonly count: { n: number }) {
    super();
  }
  onTrainEnd() {
    this.seen = this.count.n;
  }
}

describe('host reads per train batch (counted)', () => {
  it('with the default callbacks (Recorder, Progress): one read per epoch, ≤ 0.1 per train batch; the records are complete', async () => {
    const learn = learner({ withValidation: false, recorder: true, callbacks: [pipedProgress()] });
    const count = countReads();
    const result = await learn.fit(EPOCHS);
    const reads = count.n;
    restore!();
    expect(reads).toBe(EPOCHS);
    expect(reads / (EPOCHS * N_BATCHES)).toBeLessThanOrEqual(0.1);
    // Read in bulk, yet every batch's loss is there, finite, and the smoothed loss is the EMA of them.
    const { losses, smoothLosses, epochs } = learn.recorder!;
    expect(losses).toHaveLength(EPOCHS * N_BATCHES);
    expect(losses.every(Number.isFinite)).toBe(true);
    let avg = 0;
    losses.forEach((l, i) => {
      avg = 0.98 * avg + 0.02 * l;
      expect(smoothLosses[i]).toBeCloseTo(avg / (1 - 0.98 ** (i + 1)), 10);
    });
    expect(epochs.map((e) => e.trainLoss)).toEqual(
      [0, 1, 2].map((e) => losses.slice(e * N_BATCHES, (e + 1) * N_BATCHES).reduce((a, b) => a + b, 0) / N_BATCHES),
    );
    expect(result.smoothLoss).toBe(smoothLosses.at(-1));
  });

  it('with no callback reading the loss: no read at all (0 per train batch); the result’s smoothed loss is read when asked, and is the eager one', async () => {
    const count = { n: 0 };
    const atEnd = new ReadsAtTrainEnd(count);
    const learn = learner({ withValidation: false, recorder: false, callbacks: [atEnd] });
    const counted = countReads();
    Object.defineProperty(count, 'n', { get: () => counted.n });
    const result = await learn.fit(EPOCHS);
    expect(atEnd.seen).toBe(0);
    expect(counted.n).toBe(0);
    // Asked for: every batch's loss in one read, smoothed as an eager reader smooths them.
    const smoothLoss = result.smoothLoss;
    expect(counted.n).toBe(1);
    expect(result.smoothLoss).toBe(smoothLoss);
    expect(counted.n).toBe(1);
    restore!();
    restore = null;
    const eager = learner({ withValidation: false, recorder: true });
    await eager.fit(EPOCHS);
    const losses = eager.recorder!.losses;
    let avg = 0;
    for (const l of losses) avg = 0.98 * avg + 0.02 * l;
    expect(smoothLoss).toBeCloseTo(avg / (1 - 0.98 ** losses.length), 12);
    learn.dispose();
    eager.dispose();
  });

  it('fits nobody reads make no host read and hold one tensor between them; any result read reads all of them at once, each its own', async () => {
    const learn = learner({ withValidation: false, recorder: false });
    const eagerTwin = learner({ withValidation: false, recorder: true });
    const count = countReads();
    const before = tf.memory().numTensors;
    const first = await learn.fit(1);
    const afterOne = tf.memory().numTensors;
    const second = await learn.fit(2);
    const third = await learn.fit(1);
    expect(count.n).toBe(0);
    // However many fits are unread, their losses are one tensor (joined on the device).
    expect(tf.memory().numTensors).toBe(afterOne);
    expect(afterOne - before).toBeGreaterThan(0);
    const secondLoss = second.smoothLoss;
    expect(count.n).toBe(1);
    const values = [first.smoothLoss, third.smoothLoss];
    expect(count.n).toBe(1);
    restore!();
    restore = null;
    // Each fit smooths its own losses from a fresh start (fit's default), as the eager twin does.
    const smoothed = (ls: number[]) => ls.reduce((avg, l) => 0.98 * avg + 0.02 * l, 0) / (1 - 0.98 ** ls.length);
    const r1 = await eagerTwin.fit(1);
    expect(r1.smoothLoss).toBeCloseTo(smoothed(eagerTwin.recorder!.losses), 12);
    const r2 = await eagerTwin.fit(2);
    const r3 = await eagerTwin.fit(1);
    expect([values[0], secondLoss, values[1]]).toEqual([r1.smoothLoss, r2.smoothLoss, r3.smoothLoss]);
    learn.dispose();
    eagerTwin.dispose();
  });

  it('an unread fit’s losses are read by smoothLossState(), and by dispose() (results still answer), never lost', async () => {
    const learn = learner({ withValidation: false, recorder: false });
    const result = await learn.fit(1);
    const count = countReads();
    const state = learn.smoothLossState()!;
    expect(count.n).toBe(1);
    expect(state.count).toBe(N_BATCHES);
    expect(result.smoothLoss).toBe(state.avg / (1 - 0.98 ** N_BATCHES));
    const other = learner({ withValidation: false, recorder: false });
    const unread = await other.fit(1);
    expect(count.n).toBe(1);
    const held = tf.memory().numTensors;
    other.dispose();
    expect(count.n).toBe(2);
    // The learner's model and optimizer are freed, and the held losses with them.
    expect(tf.memory().numTensors).toBeLessThan(held);
    expect(unread.smoothLoss).toBe(result.smoothLoss);
    expect(count.n).toBe(2);
    learn.dispose();
  });

  it('an observer reading ctx after trainEnd (its last event, runEnded) gets every loss; smoothLossState() in runEnded too', async () => {
    const seen: Array<{ where: string; smooth: number; last: number | null; state: number | null }> = [];
    let last: { ctx: TrainContext } | null = null;
    let learn: Learner | null = null;
    const observer: FitObserver = {
      callbacks: [],
      loopObserver: { afterEvent: (_snapshot, ctx) => void (last = { ctx }) },
      runStarting: async () => {},
      runEnded: async () => {
        const { ctx } = last!;
        seen.push({ where: 'runEnded', smooth: ctx.smoothLoss, last: ctx.lastLossValue, state: learn!.smoothLossState()!.count });
      },
      close: async () => {},
    };
    learn = learner({ withValidation: false, recorder: false });
    const count = countReads();
    const result = await learn.fit(2, { viz: observer });
    expect(count.n).toBe(1);
    restore!();
    restore = null;
    const twin = learner({ withValidation: false, recorder: true });
    const reference = await twin.fit(2);
    expect(seen).toEqual([{ where: 'runEnded', smooth: reference.smoothLoss, last: twin.recorder!.losses.at(-1), state: 2 * N_BATCHES }]);
    expect(result.smoothLoss).toBe(reference.smoothLoss);
    learn.dispose();
    twin.dispose();
  });

  it('an observer whose runEnded rejects: fit rejects with it, and the unread losses are still the learner’s (no tensor lost)', async () => {
    const observer: FitObserver = {
      callbacks: [],
      loopObserver: { afterEvent: () => {} },
      runStarting: async () => {},
      runEnded: async () => {
        throw new Error('observer broke');
      },
      close: async () => {},
    };
    const learn = learner({ withValidation: false, recorder: false });
    const before = tf.memory().numTensors;
    await learn.fit(1).catch(() => {});
    const model = learn.model.weights.length;
    const afterFit = tf.memory().numTensors;
    await expect(learn.fit(1, { viz: observer })).rejects.toThrow('observer broke');
    // One fit's losses or two, they are one held tensor; reading them frees it.
    expect(tf.memory().numTensors).toBe(afterFit);
    learn.smoothLossState();
    expect(tf.memory().numTensors).toBe(afterFit - 1);
    learn.dispose();
    // Disposed: the model's weights and the optimizer's state are gone, and nothing else this learner made.
    expect(tf.memory().numTensors).toBe(before - model);
  });

  it('a kept result does not keep its learner (the engine, the data) alive', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // In a function of its own: a suspended async function may keep its dead locals.
    const fitOnce = async (recorder: boolean) => {
      const learn = learner({ withValidation: false, recorder });
      const result = await learn.fit(1);
      learn.dispose();
      return { result, ref: new WeakRef(learn) };
    };
    const runs = [await fitOnce(false), await fitOnce(true)];
    const results: FitResult[] = runs.map((r) => r.result);
    const refs: Array<WeakRef<Learner>> = runs.map((r) => r.ref);
    // WeakRefs are cleared only after the job that made them: let it end, collect, look.
    await new Promise((r) => setTimeout(r, 0));
    gc();
    await new Promise((r) => setTimeout(r, 0));
    expect(refs.map((r) => r.deref() === undefined)).toEqual([true, true]);
    expect(results.map((r) => Number.isFinite(r.smoothLoss))).toEqual([true, true]);
  });

  it('a validation pass reads its loss and metrics once, however many batches it has', async () => {
    const learn = learner({ withValidation: true, recorder: true, callbacks: [pipedProgress()] });
    const count = countReads();
    const result = await learn.fit(EPOCHS);
    expect(count.n).toBe(2 * EPOCHS);
    expect(Object.keys(result.metrics!)).toEqual(['validLoss', 'accuracy']);
  });

  it('a hook reading ctx.lastLossValue gets it on demand: one read per batch (so the count above can fail)', async () => {
    const values: number[] = [];
    class Eager extends Callback {
      onBatchEnd(ctx: TrainContext) {
        if (ctx.train) values.push(ctx.lastLossValue!);
      }
    }
    const learn = learner({ withValidation: false, recorder: true, callbacks: [new Eager()] });
    const count = countReads();
    await learn.fit(1);
    expect(count.n).toBe(N_BATCHES);
    expect(values).toEqual(learn.recorder!.losses);
  });

  it('a long run nobody reads holds a bounded number of tensors, and its smoothed loss is exactly the eager one', async () => {
    class TensorsAtBatchEnd extends Callback {
      counts: number[] = [];
      onBatchEnd() {
        this.counts.push(tf.memory().numTensors);
      }
    }
    const watch = new TensorsAtBatchEnd();
    const lazy = learner({ withValidation: false, recorder: false, callbacks: [watch] });
    const count = countReads();
    const lazyResult = await lazy.fit(EPOCHS * 5);
    expect(count.n).toBe(0);
    restore!();
    restore = null;
    // 600 batches kept on the device: packed every 256, so never more than ~256 scalars at once.
    expect(Math.max(...watch.counts) - Math.min(...watch.counts)).toBeLessThanOrEqual(260);
    class Eager extends Callback {
      onBatchEnd(ctx: TrainContext) {
        void ctx.lastLossValue;
      }
    }
    const eager = learner({ withValidation: false, recorder: false, callbacks: [new Eager()] });
    const eagerResult = await eager.fit(EPOCHS * 5);
    expect(lazyResult.smoothLoss).toBe(eagerResult.smoothLoss);
  });

  it('reading the loss (every batch, or in bulk every 256) never frees ctx.lastLoss before its batch ends', async () => {
    class ReadsThenUsesTheTensor extends Callback {
      checked = 0;
      onBatchEnd(ctx: TrainContext) {
        if (!ctx.train) return;
        void ctx.lastLossValue;
        // The batch's loss tensor is still the hooks' until releaseBatch (docs/api.md).
        expect(ctx.lastLoss!.isDisposed).toBe(false);
        expect(ctx.lastLoss!.dataSync()[0]).toBe(ctx.lastLossValue);
        this.checked += 1;
      }
    }
    class NeverReads extends Callback {
      alive = 0;
      onBatchEnd(ctx: TrainContext) {
        if (ctx.train && !ctx.lastLoss!.isDisposed) this.alive += 1;
      }
    }
    const reader = new ReadsThenUsesTheTensor();
    const eager = learner({ withValidation: false, recorder: false, callbacks: [reader] });
    await eager.fit(1);
    expect(reader.checked).toBe(N_BATCHES);
    const quiet = new NeverReads();
    const lazy = learner({ withValidation: false, recorder: false, callbacks: [quiet] });
    await lazy.fit(8); // 320 batches: the log packs at the 256th
    expect(quiet.alive).toBe(8 * N_BATCHES);
  });

  it('a hook that frees ctx.lastLoss, or holds it and frees it batches later, takes nothing from the loss log', async () => {
    class FreesTheLoss extends Callback {
      private held: tf.Tensor | null = null;
      onStepEnd(ctx: TrainContext) {
        if (ctx.train && ctx.batchIndex === 3) ctx.lastLoss!.dispose();
      }
      onBatchEnd(ctx: TrainContext) {
        if (!ctx.train) return;
        // Frees the loss of the batch before (long freed by the loop: then a no-op) and holds this one.
        this.held?.dispose();
        this.held = ctx.batchIndex === 3 ? null : ctx.lastLoss;
      }
    }
    // Reference: what a fit that goes well leaves (the optimizer's state, made at the first step).
    const fine = learner({ withValidation: false, recorder: true });
    let before = tf.memory().numTensors;
    await fine.fit(1);
    const keptByAFit = tf.memory().numTensors - before;
    const reference = [...fine.recorder!.losses];
    fine.dispose();
    const learn = learner({ withValidation: false, recorder: true, callbacks: [new FreesTheLoss()] });
    before = tf.memory().numTensors;
    await learn.fit(1);
    expect(learn.recorder!.losses).toEqual(reference);
    expect(tf.memory().numTensors - before).toBe(keptByAFit);
  });

  it('during a fit, smoothLossState() and callbackStates() include every batch so far (read first)', async () => {
    const seen: Array<{ count: number; iteration: number }> = [];
    class AtEpochEnd extends Callback {
      onEpochEnd(ctx: TrainContext) {
        seen.push({ count: (this.learn as unknown as Learner).smoothLossState()!.count, iteration: ctx.iteration });
      }
    }
    // Mid-epoch, a CSVLogger's running sum (read in bulk, so pending) is whole in callbackStates().
    const counts: number[] = [];
    class MidEpoch extends Callback {
      override order = 200;
      onBatchEnd(ctx: TrainContext) {
        if (ctx.train && ctx.batchIndex === 9) counts.push((this.learn as unknown as Learner).callbackStates().CSVLogger!.lossCount as number);
      }
    }
    const dir = mkdtempSync(join(tmpdir(), 'host-reads-'));
    try {
      const learn = learner({ withValidation: false, recorder: false, callbacks: [new AtEpochEnd(), new CSVLogger({ path: join(dir, 'log.csv') }), new MidEpoch()] });
      await learn.fit(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(seen).toEqual([
      { count: N_BATCHES, iteration: N_BATCHES },
      { count: 2 * N_BATCHES, iteration: 2 * N_BATCHES },
    ]);
    expect(counts).toEqual([10, 10]);
  });

  it('a metric computed in int32 still gives its value (the pass is read as float32 in one read)', async () => {
    const { train, valid } = loaders(true);
    const learn = new Learner({
      model: mlp({ inputShape: [20], hidden: [16], classes: 3, seed: 1 }),
      data: { train, valid: valid! },
      loss: 'categoricalCrossentropy',
      metrics: [{ name: 'hits', fn: (p: tf.Tensor, t: tf.Tensor) => tf.sum(tf.equal(tf.argMax(p, -1), tf.argMax(t, -1)).cast('int32')) as tf.Scalar }, 'accuracy'],
      recorder: false,
      progress: false,
    });
    const result = await learn.fit(1);
    // hits per batch = accuracy · batch size for full batches, so the means agree.
    expect(result.metrics!.hits).toBeCloseTo(result.metrics!.accuracy! * BATCH, 5);
  });
});
