/**
 * A real resume for every stateful built-in callback: run A trains N epochs uninterrupted;
 * run B trains the same fit, is checkpointed at the end of epoch k−1 (callback states, weights
 * and optimizer state, through encodeState and a JSON text) and stopped, possibly some epochs
 * later (a crash after the checkpoint); then a fresh learner — fresh model instance of the same
 * seeded architecture, fresh callbacks built with the same options — restores the checkpoint
 * and fits N epochs from epoch k. The callbacks' observable outputs must be run A's.
 *
 * The data's shuffle of epoch e depends only on (seed, e), the optimizer state goes by
 * parameter position and `ctx.iteration` counts the skipped epochs, so B's resumed epochs see
 * the same batches, steps and iterations as A's.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CSVLogger } from '../callbacks/csvLogger.js';
import { EarlyStopping } from '../callbacks/earlyStopping.js';
import { MixUp } from '../callbacks/mixUp.js';
import { ParamScheduler } from '../callbacks/paramScheduler.js';
import { Progress } from '../callbacks/progress.js';
import { Recorder } from '../callbacks/recorder.js';
import { ReduceLROnPlateau } from '../callbacks/reduceLrOnPlateau.js';
import { SaveModel } from '../callbacks/saveModel.js';
import type { SmoothLossState } from '../src/loop/smoothLoss.js';
import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import { decodeState, encodeState } from '../src/io/stateCodec.js';
import { readWeights } from '../src/io/weightsFile.js';
import type { FitResult, Learner, LearnerOptions } from '../src/learner.js';
import type { TrainContext } from '../src/loop/context.js';
import { oneCycleSchedules } from '../src/oneCycle.js';
import type { OptimizerState } from '../src/optim/optimizer.js';
import type { RngState } from '../src/rng.js';
import { modelBytes, sameBytes, ScriptedMetrics, WeightsAtEpochEnd } from './support/scripted.js';
import { setWeightCopies, tinyLearner, weightCopies } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const dirs: string[] = [];
function tempDir() {
  const d = mkdtempSync(join(tmpdir(), 'trainchart-resume-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Checkpoint {
  callbacks: Record<string, Record<string, unknown>>;
  weights: Array<Float32Array | Int32Array>;
  optimizer: OptimizerState;
  rng: RngState;
  smoothLoss: SmoothLossState;
}

/**
 * Writes a checkpoint at the end of epoch `at` (after every other epochEnd hook) as JSON text,
 * and stops the run at the end of epoch `stopAt`. Given to fit as an extra callback, so it is
 * not among `learn.callbackStates()`.
 */
class Interrupt extends Callback {
  override order = 1000;
  json: string | null = null;
  constructor(
    readonly at: number,
    readonly stopAt: number,
  ) {
    super();
  }
  onEpochEnd(ctx: TrainContext) {
    if (ctx.epoch === this.at) {
      const learn = this.learn as Learner;
      const checkpoint: Checkpoint = {
        callbacks: learn.callbackStates(),
        weights: weightCopies(learn.model),
        optimizer: learn.optimizer.getState(),
        rng: learn.rng.getState(),
        smoothLoss: learn.smoothLossState()!,
      };
      this.json = JSON.stringify(encodeState(checkpoint));
    }
    if (ctx.epoch === this.stopAt) return { stopTraining: true };
  }
}

interface Scenario {
  nEpochs: number;
  /** k: the checkpoint is taken at the end of epoch k − 1 and the resumed fit starts at epoch k. */
  resumeAt: number;
  /** The epoch at whose end the interrupted run stops (default k − 1): later epochs wrote files after the checkpoint. */
  stopAt?: number;
  /** Fresh callbacks, the same options every time; `dir` is the run's own directory. */
  make: (dir: string) => Callback[];
  learner?: Partial<LearnerOptions>;
  /** Run A only (probes that watch the uninterrupted run). */
  probes?: () => Callback[];
  /** Called on each run's directory before its first fit (e.g. an existing CSV file). */
  prepare?: (dir: string) => void;
}

interface Run {
  learn: Learner;
  callbacks: Callback[];
  result: FitResult;
  dir: string;
  probes: Callback[];
}

async function uninterrupted(s: Scenario): Promise<Run> {
  const dir = tempDir();
  s.prepare?.(dir);
  const callbacks = s.make(dir);
  const probes = s.probes?.() ?? [];
  const learn = tinyLearner([...callbacks, ...probes], s.learner);
  const result = await learn.fit(s.nEpochs);
  return { learn, callbacks, result, dir, probes };
}

