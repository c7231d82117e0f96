/**
 * Exact resume (issue 8, contract §6): a run is stopped at ≥ 20 random quiet points — in the
 * middle of epochs (after a train batch, also in the middle of a gradient-accumulation group)
 * and at epoch boundaries (a stop during validation takes effect after epochEnd) — each time
 * resumed in a brand-new Learner, and must end exactly as the uninterrupted run: the same
 * weightsSha256 (bit-identical weights), the same Recorder history, the same one-cycle
 * scheduler state and optimizer state. The run has everything that carries state across a
 * stop: MixUp (draws from learn.rng), a SeededDropout layer (its own stream), fitOneCycle
 * (a schedule by position), a validation set (lastMetrics), GradientAccumulation (gradients
 * kept by skipZero across the stop), a shuffled loader (order by (seed, epoch)).
 *
 * The reference is the uninterrupted run itself — resuming must not change a single bit —
 * and the stops are made from outside the callbacks (an AbortSignal aborted from an XState
 * inspection observer), as Ctrl-C or kill would come. The Checkpoint runs FIRST (order −100)
 * at its stages, so the Recorder's entry for the stop batch being in the checkpoint shows it
 * captures after every hook of the stage.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InspectionEvent } from 'xstate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../callbacks/checkpoint.js';
import { GradientAccumulation } from '../callbacks/gradientAccumulation.js';
import { MixUp } from '../callbacks/mixUp.js';
import { listCheckpoints, readCheckpoint } from '../src/checkpoint/index.js';
import { DataLoader } from '../src/data/dataLoader.js';
import { Learner } from '../src/learner.js';
import { SeededDropout } from '../src/models/seededDropout.js';
import { Rng } from '../src/rng.js';
import { weightsSha256 } from '../src/weightsHash.js';

const EPOCHS = 4;
const N_TRAIN = 48;
const BATCH = 8; // 6 train batches per epoch
const N_BATCHES = N_TRAIN / BATCH;
const ONE_CYCLE = { lrMax: 0.03 } as const;

let root: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  root = mkdtempSync(join(tmpdir(), 'trainchart-resume-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function arrays(n: number, offset: number) {
  const x = new Float32Array(n * 6);
  const y = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 6; j++) x[i * 6 + j] = Math.sin((i + offset) * 0.37 + j * 1.1);
    y[i * 3 + ((i * 7 + offset) % 3)] = 1;
  }
  return { x, y };
}

/** A brand-new learner, built the same way each time (explicit layer names: weightsSha256 hashes them). */
function newLearner(dir: string, when: { everyBatches?: number; everyEpochs?: number } = {}): { learn: Learner; checkpoint: Checkpoint } {
  const t = arrays(N_TRAIN, 0);
  const v = arrays(16, 100);
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [6], units: 12, activation: 'relu', name: 'hidden', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
      new SeededDropout({ rate: 0.25, seed: 11, name: 'drop' }),
      tf.layers.dense({ units: 3, activation: 'softmax', name: 'out', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
    ],
  });
  // Options are not state: the runs here differ in how often they write, nothing else.
  const checkpoint = new Checkpoint({ dir, keep: Infinity, ...when });
  checkpoint.order = -100; // before every other callback at its stages: it must still capture after them
  const learn = new Learner({
    model,
    data: {
      train: DataLoader.fromArrays(t.x, t.y, { batchSize: BATCH, xShape: [6], yShape: [3], shuffle: true, seed: 9 }),
      valid: DataLoader.fromArrays(v.x, v.y, { batchSize: BATCH, xShape: [6], yShape: [3] }),
    },
    loss: 'categoricalCrossentropy',
    optimizer: 'adamw',
    metrics: ['accuracy'],
    callbacks: [new MixUp({ alpha: 0.4 }), new GradientAccumulation({ nBatches: 4 }), checkpoint],
    seed: 5,
  });
  return { learn, checkpoint };
}

/** The Recorder's history without wall-clock seconds. */
function history(learn: Learner) {
  const h = learn.recorder!.toJSON();
  return { batches: h.batches, epochs: h.epochs.map(({ seconds: _s, ...rest }) => rest) };
}

interface Final {
  sha: string;
  history: ReturnType<typeof history>;
  scheduler: unknown;
  optimizer: unknown;
}

