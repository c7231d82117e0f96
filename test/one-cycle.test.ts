import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ParamScheduler } from '../callbacks/paramScheduler.js';
import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import {
  annealCos,
  annealExp,
  annealLinear,
  annealNo,
  annealPoly,
  combineScheds,
  schedLin,
  schedNo,
} from '../src/schedule/annealers.js';
import { tinyLearner } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Relative closeness: the formulas are evaluated in a different but equivalent order. */
function expectRel(actual: number, expected: number, tol = 1e-12) {
  expect(Math.abs(actual - expected), `${actual} vs ${expected}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(expected)));
}

/** What the step of each train batch used, read from the optimizer just before the step. */
class HpProbe extends Callback {
  rows: Array<{ iteration: number; epoch: number; lr: number; mom: number; wd: number }> = [];
  atEpochBegin: number[] = [];
  validLrs: number[] = [];
  onEpochBegin() {
    this.atEpochBegin.push(this.learn.lr);
  }
  onBackwardEnd(ctx: TrainContext) {
    const hp = this.learn.optimizer.hp;
    this.rows.push({ iteration: ctx.iteration, epoch: ctx.epoch, lr: hp.lr, mom: hp.momentum, wd: hp.wd });
  }
  onBatchBegin(ctx: TrainContext) {
    if (!ctx.train) this.validLrs.push(this.learn.lr);
  }
}

// fastai v1's closed forms, written independently of src/schedule (the v2 form is used there).
const cosV1 = (start: number, end: number, pct: number) => end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);

/** fastai v2 fit_one_cycle's lr at position `pos`, from the definition. */
function oneCycleLr(pos: number, lrMax: number, div: number, pct: number, divFinal: number) {
  return pos < pct ? cosV1(lrMax / div, lrMax, pos / pct) : cosV1(lrMax, lrMax / divFinal, (pos - pct) / (1 - pct));
}
function oneCycleMom(pos: number, moms: [number, number, number], pct: number) {
  return pos < pct ? cosV1(moms[0], moms[1], pos / pct) : cosV1(moms[1], moms[2], (pos - pct) / (1 - pct));
}

describe('annealers (fastai definitions)', () => {
  it('no, linear, cos, exp, poly at pos 0, 0.5, 1', () => {
    for (const pos of [0, 0.5, 1]) expect(annealNo(3, 9, pos)).toBe(3);
    expect([0, 0.5, 1].map((p) => annealLinear(2, 10, p))).toEqual([2, 6, 10]);
    // cos: end + (start − end)/2·(1 + cos(π·pos)): 2, the midpoint 6, 10; and at 0.25 the v1 closed form.
    expectRel(annealCos(2, 10, 0), 2);
    expectRel(annealCos(2, 10, 0.5), 6);
    expectRel(annealCos(2, 10, 1), 10);
    expectRel(annealCos(2, 10, 0.25), 10 + (-8 / 2) * (1 + Math.SQRT1_2));
    // exp: start·(end/start)^pos, the geometric midpoint at 0.5.
    expectRel(annealExp(1e-4, 1e-2, 0), 1e-4);
    expectRel(annealExp(1e-4, 1e-2, 0.5), 1e-3);
    expectRel(annealExp(1e-4, 1e-2, 1), 1e-2);
    // poly(p): end + (start − end)·(1 − pos)^p: (10, 2, p=2) → 10, 2 + 8·0.25 = 4, 2.
    expect([0, 0.5, 1].map((p) => annealPoly(2)(10, 2, p))).toEqual([10, 4, 2]);
    expect(annealPoly(1)(10, 2, 0.25)).toBe(8);
  });

  it('combineScheds: phases by fraction of the run; a boundary starts the next phase; pos 1 stays in the last', () => {
    const f = combineScheds([0.25, 0.75], [schedLin(0, 1), schedLin(1, 0)]);
    expect(f(0)).toBe(0);
    expect(f(0.125)).toBe(0.5);
    expect(f(0.25)).toBe(1);
    expect(f(0.625)).toBe(0.5);
    expect(f(1)).toBe(0);
    const three = combineScheds([0.5, 0.25, 0.25], [schedNo(7), schedLin(0, 4), schedLin(10, 20)]);
    expect([0, 0.49, 0.5, 0.625, 0.75, 0.875, 1].map(three)).toEqual([7, 7, 0, 2, 10, 15, 20]);
    expect(() => combineScheds([0.5, 0.4], [schedNo(1), schedNo(2)])).toThrow(ConfigError);
    expect(() => combineScheds([1], [])).toThrow(ConfigError);
  });
});

describe('fitOneCycle (fastai v2 fit_one_cycle)', () => {
  // 40 samples in batches of 2: 20 batches an epoch, 2 epochs, 40 train iterations.
  const N_TRAIN = 40;
  const TOTAL = 40;

  it('the lr and momentum each step used equal the closed forms at the first batch, the end of warm-up, mid-annealing and the last batch', async () => {
    const probe = new HpProbe();
    const learn = tinyLearner([probe], {}, N_TRAIN, 4);
    const lrMax = 0.1;
    const res = await learn.fitOneCycle(2, { lrMax });
    expect(res.iterations).toBe(TOTAL);
    expect(probe.rows).toHaveLength(TOTAL);
    const moms: [number, number, number] = [0.95, 0.85, 0.95];
    for (const [i, pos] of [
      [0, 0],
      [9, 9 / 40],
      [10, 0.25], // end of warm-up: the peak
      [25, 0.625], // middle of the annealing phase
      [39, 39 / 40],
    ] as const) {
      const row = probe.rows[i]!;
      expect(row.iteration).toBe(i);
      expectRel(row.lr, oneCycleLr(pos, lrMax, 25, 0.25, 1e5));
      expectRel(row.mom, oneCycleMom(pos, moms, 0.25));
    }
    expect(probe.rows[0]!.lr).toBeCloseTo(lrMax / 25, 15);
    expectRel(probe.rows[10]!.lr, lrMax);
    expectRel(probe.rows[10]!.mom, 0.85);
    expectRel(probe.rows[25]!.lr, (lrMax + lrMax / 1e5) / 2);
    expectRel(probe.rows[25]!.mom, 0.9);
    // Every batch, not only the chosen ones.
    probe.rows.forEach((r, i) => {
      expectRel(r.lr, oneCycleLr(i / TOTAL, lrMax, 25, 0.25, 1e5));
      expectRel(r.mom, oneCycleMom(i / TOTAL, moms, 0.25));
    });
    // Validation batches do not move the schedule: they see the last train batch's lr.
    expect(probe.validLrs.length).toBeGreaterThan(0);
  });

  it('custom divFactor, pctStart, finalDiv, moms and wd; lrMax defaults to the learner lr', async () => {
    const probe = new HpProbe();
    const learn = tinyLearner([probe], { optimizer: 'adam' }, N_TRAIN, 0);
    learn.lr = 0.02;
    const moms: [number, number, number] = [0.9, 0.8, 0.85];
    await learn.fitOneCycle(2, { divFactor: 10, pctStart: 0.5, finalDiv: 100, moms, wd: 0.01 });
    probe.rows.forEach((r, i) => {
      expectRel(r.lr, oneCycleLr(i / TOTAL, 0.02, 10, 0.5, 100));
      expectRel(r.mom, oneCycleMom(i / TOTAL, moms, 0.5));
      expect(r.wd).toBe(0.01);
    });
  });

  it('resuming at epoch 1 (jumpToEpoch) continues the schedule at pos 0.5', async () => {
    class JumpToOne extends Callback {
      onTrainBegin() {
        return { epoch: 1 };
      }
    }
    const probe = new HpProbe();
    const learn = tinyLearner([new JumpToOne(), probe], {}, N_TRAIN, 0);
    await learn.fitOneCycle(2, { lrMax: 0.1 });
    expect(probe.rows).toHaveLength(20);
    // Set by jumpToEpoch already, before the first batch of epoch 1.
    expectRel(probe.atEpochBegin[0]!, oneCycleLr(0.5, 0.1, 25, 0.25, 1e5));
    probe.rows.forEach((r, b) => {
      expect(r.epoch).toBe(1);
      expectRel(r.lr, oneCycleLr((20 + b) / TOTAL, 0.1, 25, 0.25, 1e5));
    });
  });

  it("an unknown option (fastai's pct_start, fit's lr) is a ConfigError naming it, and nothing runs", async () => {
    const probe = new HpProbe();
    const learn = tinyLearner([probe], {}, N_TRAIN, 0);
    await expect(learn.fitOneCycle(1, { pct_start: 0.3 } as never)).rejects.toThrow(ConfigError);
    await expect(learn.fitOneCycle(1, { pct_start: 0.3 } as never)).rejects.toThrow(/fitOneCycle: unknown option "pct_start"; known options: lrMax, divFactor, pctStart/);
    await expect(learn.fitOneCycle(1, { lr: 0.1 } as never)).rejects.toThrow(/unknown option "lr"/);
    await expect(learn.fitOneCycle(1, null as never)).rejects.toThrow(ConfigError);
    expect(probe.rows).toEqual([]);
    // Every documented option is known (fit's own, lr aside, included).
    await learn.fitOneCycle(1, { lrMax: 0.01, divFactor: 25, pctStart: 0.3, finalDiv: 1e4, moms: [0.95, 0.85, 0.95], wd: 0, callbacks: [], yieldEveryMs: 25 });
    expect(probe.rows).toHaveLength(N_TRAIN / 2);
  });
});

describe('ParamScheduler', () => {
  it('drives lr, beta1 and wd with any schedule, records what each batch used, and round-trips its state', async () => {
    const probe = new HpProbe();
    const sched = new ParamScheduler({ lr: schedLin(0.01, 0.001), beta1: schedLin(0.9, 0.8), wd: combineScheds([0.5, 0.5], [schedNo(0), schedNo(0.1)]) });
    const learn = tinyLearner([probe], { optimizer: 'adamw' }, 12, 0);
    await learn.fit(2, { callbacks: [sched] });
    const total = 12;
    probe.rows.forEach((r, i) => {
      const pos = i / total;
      expectRel(r.lr, 0.01 + pos * (0.001 - 0.01));
      expectRel(r.mom, 0.9 + pos * (0.8 - 0.9));
      expect(r.wd).toBe(pos < 0.5 ? 0 : 0.1);
    });
    expect(sched.hps.lr).toEqual(probe.rows.map((r) => r.lr));
    expect(sched.hps.beta1).toEqual(probe.rows.map((r) => r.mom));
    const state = sched.getState();
    const copy = new ParamScheduler({ lr: schedNo(1) });
    copy.setState(state);
    expect(copy.getState()).toEqual(state);
    expect(copy.hps).toEqual(sched.hps);
    expect(copy.pos).toBe(sched.pos);
  });

  it('rejects what it cannot schedule', () => {
    expect(() => new ParamScheduler({ beta2: schedNo(1) } as never)).toThrow(/cannot schedule 'beta2'/);
    expect(() => new ParamScheduler({ momentum: schedNo(0.9), beta1: schedNo(0.9) })).toThrow(ConfigError);
    expect(() => new ParamScheduler({ lr: 0.1 as never })).toThrow(/must be a function/);
  });
});