async function resumed(s: Scenario): Promise<Run & { checkpoint: Checkpoint }> {
  const dir = tempDir();
  s.prepare?.(dir);
  const k = s.resumeAt;
  const interrupt = new Interrupt(k - 1, s.stopAt ?? k - 1);
  const first = tinyLearner(s.make(dir), s.learner);
  const firstResult = await first.fit(s.nEpochs, { callbacks: [interrupt] });
  expect(firstResult.status).toBe('stopped');
  expect(interrupt.json).not.toBeNull();

  // A new process, as far as the learner can tell: fresh model instance, callbacks and optimizer.
  const checkpoint = decodeState(JSON.parse(interrupt.json!)) as Checkpoint;
  const callbacks = s.make(dir);
  const learn = tinyLearner(callbacks, s.learner);
  expect(learn.params.map((p) => p.name)).not.toEqual(first.params.map((p) => p.name));
  setWeightCopies(learn.model, checkpoint.weights);
  learn.optimizer.setState(checkpoint.optimizer);
  learn.rng.setState(checkpoint.rng);
  const result = await learn.fit(s.nEpochs, { startEpoch: k, callbackStates: checkpoint.callbacks, smoothLoss: checkpoint.smoothLoss });
  return { learn, callbacks, result, dir, probes: [], checkpoint };
}

const find = <T extends Callback>(run: Run, type: abstract new (...args: never[]) => T, nth = 0): T =>
  [...run.callbacks, ...(run.learn.recorder ? [run.learn.recorder] : [])].filter((c): c is T => c instanceof type)[nth]!;

/** What a Recorder saw, without the times. */
function recorded(rec: Recorder) {
  return {
    epochs: rec.epochs.map(({ epoch, trainLoss, valid, iteration }) => ({ epoch, trainLoss, valid, iteration })),
    iterations: rec.iterations,
    batchEpochs: rec.batchEpochs,
    lrs: rec.lrs,
    moms: rec.moms,
    losses: rec.losses,
    smoothLosses: rec.smoothLosses,
  };
}

/** A CSV file's records without the time column (the last one). */
function csvWithoutTime(path: string): string[][] {
  const text = readFileSync(path, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => line.split(',').slice(0, -1));
}

/** Every weights file of a directory with the bytes of the weights it holds (the header names variables, which differ between instances). */
function weightFiles(dir: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.weights')).sort()) out[name] = readWeights(join(dir, name)).values.map((v) => Buffer.from(v.slice().buffer).toString('hex'));
  return out;
}