/** The numbers of a state (the optimizer's is opaque; names of tfjs variables differ between instances). */
function numbersOf(state: unknown): unknown {
  if (ArrayBuffer.isView(state)) return Array.from(state as Float32Array);
  if (Array.isArray(state)) return state.map(numbersOf);
  if (state && typeof state === 'object') {
    return Object.fromEntries(Object.entries(state).filter(([, v]) => typeof v !== 'string').map(([k, v]) => [k, numbersOf(v)]));
  }
  return state;
}

/**
 * What a finished run ends with: weights, history, and the scheduler and optimizer states of
 * its final checkpoint (the one at the end of the last epoch; a resumed finished run writes
 * none, so then the one it resumed from).
 */
function finalOf(learn: Learner, checkpoint: Checkpoint, resumedFrom?: string): Final {
  const path = checkpoint.written.at(-1)?.path ?? resumedFrom!;
  const run = readCheckpoint(path).run;
  expect(run.position).toMatchObject({ epoch: EPOCHS, batchIndex: 0 });
  return {
    sha: weightsSha256(learn.model),
    history: history(learn),
    scheduler: run.callbacks.states.ParamScheduler,
    optimizer: numbersOf(run.optimizer.state),
  };
}

/** A quiet point: `batchIndex` > 0 is after train batch batchIndex − 1 of `epoch`; 0 is the start of `epoch` (after epochEnd of epoch − 1). */
interface StopPoint {
  epoch: number;
  batchIndex: number;
}

/**
 * Aborts the fit from outside, timed so the stop takes effect at `p`: during train batch
 * batchIndex − 1 (it ends after that batch), or during the validation of epoch − 1 (it ends
 * after that epoch).
 */
function stopAt(p: StopPoint, controller: AbortController) {
  return (e: InspectionEvent) => {
    if (e.type !== '@xstate.snapshot' || controller.signal.aborted) return;
    const s = e.snapshot as unknown as { value: unknown; context?: { epoch: number; batchIndex: number; train: boolean } };
    const c = s.context;
    if (!c) return;
    const v = JSON.stringify(s.value);
    const hit =
      p.batchIndex > 0
        ? v === '{"epoch":{"train":"lossBegin"}}' && c.epoch === p.epoch && c.batchIndex === p.batchIndex - 1
        : v === '{"epoch":{"validation":"validateBegin"}}' && c.epoch === p.epoch - 1;
    if (hit) controller.abort();
  };
}

