/**
 * The benchmark's contenders: one way each to train the same model on the same batches with the
 * same loss and optimizer (Adam, lr 1e-3). Each `runBlock` trains one block of `batches` batches
 * (one epoch of the loader) and returns how long each batch took (ms, from the start of one batch
 * to the start of the next); the runner alternates them. Per-batch times, not the block's: a
 * median over batches shrugs off the pauses a shared VM puts into any one of them; the runner
 * also keeps each block's wall time per batch, which includes what a call of `fit` costs around
 * its batches.
 *
 * (a) hand loop with trainchart's own pieces (forward, loss, optimizer), no machine: the floor
 *     for trainchart's loop overhead;
 * (b) the tfjs hand loop a JS user writes: `tf.variableGrads` + `tf.train.adam`;
 * (c) tfjs-layers `model.fit`, compiled with the same loss and optimizer;
 * (d) trainchart `learn.fit` with its default callbacks (Recorder, Progress off a terminal);
 * (e) (d) with 10 more callbacks, each with a no-op hook at every stage;
 * (f) (d) with the visualizer serving a connected WebSocket client.
 */
import * as tf from '@tensorflow/tfjs';
import WebSocket from 'ws';
import { Progress } from '../callbacks/progress.js';
import { Callback } from '../src/loop/callback.js';
import type { TrainContext } from '../src/loop/context.js';
import { mnist } from '../src/data/mnist.js';
import type { DataLoader } from '../src/data/dataLoader.js';
import { forward } from '../src/engine/forward.js';
import { Learner } from '../src/learner.js';
import { resolveLoss } from '../src/losses.js';
import { cnn, mlp } from '../src/models/presets.js';
import { stableParamNames } from '../src/models/paramNames.js';
import { createOptimizer } from '../src/optim/optimizer.js';
import { Visualizer } from '../visualizer/index.js';
import { noOpCallbacks } from './machineAlone.js';

export type ModelName = 'mlp' | 'cnn';
export const LR = 1e-3;
export const SEED = 1;

export interface Setup {
  model: ModelName;
  batchSize: number;
  /** Batches per block (one epoch of the loader). */
  batches: number;
}

export interface Contender {
  key: 'a' | 'b' | 'c' | 'd' | 'e' | 'f';
  label: string;
  /** One block: the time of each batch, ms. */
  runBlock(): Promise<number[]>;
  dispose(): Promise<void>;
}

/**
 * One turn of the event loop, untimed, before each block. V8 leaves work for the event loop's
 * turns (platform tasks, e.g. the scavenges and incremental-marking steps it scheduled); a
 * contender that never yields (a, b, c) leaves its own to whoever turns the loop next. Without
 * this turn, that was the fit after it, which yields every 25 ms. Measured with the hand loop
 * alone (cpu MLP, batch 64, 28 rounds of 32 batches, two processes per setting; the script was
 * not kept): a block yielding every 25 ms was 0.6–1% slower per batch (1.5–1.8% in wall time)
 * right after a block that never yields, and within 0.6% either way once a turn ran between.
 * What a block leaves pending now runs in this untimed turn, charged to no contender: that
 * favours the contenders that never yield (a, b, c) — conservative for d/a, d/b and d/c. A fit
 * still pays, inside its timing, for what its own yields run.
 */
export const settleEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The order of round `r`: rotated by r, and reversed every other round, so with n ≥ 3 each
 * contender runs after two different ones (a plain rotation keeps its predecessor in all but
 * one round of n). Not a balanced design: with an even n, half the contenders are never last.
 */
export function roundOrder<T>(items: readonly T[], r: number): T[] {
  const rotated = items.map((_, i) => items[(i + r) % items.length]!);
  return r % 2 === 1 ? rotated.reverse() : rotated;
}

/** Batch start times → batch durations; `end` closes the last batch. */
export class BatchClock {
  private stamps: number[] = [];
  start(): void {
    this.stamps.push(performance.now());
  }
  durations(end = performance.now()): number[] {
    const s = this.stamps;
    this.stamps = [];
    return s.map((t, i) => (s[i + 1] ?? end) - t);
  }
}

/** The clock as a callback: stamps each train batch as it begins (first of the stage's hooks). */
export class BatchClockCallback extends Callback {
  override order = -1e9;
  private readonly clock = new BatchClock();
  private lastEnd = 0;
  onBatchBegin(ctx: TrainContext) {
    if (ctx.train) this.clock.start();
  }
  onBatchEnd(ctx: TrainContext) {
    if (ctx.train) this.lastEnd = performance.now();
  }
  durations(): number[] {
    return this.clock.durations(this.lastEnd);
  }
}

export function makeModel(name: ModelName): tf.LayersModel {
  return name === 'mlp' ? mlp({ seed: SEED, inputShape: [784], hidden: [128] }) : cnn({ seed: SEED });
}

/** A train loader of exactly `batches` full batches of MNIST (flat for the MLP). */
export async function loaderFor(s: Setup): Promise<DataLoader> {
  const { train } = await mnist({ batchSize: s.batchSize, seed: SEED, limitTrain: s.batchSize * s.batches, limitValid: 1, flatten: s.model === 'mlp' });
  return train;
}

/** Progress as it runs off a terminal (a pipe, CI): its table rows only, written nowhere. */
export const pipedProgress = () => new Progress({ stream: { write: () => true, isTTY: false } });