describe('each stateful callback resumes from a JSON checkpoint exactly as if never interrupted', () => {
  it('Recorder: per-epoch losses and metrics, per-batch lrs, momentums, losses and iterations', async () => {
    const s: Scenario = { nEpochs: 4, resumeAt: 2, stopAt: 3, make: () => [], learner: { recorder: true, optimizer: 'adam' } };
    const a = await uninterrupted(s);
    const b = await resumed(s);
    expect(b.result.status).toBe('completed');
    // The resumed fit trained epochs 2 and 3 only (3 batches each); the Recorder's iterations are the whole run's.
    expect(b.result.iterations).toBe(a.result.iterations - 2 * 3);
    const ra = a.learn.recorder!;
    const rb = b.learn.recorder!;
    expect(rb.epochs.map((e) => e.epoch)).toEqual([0, 1, 2, 3]);
    expect(recorded(rb)).toEqual(recorded(ra));
    expect(rb.iterations).toEqual(Array.from({ length: 12 }, (_, i) => i));
    // Restored epochs from the Recorder's state, later ones smoothed on from the checkpointed average.
    expect(rb.smoothLosses).toEqual(ra.smoothLosses);
    expect(sameBytes(modelBytes(b.learn.model), modelBytes(a.learn.model))).toBe(true);
  });

  it('ParamScheduler (one-cycle schedules): the lr and momentum of every batch, and what it recorded', async () => {
    const s: Scenario = {
      nEpochs: 4,
      resumeAt: 3,
      make: () => [new ParamScheduler(oneCycleSchedules({ lrMax: 0.05 }))],
      learner: { recorder: true, optimizer: 'adam' },
    };
    const a = await uninterrupted(s);
    const b = await resumed(s);
    const sa = find(a, ParamScheduler);
    const sb = find(b, ParamScheduler);
    expect(sb.hps).toEqual(sa.hps);
    expect(sb.hpEpochs).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
    expect(sb.pos).toBe(sa.pos);
    expect(b.learn.recorder!.lrs).toEqual(a.learn.recorder!.lrs);
    expect(b.learn.recorder!.moms).toEqual(a.learn.recorder!.moms);
    // The schedule really moved the lr (warm-up then annealing), so the comparison is not vacuous.
    expect(new Set(a.learn.recorder!.lrs).size).toBe(12);
    expect(sameBytes(modelBytes(b.learn.model), modelBytes(a.learn.model))).toBe(true);
  });

  it('learn.fitOneCycle resumed with startEpoch: the schedule continues from the position alone', async () => {
    const run = async (resume: boolean) => {
      const learn = tinyLearner([], { recorder: true, optimizer: 'adam' });
      if (!resume) {
        await learn.fitOneCycle(4, { lrMax: 0.05 });
        return learn;
      }
      const interrupt = new Interrupt(1, 1);
      await learn.fitOneCycle(4, { lrMax: 0.05, callbacks: [interrupt] });
      const checkpoint = decodeState(JSON.parse(interrupt.json!)) as Checkpoint;
      const fresh = tinyLearner([], { recorder: true, optimizer: 'adam' });
      setWeightCopies(fresh.model, checkpoint.weights);
      fresh.optimizer.setState(checkpoint.optimizer);
      await fresh.fitOneCycle(4, { lrMax: 0.05, startEpoch: 2, callbackStates: checkpoint.callbacks, smoothLoss: checkpoint.smoothLoss });
      return fresh;
    };
    const a = await run(false);
    const b = await run(true);
    expect(recorded(b.recorder!)).toEqual(recorded(a.recorder!));
    expect(sameBytes(modelBytes(b.model), modelBytes(a.model))).toBe(true);
  });

  it('EarlyStopping with restoreBest: the same stop epoch, and the best weights (saved before the checkpoint) restored', async () => {
    // validLoss: best at e1 (0.5); e2, e3, e4 miss → patience 3 reached at e4. The checkpoint is at the end of e2.
    const validLoss = [1, 0.5, 0.9, 0.8, 0.7, 0.6];
    const s: Scenario = {
      nEpochs: 6,
      resumeAt: 3,
      stopAt: 3,
      make: () => [new ScriptedMetrics({ validLoss }), new EarlyStopping({ patience: 3, restoreBest: true })],
      probes: () => [new WeightsAtEpochEnd(0)],
    };
    const a = await uninterrupted(s);
    const b = await resumed(s);
    const ea = find(a, EarlyStopping);
    const eb = find(b, EarlyStopping);
    expect(a.result.status).toBe('stopped');
    expect(b.result.status).toBe('stopped');
    expect(ea.stoppedEpoch).toBe(4);
    expect(eb.stoppedEpoch).toBe(ea.stoppedEpoch);
    expect([eb.best, eb.bestEpoch, eb.wait]).toEqual([ea.best, ea.bestEpoch, ea.wait]);
    expect(b.result.epochs).toBe(2);
    expect(b.checkpoint.callbacks.EarlyStopping!.bestWeights).not.toBeNull();
    // The weights after the run are those of epoch 1, the best, in both.
    const bestEpoch = (a.probes[0] as WeightsAtEpochEnd).byEpoch[1]!;
    expect(sameBytes(modelBytes(a.learn.model), bestEpoch)).toBe(true);
    expect(sameBytes(modelBytes(b.learn.model), bestEpoch)).toBe(true);
  });

  it('ReduceLROnPlateau: the same reductions, lr sequence and final lr (the reduced lr travels in the optimizer state)', async () => {
    // As in reduce-lr-on-plateau.test.ts: reductions at the end of e3 (→ 0.05) and e7 (→ 0.03). Resume at 5.
    const validLoss = [1.0, 0.9, 0.95, 0.96, 0.97, 0.85, 0.9, 0.91];
    const s: Scenario = {
      nEpochs: 8,
      resumeAt: 5,
      stopAt: 6,
      make: () => [new ScriptedMetrics({ validLoss }), new ReduceLROnPlateau({ patience: 2, factor: 0.5, minLr: 0.03 })],
      learner: { recorder: true, optimizer: { kind: 'sgd', lr: 0.1 } },
    };
    const a = await uninterrupted(s);
    const b = await resumed(s);
    const ra = find(a, ReduceLROnPlateau);
    const rb = find(b, ReduceLROnPlateau);
    expect(ra.reductions).toEqual([
      { epoch: 3, lr: 0.05 },
      { epoch: 7, lr: 0.03 },
    ]);
    expect(rb.reductions).toEqual(ra.reductions);
    expect(rb.wait).toBe(ra.wait);
    expect(b.learn.lr).toBe(0.03);
    expect(b.learn.recorder!.lrs).toEqual(a.learn.recorder!.lrs);
    expect(sameBytes(modelBytes(b.learn.model), modelBytes(a.learn.model))).toBe(true);
  });

  it('SaveModel (two of them, every epoch and on improvement): the same files with the same weights', async () => {
    // Improvements at e0, e1, e3, e5. The interrupted run writes m_3, m_4 and best (e3) after its checkpoint.
    const validLoss = [1.0, 0.5, 0.7, 0.4, 0.45, 0.3];
    const s: Scenario = {
      nEpochs: 6,
      resumeAt: 3,
      stopAt: 4,
      make: (dir) => [
        new ScriptedMetrics({ validLoss }),
        new SaveModel({ every: 'epoch', dir, name: 'm' }),
        new SaveModel({ dir, name: 'best' }),
      ],
    };
    const a = await uninterrupted(s);
    const b = await resumed(s);
    expect(Object.keys(b.checkpoint.callbacks)).toEqual(['ScriptedMetrics', 'SaveModel', 'SaveModel#2']);
    expect(readdirSync(b.dir).sort()).toEqual(['best.weights', ...[0, 1, 2, 3, 4, 5].map((e) => `m_${e}.weights`)]);
    expect(weightFiles(b.dir)).toEqual(weightFiles(a.dir));
    for (const nth of [0, 1]) {
      const sa = find(a, SaveModel, nth);
      const sb = find(b, SaveModel, nth);
      expect(sb.saved.map((p) => basename(p))).toEqual(sa.saved.map((p) => basename(p)));
      expect(sb.savedEpochs).toEqual(sa.savedEpochs);
      expect(sb.bestEpoch).toBe(sa.bestEpoch);
    }
    expect(find(b, SaveModel, 1).savedEpochs).toEqual([0, 1, 3, 5]);
    // The options of the fresh instances are their own (dir is B's directory, not the one in any state).
    expect(find(b, SaveModel, 0).dir).toBe(b.dir);
  });

  it('CSVLogger: the same rows (but time); the rows written after the checkpoint are not repeated', async () => {
    const s: Scenario = {
      nEpochs: 5,
      resumeAt: 2,
      stopAt: 3,
      make: (dir) => [new CSVLogger({ path: join(dir, 'logs', 'history.csv') })],
    };
    const a = await uninterrupted(s);
    const b = await resumed(s);
    const rows = csvWithoutTime(join(b.dir, 'logs', 'history.csv'));
    expect(rows.map((r) => r[0])).toEqual(['epoch', '0', '1', '2', '3', '4']);
    expect(rows).toEqual(csvWithoutTime(join(a.dir, 'logs', 'history.csv')));
    expect(find(b, CSVLogger).rows.map((r) => r.epoch)).toEqual([0, 1, 2, 3, 4]);
  });

  it('CSVLogger with append: the earlier fits’ rows stay, this fit’s rows are those of the uninterrupted run', async () => {
    const earlier = 'epoch,train_loss,valid_loss,accuracy,time\n0,9,9,0.5,1.000\n1,8,8,0.5,1.000\n';
    const s: Scenario = {
      nEpochs: 4,
      resumeAt: 2,
      stopAt: 2,
      prepare: (dir) => writeFileSync(join(dir, 'h.csv'), earlier),
      make: (dir) => [new CSVLogger({ path: join(dir, 'h.csv'), append: true })],
    };
    const a = await uninterrupted(s);
    const b = await resumed(s);
    const text = readFileSync(join(b.dir, 'h.csv'), 'utf8');
    expect(text.startsWith(earlier)).toBe(true);
    const rows = csvWithoutTime(join(b.dir, 'h.csv'));
    expect(rows.map((r) => r[0])).toEqual(['epoch', '0', '1', '0', '1', '2', '3']);
    expect(rows).toEqual(csvWithoutTime(join(a.dir, 'h.csv')));
    expect(b.checkpoint.callbacks.CSVLogger!.startLine).toBe(3);
  });

  it('everything at once, MixUp and Progress included: bit-identical weights and the same outputs', async () => {
    const validLoss = [1.0, 0.8, 0.85, 0.9, 0.7, 0.75, 0.8, 0.9];
    const sink = { write: () => true, isTTY: false };
    const s: Scenario = {
      nEpochs: 8,
      resumeAt: 4,
      stopAt: 5,
      make: (dir) => [
        new ScriptedMetrics({ validLoss }),
        new MixUp({ alpha: 0.4 }),
        new ReduceLROnPlateau({ patience: 1, factor: 0.5 }),
        new SaveModel({ dir, name: 'best' }),
        new CSVLogger({ path: join(dir, 'h.csv') }),
        new Progress({ stream: sink }),
        new EarlyStopping({ patience: 3, restoreBest: true }),
      ],
      learner: { recorder: true, optimizer: 'adamw', seed: 11 },
    };
    const a = await uninterrupted(s);
    const b = await resumed(s);
    // MixUp and Progress keep no state: the random stream is the learner's, restored from the checkpoint.
    expect(b.checkpoint.callbacks.MixUp).toEqual({});
    expect(b.checkpoint.callbacks.Progress).toEqual({});
    expect(b.result.status).toBe(a.result.status);
    expect(find(b, EarlyStopping).stoppedEpoch).toBe(find(a, EarlyStopping).stoppedEpoch);
    expect(find(a, EarlyStopping).stoppedEpoch).toBe(7);
    expect(find(b, ReduceLROnPlateau).reductions).toEqual(find(a, ReduceLROnPlateau).reductions);
    expect(recorded(b.learn.recorder!)).toEqual(recorded(a.learn.recorder!));
    expect(csvWithoutTime(join(b.dir, 'h.csv'))).toEqual(csvWithoutTime(join(a.dir, 'h.csv')));
    expect(Object.keys(weightFiles(b.dir))).toEqual(['best.weights']);
    expect(weightFiles(b.dir)).toEqual(weightFiles(a.dir));
    expect(sameBytes(modelBytes(b.learn.model), modelBytes(a.learn.model))).toBe(true);
  });
});