describe('exact resume from random stop points (cpu backend)', () => {
  let whole: Final;

  it('the uninterrupted run (reference) writes a checkpoint at every quiet point', async () => {
    const { learn, checkpoint } = newLearner(join(root, 'whole'), { everyBatches: 1 });
    const result = await learn.fitOneCycle(EPOCHS, ONE_CYCLE);
    expect(result).toMatchObject({ status: 'completed', iterations: EPOCHS * N_BATCHES, resumedFrom: null });
    // every train batch (everyBatches: 1) and every epoch end
    expect(listCheckpoints(join(root, 'whole'))).toHaveLength(EPOCHS * N_BATCHES + EPOCHS);
    whole = finalOf(learn, checkpoint);
    expect(whole.history.batches).toHaveLength(EPOCHS * N_BATCHES);
  });

  // Every quiet point, then 20 of them drawn with a fixed seed.
  const all: StopPoint[] = [];
  for (let e = 0; e < EPOCHS; e++) {
    for (let b = 1; b <= N_BATCHES; b++) all.push({ epoch: e, batchIndex: b });
    all.push({ epoch: e + 1, batchIndex: 0 });
  }
  const order = new Rng(2024).shuffle(Uint32Array.from(all.keys()));
  const chosen = [...order.slice(0, 20)].sort((a, b) => a - b).map((i) => all[i]!);

  it('the 20 drawn stop points include epoch boundaries, mid-epoch points and the middle of an accumulation group', () => {
    expect(chosen.filter((p) => p.batchIndex === 0).length).toBeGreaterThanOrEqual(3);
    expect(chosen.filter((p) => p.batchIndex > 0).length).toBeGreaterThanOrEqual(10);
    // GradientAccumulation(4) over 6 batches steps after batches 3 and 5: stops after 0, 1, 2 or 4 carry gradients.
    expect(chosen.some((p) => [1, 2, 3, 5].includes(p.batchIndex))).toBe(true);
  });

  for (const p of chosen) {
    const where = p.batchIndex > 0 ? `epoch ${p.epoch}, after batch ${p.batchIndex - 1}` : `the start of epoch ${p.epoch}`;
    it(`stopped at ${where}, resumed in a new Learner: bit-identical weights, same history, scheduler and optimizer`, async () => {
      const stopDir = join(root, `stop-${p.epoch}-${p.batchIndex}`);
      const controller = new AbortController();
      const first = newLearner(stopDir, { everyEpochs: Infinity }); // only the stop checkpoint
      const stopped = await first.learn.fitOneCycle(EPOCHS, { ...ONE_CYCLE, signal: controller.signal, inspect: stopAt(p, controller) });
      expect(stopped.status).toBe('stopped');
      // The stop checkpoint is the last written, at the point where the stop took effect.
      const last = first.checkpoint.written.at(-1)!;
      expect({ epoch: last.epoch, batchIndex: last.batchIndex }).toEqual(p);
      first.learn.model.dispose();

      const second = newLearner(join(root, `resumed-${p.epoch}-${p.batchIndex}`), { everyEpochs: EPOCHS }); // only the final one
      const resumed = await second.learn.fitOneCycle(EPOCHS, { resumeFrom: stopDir });
      expect(resumed.status).toBe('completed');
      expect(resumed.resumedFrom).toEqual({ path: last.path, epoch: last.epoch, iteration: last.iteration, batchIndex: last.batchIndex });
      expect(resumed.iterations).toBe(EPOCHS * N_BATCHES - last.iteration);
      const got = finalOf(second.learn, second.checkpoint, last.path);
      expect(got.sha).toBe(whole.sha);
      expect(got.history).toEqual(whole.history);
      expect(got.scheduler).toEqual(whole.scheduler);
      expect(got.optimizer).toEqual(whole.optimizer);
      second.learn.model.dispose();
    });
  }

  it('a finished run resumed trains nothing and completes', async () => {
    const { learn } = newLearner(join(root, 'after-end'));
    const result = await learn.fitOneCycle(EPOCHS, { resumeFrom: join(root, 'whole') });
    expect(result).toMatchObject({ status: 'completed', iterations: 0, epochs: 0 });
    expect(result.resumedFrom).toMatchObject({ epoch: EPOCHS, batchIndex: 0, iteration: EPOCHS * N_BATCHES });
    expect(weightsSha256(learn.model)).toBe(whole.sha);
    expect(history(learn)).toEqual(whole.history);
  });
});

describe('a seeded layer inside a nested model', () => {
  it("its stream is in the checkpoint and comes back: a mid-epoch resume of plain fit ends bit-identically", async () => {
    const build = (dir: string) => {
      const inner = tf.sequential({
        name: 'inner',
        layers: [
          tf.layers.dense({ inputShape: [6], units: 8, activation: 'relu', name: 'inner_dense', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
          new SeededDropout({ rate: 0.5, seed: 21, name: 'inner_drop' }),
        ],
      });
      const model = tf.sequential({
        layers: [inner, tf.layers.dense({ units: 3, activation: 'softmax', name: 'head', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) })],
      });
      const t = arrays(N_TRAIN, 0);
      const checkpoint = new Checkpoint({ dir, everyBatches: 1, keep: Infinity });
      const learn = new Learner({
        model,
        data: { train: DataLoader.fromArrays(t.x, t.y, { batchSize: BATCH, xShape: [6], yShape: [3], shuffle: true, seed: 2 }) },
        loss: 'categoricalCrossentropy',
        optimizer: 'sgd',
        callbacks: [checkpoint],
        seed: 1,
      });
      return { learn, checkpoint };
    };
    const whole = build(join(root, 'nested-whole'));
    await whole.learn.fit(2, { lr: 0.1 });
    const mid = whole.checkpoint.written.find((c) => c.epoch === 1 && c.batchIndex === 2)!;
    const run = readCheckpoint(mid.path).run;
    expect(run.random.layers.map((l) => l.name)).toEqual(['inner/inner_drop']);
    const again = build(join(root, 'nested-again'));
    await again.learn.fit(2, { resumeFrom: mid.path });
    expect(weightsSha256(again.learn.model)).toBe(weightsSha256(whole.learn.model));
    expect(history(again.learn)).toEqual(history(whole.learn));
  });
});