async function trainchartHandLoop(s: Setup): Promise<Contender> {
  const loader = await loaderFor(s);
  const model = makeModel(s.model);
  const params = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const names = stableParamNames(model);
  const optimizer = createOptimizer('adam', { lr: LR });
  const loss = resolveLoss('categoricalCrossentropy').fn;
  const clock = new BatchClock();
  // Epoch 0's batches, in its order, every block: what fit(1) (contender d) trains on.
  const epoch = 0;
  return {
    key: 'a',
    label: 'hand loop, trainchart kernels + optimizer',
    runBlock: async () => {
      for (let i = 0; i < loader.nBatches; i++) {
        clock.start();
        const { x, y } = loader.batch(i, epoch);
        const { value, grads } = tf.variableGrads(() => loss(tf.tidy(() => forward(model, x, true)), y), params);
        optimizer.step(params, grads, names);
        tf.dispose([value, grads, x, y]);
      }
      return clock.durations();
    },
    dispose: async () => {
      optimizer.dispose();
      model.dispose();
    },
  };
}

async function tfjsHandLoop(s: Setup): Promise<Contender> {
  const loader = await loaderFor(s);
  const model = makeModel(s.model);
  const optimizer = tf.train.adam(LR);
  const clock = new BatchClock();
  const epoch = 0;
  return {
    key: 'b',
    label: 'tfjs hand loop (variableGrads + tf.train.adam)',
    runBlock: async () => {
      for (let i = 0; i < loader.nBatches; i++) {
        clock.start();
        const { x, y } = loader.batch(i, epoch);
        const { value, grads } = tf.variableGrads(() => tf.metrics.categoricalCrossentropy(y, model.apply(x, { training: true }) as tf.Tensor).mean() as tf.Scalar);
        optimizer.applyGradients(grads as Parameters<typeof optimizer.applyGradients>[0]);
        tf.dispose([value, grads, x, y]);
      }
      return clock.durations();
    },
    dispose: async () => {
      optimizer.dispose();
      model.dispose();
    },
  };
}

async function layersFit(s: Setup): Promise<Contender> {
  const loader = await loaderFor(s);
  const model = makeModel(s.model);
  model.compile({ optimizer: tf.train.adam(LR), loss: 'categoricalCrossentropy' });
  // Epoch 0's batches in order, as one tensor model.fit slices itself; made once, outside the timing.
  const parts = Array.from({ length: loader.nBatches }, (_, i) => loader.batch(i, 0));
  const x = tf.concat(parts.map((p) => p.x));
  const y = tf.concat(parts.map((p) => p.y));
  tf.dispose(parts.flatMap((p) => [p.x, p.y]));
  return {
    key: 'c',
    label: 'tfjs-layers model.fit',
    runBlock: async () => {
      const clock = new BatchClock();
      // onBatchBegin only: an onBatchEnd callback makes tfjs-layers read the batch's loss (an
      // awaited host read per batch the other contenders do not pay).
      await model.fit(x, y, { batchSize: s.batchSize, epochs: 1, shuffle: false, verbose: 0, yieldEvery: 'never', callbacks: { onBatchBegin: async () => clock.start() } });
      return clock.durations();
    },
    dispose: async () => {
      tf.dispose([x, y]);
      model.optimizer.dispose();
      model.dispose();
    },
  };
}

/** A Learner with the default callbacks (Recorder, Progress) unless `defaults` is false, plus `extra` no-op callbacks. */
export async function newLearner(s: Setup, extra = 0, defaults = true): Promise<Learner> {
  return new Learner({
    model: makeModel(s.model),
    data: { train: await loaderFor(s) },
    loss: 'categoricalCrossentropy',
    optimizer: { kind: 'adam', lr: LR },
    recorder: defaults,
    progress: false,
    seed: SEED,
    callbacks: [...(defaults ? [pipedProgress()] : []), ...noOpCallbacks(extra)],
  });
}

async function learnerFit(s: Setup, key: 'd' | 'e', extraCallbacks: number): Promise<Contender> {
  const learn = await newLearner(s, extraCallbacks);
  const clock = new BatchClockCallback();
  learn.addCallback(clock);
  return {
    key,
    label: extraCallbacks ? `trainchart fit + ${extraCallbacks} no-op callbacks` : 'trainchart fit (default callbacks)',
    runBlock: async () => {
      await learn.fit(1);
      return clock.durations();
    },
    dispose: async () => learn.dispose(),
  };
}

async function learnerFitWatched(s: Setup): Promise<Contender> {
  const learn = await newLearner(s);
  const clock = new BatchClockCallback();
  learn.addCallback(clock);
  const viz = new Visualizer({ port: 0 });
  const url = await viz.start();
  const client = new WebSocket(url.replace(/^http/, 'ws') + 'ws');
  let received = 0;
  client.on('message', () => (received += 1));
  await new Promise<void>((resolve, reject) => {
    client.once('open', () => resolve());
    client.once('error', reject);
  });
  return {
    key: 'f',
    label: 'trainchart fit, visualizer + connected client',
    runBlock: async () => {
      await learn.fit(1, { viz });
      return clock.durations();
    },
    dispose: async () => {
      // The client really was fed (checked once at the end, so no wait sits inside a timed block).
      await new Promise((r) => setTimeout(r, 50));
      if (received === 0) throw new Error('the visualizer client received nothing during the fits');
      client.close();
      await viz.close();
      learn.dispose();
    },
  };
}

export const CONTENDERS: Record<Contender['key'], (s: Setup) => Promise<Contender>> = {
  a: trainchartHandLoop,
  b: tfjsHandLoop,
  c: layersFit,
  d: (s) => learnerFit(s, 'd', 0),
  e: (s) => learnerFit(s, 'e', 10),
  f: learnerFitWatched,
};