describe('state is state, options are options', () => {
  const tracker = ['best', 'bestEpoch', 'lastValue', 'epochLossSum', 'epochLossCount', 'epochValid'];
  const cases: Array<{
    name: string;
    saved: () => Callback;
    fresh: () => Callback;
    state: string[];
    options: string[];
  }> = [
    {
      name: 'EarlyStopping',
      saved: () => new EarlyStopping({ patience: 2, monitor: 'accuracy', minDelta: 0.1 }),
      fresh: () => new EarlyStopping({ patience: 5, restoreBest: true }),
      state: [...tracker, 'wait', 'stoppedEpoch', 'bestWeights'],
      options: ['patience', 'restoreBest', 'monitor', 'mode', 'minDelta'],
    },
    {
      name: 'ReduceLROnPlateau',
      saved: () => new ReduceLROnPlateau({ factor: 0.5, patience: 3 }),
      fresh: () => new ReduceLROnPlateau({ factor: 0.2, patience: 1, minLr: 1e-4 }),
      state: [...tracker, 'wait', 'reductions'],
      options: ['factor', 'patience', 'minLr', 'monitor', 'mode', 'minDelta'],
    },
    {
      name: 'SaveModel',
      saved: () => new SaveModel({ dir: 'old', name: 'a', every: 'epoch' }),
      fresh: () => new SaveModel({ dir: 'new', name: 'b' }),
      state: [...tracker, 'lastSaved', 'saved', 'savedEpochs'],
      options: ['every', 'dir', 'fileName', 'monitor', 'mode', 'minDelta'],
    },
    {
      name: 'CSVLogger',
      saved: () => new CSVLogger({ path: 'old.csv', append: true }),
      fresh: () => new CSVLogger({ path: 'new.csv' }),
      state: ['rows', 'startLine', 'lossSum', 'lossCount', 'epochValid'],
      options: ['path', 'append', 'columns', 'epochStart'],
    },
    {
      name: 'Recorder',
      saved: () => new Recorder(),
      fresh: () => new Recorder(),
      state: ['iterations', 'batchEpochs', 'lrs', 'moms', 'losses', 'smoothLosses', 'epochs', 'lossSum', 'lossCount', 'validMetrics'],
      options: ['epochStart', 'order'],
    },
    {
      name: 'ParamScheduler',
      saved: () => new ParamScheduler({ lr: () => 1 }),
      fresh: () => new ParamScheduler({ lr: () => 2 }),
      state: ['hps', 'hpEpochs', 'pos'],
      options: ['scheds', 'nEpochs'],
    },
    { name: 'MixUp', saved: () => new MixUp({ alpha: 0.2 }), fresh: () => new MixUp({ alpha: 1 }), state: [], options: ['alpha'] },
    { name: 'Progress', saved: () => new Progress({ tty: true }), fresh: () => new Progress({ tty: false }), state: [], options: ['tty'] },
  ];
  for (const c of cases) {
    it(`${c.name}: getState holds exactly its state; setState keeps the options and refuses an option key`, () => {
      const saved = c.saved();
      const fresh = c.fresh();
      const state = saved.getState();
      expect(Object.keys(state).sort()).toEqual([...c.state].sort());
      const options = (cb: Callback) => Object.fromEntries(c.options.map((k) => [k, (cb as unknown as Record<string, unknown>)[k]]));
      const before = options(fresh);
      fresh.setState(decodeState(JSON.parse(JSON.stringify(encodeState(state)))) as Record<string, unknown>);
      expect(options(fresh)).toEqual(before);
      expect(fresh.getState()).toEqual(state);
      for (const key of c.options) {
        const bad = { ...state, [key]: 1 };
        expect(() => fresh.setState(bad), key).toThrow(ConfigError);
        expect(() => fresh.setState(bad), key).toThrow(`${c.name}.setState: "${key}" is not part of ${c.name}'s state`);
      }
      expect(options(fresh)).toEqual(before);
    });
  }

  it('a state that is not an object is a ConfigError naming the callback', () => {
    expect(() => new Recorder().setState(null as never)).toThrow(/Recorder\.setState: a state must be an object/);
    expect(() => new MixUp().setState([] as never)).toThrow(/got an array/);
  });

  it('Recorder.setState refuses per-batch series of different lengths, and changes nothing', () => {
    const rec = new Recorder();
    expect(() => rec.setState({ lrs: [1, 2], losses: [1] })).toThrow(/per-batch series must be arrays of one length.*lrs: 2, moms: 0, losses: 1/);
    expect(rec.lrs).toEqual([]);
  });

  it('a user callback without stateKeys keeps the default: every plain field, restored as given', () => {
    class Counter extends Callback {
      count = 0;
      label = 'x';
    }
    const c = new Counter();
    c.count = 3;
    expect(c.getState()).toEqual({ count: 3, label: 'x' });
    const d = new Counter();
    d.setState({ count: 3, anything: 1 });
    expect(d.count).toBe(3);
  });
});

