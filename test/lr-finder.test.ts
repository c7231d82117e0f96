import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CSVLogger } from '../callbacks/csvLogger.js';
import { EarlyStopping } from '../callbacks/earlyStopping.js';
import { LRFinder } from '../callbacks/lrFinder.js';
import { ParamScheduler } from '../callbacks/paramScheduler.js';
import { SaveModel } from '../callbacks/saveModel.js';
import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import { Learner } from '../src/learner.js';
import type { TrainContext } from '../src/loop/context.js';
import { minimum, slide, steep, suggestionMarks, suggestLrs, valley } from '../src/lrFind.js';
import { lrFindChartSpec } from '../src/plot/charts.js';
import { mlp } from '../src/models/presets.js';
import type { OptimizerState } from '../src/optim/optimizer.js';
import { weightsSha256 } from '../src/weightsHash.js';
import { tinyLearner, tinyModel, tinyProblem } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const dirs: string[] = [];
function tempDir() {
  const d = mkdtempSync(join(tmpdir(), 'trainchart-lrfind-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Every file under `dir` with its bytes, for an exact before/after comparison. */
function filesUnder(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) {
      const path = join(e.parentPath, e.name);
      out[path] = readFileSync(path).toString('hex');
    }
  }
  return out;
}

function expectRel(actual: number, expected: number, tol = 1e-12) {
  expect(Math.abs(actual - expected), `${actual} vs ${expected}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(expected)));
}

/** Counts the stages the finder must suppress or must not cause. */
class StageCounter extends Callback {
  validations = 0;
  trainBatches = 0;
  onValidateBegin() {
    this.validations++;
  }
  onBatchEnd(ctx: TrainContext) {
    if (ctx.train) this.trainBatches++;
  }
}

/** The bytes of everything the optimizer keeps, for exact comparison. */
function optimizerBytes(s: OptimizerState) {
  return {
    kind: s.kind,
    hp: s.hp,
    slots: s.slots.map((slot) => ({
      param: slot.param,
      step: slot.step,
      buffers: slot.buffers.map((b) => ({ shape: b.shape, bytes: Buffer.from(b.values.buffer, b.values.byteOffset, b.values.byteLength).toString('hex') })),
    })),
  };
}

function weightBytes(learn: Learner): string[] {
  return learn.model.weights.map((w) => Buffer.from(w.read().dataSync().slice().buffer).toString('hex'));
}

/** fastai's smoothed loss (debiased EMA, β = 0.98), for predicting where the finder stops. */
function smoothed(raw: number[]): number[] {
  let avg = 0;
  return raw.map((v, i) => {
    avg = 0.98 * avg + 0.02 * v;
    return avg / (1 - 0.98 ** (i + 1));
  });
}

/** A loss whose value is chosen per batch from the lr in use: `value(lr)`, with zero gradients through the model. */
function lrDrivenLoss(learn: () => Learner, value: (lr: number) => number) {
  return (yPred: tf.Tensor) => tf.add(tf.mul(tf.mean(yPred), 0), tf.scalar(value(learn().lr))) as tf.Scalar;
}

describe('LRFinder: the schedule and when it stops', () => {
  it('uses lr_i = startLr·(endLr/startLr)^(i/numIt) for i = 0 … numIt−1, stops at numIt, never validates', async () => {
    const counter = new StageCounter();
    // 12 samples / batch 2 = 6 batches an epoch: numIt 20 needs 20 // 6 + 1 = 4 epochs.
    const learn = tinyLearner([], {}, 12, 4);
    learn.lr = 0.05;
    const res = await learn.lrFind({ startLr: 1e-5, endLr: 1, numIt: 20, stopDiv: false, callbacks: [counter] });
    expect(res.lrs).toHaveLength(20);
    res.lrs.forEach((lr, i) => expectRel(lr, 1e-5 * (1 / 1e-5) ** (i / 20)));
    expect(res.iterations).toBe(20);
    expect(res.stopReason).toBe('numIt');
    expect(counter.trainBatches).toBe(20);
    expect(counter.validations).toBe(0);
    expect(learn.lr).toBe(0.05);
    expect(res.recommended).toBe('valley');
  });

  it('stops at the first batch whose smoothed loss exceeds 4× the best smoothed loss', async () => {
    let learn!: Learner;
    // Flat at 1 until the lr passes 1e-3, then growing fast with the lr.
    const value = (lr: number) => (lr < 1e-3 ? 1 : 1 + (lr / 1e-3) ** 2);
    const { train } = tinyProblem(12, 0);
    learn = new Learner({ model: tinyModel(), data: { train }, loss: lrDrivenLoss(() => learn, value), optimizer: 'sgd', recorder: false });
    const res = await learn.lrFind({ startLr: 1e-5, endLr: 1, numIt: 100 });
    // Predicted from the definition: the schedule, the raw losses it gives, their smoothing.
    const lrs = Array.from({ length: 100 }, (_, i) => 1e-5 * (1 / 1e-5) ** (i / 100));
    const smooth = smoothed(lrs.map(value));
    let best = Infinity;
    const stopAt = smooth.findIndex((s) => {
      best = Math.min(best, s);
      return s > 4 * best;
    });
    expect(stopAt).toBeGreaterThan(0);
    expect(stopAt).toBeLessThan(99);
    expect(res.stopReason).toBe('diverged');
    expect(res.iterations).toBe(stopAt + 1);
    // The loss tensor is float32, hence the tolerance.
    res.losses.forEach((l, i) => expectRel(l, smooth[i]!, 1e-6));
    expect(res.losses.at(-1)!).toBeGreaterThan(4 * Math.min(...res.losses));
    expect(Math.max(...res.losses.slice(0, -1))).toBeLessThanOrEqual(4 * Math.min(...res.losses));
  });

  it('stops at the first NaN loss; with stopDiv false it runs on to numIt', async () => {
    let learn!: Learner;
    const value = (lr: number) => (lr > 1e-2 ? Number.NaN : 1);
    const { train } = tinyProblem(12, 0);
    learn = new Learner({ model: tinyModel(), data: { train }, loss: lrDrivenLoss(() => learn, value), optimizer: 'sgd', recorder: false });
    const firstNaN = Array.from({ length: 50 }, (_, i) => 1e-5 * (1 / 1e-5) ** (i / 50)).findIndex((lr) => lr > 1e-2);
    const res = await learn.lrFind({ startLr: 1e-5, endLr: 1, numIt: 50 });
    expect(res.stopReason).toBe('nan');
    expect(res.iterations).toBe(firstNaN + 1);
    expect(Number.isNaN(res.losses.at(-1)!)).toBe(true);
    const all = await learn.lrFind({ startLr: 1e-5, endLr: 1, numIt: 50, stopDiv: false });
    expect(all.iterations).toBe(50);
    expect(all.stopReason).toBe('numIt');
  });

  it('its state is the scheduler\'s and the search\'s record; the options are not', async () => {
    const finder = new LRFinder({ numIt: 12, stopDiv: false });
    await tinyLearner([], {}, 12, 4).fit(3, { callbacks: [finder, finder.restorer] });
    const state = finder.getState();
    const scheduler = Object.keys(new ParamScheduler({ lr: () => 1 }).getState());
    expect(Object.keys(state).sort()).toEqual([...scheduler, 'bestLoss', 'losses', 'lrs', 'rawLosses', 'stopReason'].sort());
    expect(state.lrs).toEqual(finder.lrs);
    expect(state.stopReason).toBe('numIt');
    expect(() => finder.setState({ numIt: 3 })).toThrow(ConfigError);
  });

  it('fewer than 6 iterations become 6 (fastai)', () => {
    expect(new LRFinder({ numIt: 2 }).numIt).toBe(6);
    expect(() => new LRFinder({ startLr: 0 })).toThrow(/startLr/);
  });
});

describe('LRFinder: the learner afterwards is byte-identical', () => {
  for (const kind of ['sgd', 'adam', 'adamw'] as const) {
    it(`${kind}, fresh optimizer (no buffers yet): weights, hp and step count as before, the buffers the search made are gone`, async () => {
      const learn = tinyLearner([], { optimizer: kind, recorder: true }, 12, 4);
      learn.lr = 3e-3;
      const weights = weightBytes(learn);
      const opt = optimizerBytes(learn.optimizer.getState());
      expect(opt.slots).toEqual([]);
      const tensors = tf.memory().numTensors;
      const res = await learn.lrFind({ numIt: 30 });
      expect(res.iterations).toBeGreaterThan(5);
      expect(weightBytes(learn)).toEqual(weights);
      expect(optimizerBytes(learn.optimizer.getState())).toEqual(opt);
      expect(learn.optimizer.numTensors).toBe(0);
      expect(tf.memory().numTensors).toBe(tensors);
      expect(learn.lr).toBe(3e-3);
    });
  }

  it('an optimizer with buffers and steps already: every buffer byte, hp and step count restored', async () => {
    const learn = tinyLearner([], { optimizer: 'adam', recorder: true }, 12, 4);
    await learn.fit(1, { lr: 1e-2 });
    learn.momentum = 0.8;
    const weights = weightBytes(learn);
    const opt = optimizerBytes(learn.optimizer.getState());
    expect(opt.slots.length).toBeGreaterThan(0);
    // 12 samples in batches of 2, one epoch: every variable has taken 6 steps.
    expect(opt.slots.map((slot) => slot.step)).toEqual(opt.slots.map(() => 6));
    // Outside the optimizer's own tensors: its cached hp scalars go with the restore (setState drops them).
    const tensors = tf.memory().numTensors - learn.optimizer.numTensors;
    await learn.lrFind({ numIt: 30 });
    expect(weightBytes(learn)).toEqual(weights);
    expect(optimizerBytes(learn.optimizer.getState())).toEqual(opt);
    expect(tf.memory().numTensors - learn.optimizer.numTensors).toBe(tensors);
  });

  it('a fit after lrFind is the fit without it (dropout streams and learn.rng restored too)', async () => {
    const make = () => {
      const { train, valid } = tinyProblem(12, 4);
      return new Learner({
        model: mlp({ seed: 3, inputShape: [4], hidden: [6], classes: 3, dropout: 0.5 }),
        data: { train, valid },
        loss: 'categoricalCrossentropy',
        optimizer: 'adam',
        seed: 5,
      });
    };
    const a = make();
    const b = make();
    await b.lrFind({ numIt: 20 });
    expect(b.rng.getState()).toEqual(a.rng.getState());
    await a.fit(2, { lr: 1e-2 });
    await b.fit(2, { lr: 1e-2 });
    expect(weightsSha256(b.model)).toBe(weightsSha256(a.model));
  });

  it('restores even when the search fails', async () => {
    class Boom extends Callback {
      onBatchEnd(ctx: TrainContext) {
        if (ctx.iteration === 3) throw new Error('boom');
      }
    }
    const learn = tinyLearner([], { optimizer: 'adam' }, 12, 4);
    const weights = weightBytes(learn);
    const opt = optimizerBytes(learn.optimizer.getState());
    await expect(learn.lrFind({ numIt: 20, callbacks: [new Boom()] })).rejects.toThrow(/boom/);
    expect(weightBytes(learn)).toEqual(weights);
    expect(optimizerBytes(learn.optimizer.getState())).toEqual(opt);
  });
});

describe('lrFind leaves the learner\'s own callbacks out of the search', () => {
  it('CSVLogger, EarlyStopping(trainLoss, restoreBest) and SaveModel(every epoch) attached: weights, optimizer, files and their states as before', async () => {
    const dir = tempDir();
    const csv = new CSVLogger({ path: join(dir, 'history.csv') });
    const early = new EarlyStopping({ monitor: 'trainLoss', restoreBest: true, patience: 5 });
    const save = new SaveModel({ every: 'epoch', dir: join(dir, 'models'), name: 'm' });
    const learn = tinyLearner([csv, early, save], { optimizer: 'adam', recorder: true }, 12, 4);
    await learn.fit(2, { lr: 1e-2 });
    expect(early.hasBestWeights).toBe(true);
    const files = filesUnder(dir);
    expect(Object.keys(files).length).toBe(3); // the CSV and two weights files
    const states = [csv, early, save].map((cb) => cb.getState());
    const weights = weightBytes(learn);
    const opt = optimizerBytes(learn.optimizer.getState());
    const callbacks = [...learn.callbacks];

    // 6 batches an epoch: numIt 30 runs 6 epochs, each one EarlyStopping, CSVLogger and SaveModel would see.
    const res = await learn.lrFind({ numIt: 30, stopDiv: false });
    expect(res.iterations).toBe(30);
    expect(weightBytes(learn)).toEqual(weights);
    expect(optimizerBytes(learn.optimizer.getState())).toEqual(opt);
    expect(filesUnder(dir)).toEqual(files);
    expect([csv, early, save].map((cb) => cb.getState())).toEqual(states);
    expect(learn.callbacks).toEqual(callbacks);
    expect(learn.callbacks.every((cb, i) => cb === callbacks[i])).toBe(true);
    // The Recorder did run: it holds the search (fastai's behaviour).
    expect(learn.recorder!.lrs).toEqual(res.lrs);

    // They are still attached and run in the next fit.
    await learn.fit(1, { lr: 1e-3 });
    expect(readdirSync(join(dir, 'models')).sort()).toEqual(['m_0.weights', 'm_1.weights']);
    expect(readFileSync(join(dir, 'history.csv'), 'utf8').trim().split('\n')).toHaveLength(2);
  });

  it('the restore is the last thing at trainEnd: a callback passed in that restores its own "best" weights later cannot undo it', async () => {
    const learn = tinyLearner([], { optimizer: 'adam', recorder: true }, 12, 4);
    const weights = weightBytes(learn);
    const opt = optimizerBytes(learn.optimizer.getState());
    // Order 70 > the finder's 0: its trainEnd runs after the finder's own hooks.
    const early = new EarlyStopping({ monitor: 'trainLoss', restoreBest: true, patience: 100 });
    await learn.lrFind({ numIt: 30, stopDiv: false, callbacks: [early] });
    expect(early.hasBestWeights).toBe(true);
    expect(weightBytes(learn)).toEqual(weights);
    expect(optimizerBytes(learn.optimizer.getState())).toEqual(opt);
  });

  it('a callback of the learner passed in options.callbacks runs once per batch and stays attached; the others do not run', async () => {
    const passed = new StageCounter();
    const left = new StageCounter();
    const learn = tinyLearner([passed, left], {}, 12, 4);
    const res = await learn.lrFind({ numIt: 20, stopDiv: false, callbacks: [passed] });
    expect(passed.trainBatches).toBe(res.iterations);
    expect(left.trainBatches).toBe(0);
    expect(learn.callbacks).toEqual([passed, left]);
    await learn.fit(1);
    expect(passed.trainBatches).toBe(res.iterations + 6);
    expect(left.trainBatches).toBe(6);
  });

  it('while a fit runs, lrFind rejects and the running fit keeps its callbacks', async () => {
    const counter = new StageCounter();
    const learn = tinyLearner([counter], {}, 12, 4);
    const running = learn.fit(2, { yieldEveryMs: 0 });
    await expect(learn.lrFind({ numIt: 10 })).rejects.toThrow(/already running/);
    await running;
    expect(counter.trainBatches).toBe(12);
    expect(learn.callbacks).toEqual([counter]);
  });
});

describe('lrFind options', () => {
  it('an unknown key (fastai\'s num_it) is a ConfigError naming it', async () => {
    const learn = tinyLearner([], {}, 12, 4);
    await expect(learn.lrFind({ num_it: 10 } as never)).rejects.toThrow(ConfigError);
    await expect(learn.lrFind({ num_it: 10 } as never)).rejects.toThrow(/lrFind: unknown option "num_it"; known options: startLr, endLr, numIt, stopDiv, callbacks/);
    await expect(learn.lrFind(null as never)).rejects.toThrow(ConfigError);
  });
});

/** A 100-point finder curve: a dip around lr 10^-2.5 with some noise, rising at the end, NaN from point 93. */
function fastaiCurve() {
  const numIt = 100;
  const curveLrs = Array.from({ length: numIt }, (_, i) => 1e-7 * (10 / 1e-7) ** (i / numIt));
  const curve = curveLrs.map((lr, i) => {
    let v = 2.3 - 1.5 * Math.exp(-(((Math.log10(lr) + 2.5) / 1.2) ** 2)) + 0.02 * Math.sin(i * 1.7);
    if (i > 88) v += 0.05 * (i - 88) ** 1.5;
    return i >= 93 ? Number.NaN : v;
  });
  return { numIt, curveLrs, curve };
}

describe('suggestions (fastai v2 valley, steep, minimum, slide)', () => {
  // lr = 10^(−5 + 0.5 i): a tenfold every two points.
  const lrs = Array.from({ length: 10 }, (_, i) => 10 ** (-5 + 0.5 * i));
  const losses = [3.0, 2.9, 3.1, 2.5, 2.0, 2.2, 1.4, 1.0, 1.8, 4.0];

  it('valley: the longest decreasing run 3.0 > 2.9 > 2.5 > 2.0 > 1.4 > 1.0 ends at 7 with length 6, so max_start = 7 − 6 = 1, idx = 1 + ⌊6/3⌋ + ⌊2/2⌋ = 4', () => {
    const v = valley(lrs, losses);
    expect(v.lr).toBe(lrs[4]);
    expect(v.point).toEqual({ lr: lrs[4], loss: 2.0 });
  });

  it('steep: the most negative slope is 2.2 → 1.4 (segment 5), suggesting lrs[5]', () => {
    expect(steep(lrs, losses)).toEqual({ lr: lrs[5], point: { lr: lrs[5], loss: 2.2 } });
  });

  it('minimum: the lowest loss 1.0 is at lrs[7] = 10^-1.5; the suggestion is a tenth of it, marked there on the curve', () => {
    const m = minimum(lrs, losses);
    expectRel(m.lr, 10 ** -1.5 / 10);
    // A tenth of lrs[7] is lrs[5] = 10^-2.5, so the marker sits on that point of the curve.
    expect(m.point.lr).toBe(m.lr);
    expectRel(m.point.loss, 2.2, 1e-9);
  });

  it('slide: on a straight line every gradient is equal, so the rule stops at once at lrs[n − 1 − 15]', () => {
    const n = 30;
    const lin = Array.from({ length: n }, (_, i) => 10 ** (-6 + 0.2 * i));
    const line = Array.from({ length: n }, (_, i) => 3 - 0.01 * i);
    const s = slide(lin, line);
    expect(s.lr).toBe(lin[n - 16]);
    expectRel(s.point.loss, line[n - 16]!);
    // Too few points for the 15-point window: fastai raises, here NaN.
    expect(Number.isNaN(slide(lin.slice(0, 15), line.slice(0, 15)).lr)).toBe(true);
  });

  it('on a 100-point finder curve, with fastai’s [numIt//10 : −5] window cut at the first NaN, equal fastai’s own code', () => {
    // The curve and the expected values come from fastai/callback/schedule.py's valley, steep,
    // minimum, slide and lr_find's slicing, run in numpy float64 on this exact curve.
    const { numIt, curveLrs, curve } = fastaiCurve();
    const { suggestions, points } = suggestLrs(curveLrs, curve, numIt);
    expectRel(suggestions.valley, 0.00013182567385564074, 1e-9);
    expectRel(points.valley.loss, 1.8938819270988507, 1e-9);
    expectRel(suggestions.steep, 0.0004786300923226385, 1e-9);
    expectRel(points.steep.loss, 1.3662939017218598, 1e-9);
    expectRel(suggestions.minimum, 0.0002511886431509582, 1e-9);
    // fastai marks minimum at the lowest loss (lr 0.0025118…, loss 0.79678…); here it is marked
    // at the suggestion, its loss interpolated as numpy.interp does on log10(lr).
    expect(points.minimum.lr).toBe(suggestions.minimum);
    expectRel(points.minimum.loss, 1.6522126274663322, 1e-9);
    expectRel(suggestions.slide, 0.007585775750291836, 1e-9);
    expectRel(points.slide.loss, 0.9425720564336156, 1e-9);
  });
});

describe('the LR finder plot marks each suggestion at the lr its legend names', () => {
  type Mark = { name: string; lr: number; loss: number; label: string };
  /** The suggestion marks of an lrFindChartSpec (its second layer's data). */
  function marksOf(spec: ReturnType<typeof lrFindChartSpec>): Record<string, Mark> {
    const layers = (spec as unknown as { layer: Array<{ data?: { values: unknown[] } }> }).layer;
    const values = layers[1]!.data!.values as Mark[];
    return Object.fromEntries(values.map((m) => [m.name, m]));
  }

  it('every mark at its suggested lr (minimum too, a tenth of the lowest loss’s lr, not at the lowest point as fastai), valley and steep on curve points', () => {
    const { numIt, curveLrs, curve } = fastaiCurve();
    const { suggestions, points } = suggestLrs(curveLrs, curve, numIt);
    const marks = marksOf(lrFindChartSpec({ lrs: curveLrs, losses: curve, suggestions: suggestionMarks({ suggestions, points }) }));
    expect(Object.keys(marks).sort()).toEqual(['minimum', 'slide', 'steep', 'valley']);

    const window = curve.slice(numIt / 10, 93);
    const iMin = numIt / 10 + window.indexOf(Math.min(...window));
    expectRel(marks.minimum!.lr, curveLrs[iMin]! / 10);

    for (const name of ['valley', 'steep', 'minimum', 'slide'] as const) {
      expect(marks[name]!.lr, name).toBe(suggestions[name]);
      expect({ lr: marks[name]!.lr, loss: marks[name]!.loss }, name).toEqual(points[name]);
      expect(marks[name]!.label).toBe(`${name}: ${suggestions[name].toExponential(2)}`);
    }
    // valley and steep sit on points of the curve itself.
    expect(curve[curveLrs.indexOf(marks.valley!.lr)]).toBe(marks.valley!.loss);
    expect(curve[curveLrs.indexOf(marks.steep!.lr)]).toBe(marks.steep!.loss);
  });

  it('a bare number is still marked at the suggestion on the curve', () => {
    const { curveLrs, curve } = fastaiCurve();
    const marks = marksOf(lrFindChartSpec({ lrs: curveLrs, losses: curve, suggestions: { valley: curveLrs[40]! } }));
    expect(marks.valley).toMatchObject({ lr: curveLrs[40], loss: curve[40] });
  });

  it('lrFind returns the points with the suggestions, as suggestLrs computes them from its curve', async () => {
    const learn = tinyLearner([], { optimizer: 'adam', recorder: true }, 12, 4);
    const res = await learn.lrFind({ numIt: 60, stopDiv: false });
    const { suggestions, points } = suggestLrs(res.lrs, res.losses, 60);
    expect(res.suggestions).toEqual(suggestions);
    expect(res.points).toEqual(points);
    expect(res.points.minimum.lr).toBe(res.suggestions.minimum);
    expect(suggestionMarks(res).minimum).toEqual({ lr: res.suggestions.minimum, point: res.points.minimum });
  });
});

describe('lrFind keeps what shapes a training step, and always leaves the learner as it was', () => {
  it('MixUp, GradientAccumulation and GradientClipping run in the search; their state is put back', async () => {
    const { Callback } = await import('../src/loop/callback.js');
    const { GradientAccumulation } = await import('../callbacks/gradientAccumulation.js');
    const { GradientClipping } = await import('../callbacks/gradientClipping.js');
    const { MixUp } = await import('../callbacks/mixUp.js');
    let batchesSeen = 0;
    class Spy extends Callback {
      override readonly shapesTraining = true;
      onBatchEnd(ctx: TrainContext) {
        if (ctx.train) batchesSeen++;
      }
    }
    const acc = new GradientAccumulation({ nBatches: 2 });
    const clip = new GradientClipping({ maxNorm: 1 });
    const learn = tinyLearner([new MixUp(), acc, clip, new Spy()], { optimizer: 'adam' });
    const before = { acc: acc.getState(), clip: clip.getState() };
    await learn.lrFind({ numIt: 6 });
    expect(batchesSeen).toBeGreaterThan(0);
    expect(acc.getState()).toEqual(before.acc);
    expect(clip.getState()).toEqual(before.clip);
  });

  it('a trainEnd hook that throws before the restorer still leaves weights, optimizer and lr as they were', async () => {
    const { Callback } = await import('../src/loop/callback.js');
    class Boom extends Callback {
      onTrainEnd() {
        throw new Error('boom at trainEnd');
      }
    }
    const learn = tinyLearner([], { optimizer: 'adam' });
    const lr = learn.lr;
    const weights = learn.model.getWeights().map((w) => w.dataSync().slice());
    const optimizer = JSON.stringify(learn.optimizer.getState(), (_k, v) => (v instanceof Float32Array ? Array.from(v) : v));
    await expect(learn.lrFind({ numIt: 6, callbacks: [new Boom()] })).rejects.toThrow(/boom at trainEnd/);
    expect(learn.lr).toBe(lr);
    learn.model.getWeights().forEach((w, i) => expect(w.dataSync()).toEqual(weights[i]));
    expect(JSON.stringify(learn.optimizer.getState(), (_k, v) => (v instanceof Float32Array ? Array.from(v) : v))).toBe(optimizer);
  });
});