describe('jumpToEpoch trims what a state recorded of the epochs it jumps back over', () => {
  it('Recorder forgets the batches and epochs ≥ N; ParamScheduler, ReduceLROnPlateau, SaveModel and EarlyStopping their records of them', async () => {
    const validLoss = [1.0, 0.9, 0.95, 0.96, 0.97, 0.85];
    const rlr = new ReduceLROnPlateau({ patience: 1, factor: 0.5 });
    const save = new SaveModel({ every: 'epoch', dir: tempDir() });
    const sched = new ParamScheduler({ momentum: () => 0.9 });
    const es = new EarlyStopping({ patience: 3 });
    const learn = tinyLearner([new ScriptedMetrics({ validLoss }), rlr, save, sched, es], { recorder: true });
    await learn.fit(6);
    expect(es.stoppedEpoch).toBe(4);
    const rec = learn.recorder!;
    rec.jumpToEpoch(2);
    expect(rec.epochs.map((e) => e.epoch)).toEqual([0, 1]);
    expect(rec.batchEpochs).toEqual([0, 0, 0, 1, 1, 1]);
    for (const series of [rec.iterations, rec.lrs, rec.moms, rec.losses, rec.smoothLosses]) expect(series).toHaveLength(6);
    sched.jumpToEpoch(2);
    expect(sched.hpEpochs).toEqual([0, 0, 0, 1, 1, 1]);
    expect(sched.hps.momentum).toHaveLength(6);
    expect(rlr.reductions.map((r) => r.epoch)).toEqual([2, 3, 4]);
    rlr.jumpToEpoch(3);
    expect(rlr.reductions.map((r) => r.epoch)).toEqual([2]);
    save.jumpToEpoch(2);
    expect(save.savedEpochs).toEqual([0, 1]);
    expect(save.lastSaved).toBe(save.epochPath(1));
    es.jumpToEpoch(5);
    expect(es.stoppedEpoch).toBe(4);
    es.jumpToEpoch(4);
    expect(es.stoppedEpoch).toBeNull();
  });
});
