import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { decodeState, encodeState, type JsonValue } from '../src/io/stateCodec.js';
import { mlp } from '../src/models/presets.js';
import {
  createOptimizer,
  DEFAULT_HYPERPARAMS,
  type HyperParams,
  type Optimizer,
  type OptimizerKind,
  type OptimizerState,
} from '../src/optim/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// ---------------------------------------------------------------------------------------------
// A plain-JS (float64) implementation of the formulas in src/optim/optimizer.ts.

interface RefSlots {
  buf?: number[];
  m?: number[];
  v?: number[];
}

class RefOptimizer {
  t = 0;
  slots = new Map<number, RefSlots>();
  constructor(readonly kind: OptimizerKind) {}

  step(hp: HyperParams, params: number[][], grads: Array<number[] | undefined>): void {
    this.t++;
    const { lr, momentum, wd, beta2, eps } = hp;
    params.forEach((p, i) => {
      const g0 = grads[i];
      if (!g0) return;
      if (this.kind === 'sgd') {
        const g = g0.map((gj, j) => (wd > 0 ? gj + wd * p[j]! : gj));
        let s = this.slots.get(i);
        if (!s && momentum > 0) this.slots.set(i, (s = { buf: p.map(() => 0) }));
        const d = s ? s.buf!.map((b, j) => momentum * b + g[j]!) : g;
        if (s) s.buf = d;
        for (let j = 0; j < p.length; j++) p[j] = p[j]! - lr * d[j]!;
        return;
      }
      const decoupled = this.kind === 'adamw';
      const g = g0.map((gj, j) => (!decoupled && wd > 0 ? gj + wd * p[j]! : gj));
      let s = this.slots.get(i);
      if (!s) this.slots.set(i, (s = { m: p.map(() => 0), v: p.map(() => 0) }));
      s.m = s.m!.map((m, j) => momentum * m + (1 - momentum) * g[j]!);
      s.v = s.v!.map((v, j) => beta2 * v + (1 - beta2) * g[j]! ** 2);
      for (let j = 0; j < p.length; j++) {
        if (decoupled) p[j] = p[j]! * (1 - lr * wd);
        const mHat = s.m[j]! / (1 - momentum ** this.t);
        const vHat = s.v[j]! / (1 - beta2 ** this.t);
        p[j] = p[j]! - (lr * mHat) / (Math.sqrt(vHat) + eps);
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------

const W0 = [0.5, -1.2, 0.3, 2.0, -0.7, 0.05];
const B0 = [0.1, -0.1, 0.0];

/** Hand-chosen gradients per step: mixed signs and magnitudes, one exact zero. */
function gradsAt(step: number): { w: number[]; b: number[] } {
  return {
    w: [0.3 - 0.1 * step, -0.5, 0.02 * step, 1.5, 0.0, -0.25 + 0.05 * step],
    b: [0.01, -0.4 + 0.1 * step, 0.8],
  };
}

let varCounter = 0;
const created: tf.Variable[] = [];
const optimizers: Optimizer[] = [];

function makeParams(w = W0, b = B0, names?: [string, string]): [tf.Variable, tf.Variable] {
  const id = varCounter++;
  const [wn, bn] = names ?? [`t${id}/kernel`, `t${id}/bias`];
  // tidy: tf.variable shares the initial tensor's data, the initial tensor itself must go.
  const vw = tf.tidy(() => tf.variable(tf.tensor2d(w, [2, 3]), true, wn));
  const vb = tf.tidy(() => tf.variable(tf.tensor1d(b), true, bn));
  created.push(vw, vb);
  return [vw, vb];
}

function track(o: Optimizer): Optimizer {
  optimizers.push(o);
  return o;
}

afterEach(() => {
  for (const o of optimizers.splice(0)) o.dispose();
  for (const v of created.splice(0)) if (!v.isDisposed) v.dispose();
});

/** Runs one step with the hand-chosen gradients, disposing them afterwards. */
function stepWith(opt: Optimizer, params: tf.Variable[], g: { w?: number[]; b?: number[] }): void {
  const grads: tf.NamedTensorMap = {};
  if (g.w) grads[params[0]!.name] = tf.tensor2d(g.w, [2, 3]);
  if (g.b) grads[params[1]!.name] = tf.tensor1d(g.b);
  try {
    opt.step(params, grads);
  } finally {
    tf.dispose(grads);
  }
}

function values(v: tf.Variable): number[] {
  return Array.from(v.dataSync());
}

function expectClose(actual: number[], expected: number[], tol = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => {
    expect(Math.abs(a - expected[i]!), `index ${i}: ${a} vs ${expected[i]}`).toBeLessThan(tol);
  });
}

/** Runs optimizer and reference side by side through a schedule of hyper-parameter changes. */
function runAgainstReference(
  kind: OptimizerKind,
  schedule: Array<Partial<HyperParams>>,
  base: Partial<HyperParams> = {},
): { opt: Optimizer; params: tf.Variable[]; ref: number[][] } {
  const opt = track(createOptimizer({ kind, ...base }));
  const params = makeParams();
  const refOpt = new RefOptimizer(kind);
  const ref = [[...W0], [...B0]];
  schedule.forEach((change, step) => {
    // As a callback would: mutate hp between steps.
    Object.assign(opt.hp, change);
    const g = gradsAt(step);
    stepWith(opt, params, g);
    refOpt.step({ ...opt.hp }, ref, [g.w, g.b]);
    expectClose(values(params[0]!), ref[0]!);
    expectClose(values(params[1]!), ref[1]!);
  });
  return { opt, params, ref };
}

const changing: Array<Partial<HyperParams>> = [
  {},
  {},
  { lr: 0.05 },
  { momentum: 0.5 },
  { lr: 0.2, momentum: 0.95 },
  { momentum: 0 },
  { lr: 0.01, momentum: 0.8 },
];

describe('createOptimizer', () => {
  it('uses fastai defaults per kind', () => {
    expect(track(createOptimizer('sgd')).hp).toMatchObject({ lr: 1e-2, momentum: 0.9, wd: 0 });
    expect(track(createOptimizer('adam')).hp).toEqual({ lr: 1e-3, momentum: 0.9, wd: 0, beta2: 0.99, eps: 1e-5 });
    expect(track(createOptimizer('adamw')).hp).toEqual({ lr: 1e-3, momentum: 0.9, wd: 1e-2, beta2: 0.99, eps: 1e-5 });
    expect(track(createOptimizer('adamw')).kind).toBe('adamw');
  });

  it('applies spec fields, then overrides, without touching the shared defaults', () => {
    const o = track(createOptimizer({ kind: 'adam', lr: 0.1, eps: 1e-8 }, { lr: 0.3, wd: 0.5 }));
    expect(o.hp).toEqual({ lr: 0.3, momentum: 0.9, wd: 0.5, beta2: 0.99, eps: 1e-8 });
    o.hp.lr = 7;
    expect(DEFAULT_HYPERPARAMS.adam.lr).toBe(1e-3);
    expect(track(createOptimizer('adam')).hp.lr).toBe(1e-3);
  });

  it('treats undefined fields as unset', () => {
    expect(track(createOptimizer({ kind: 'sgd', lr: undefined }, { momentum: undefined })).hp.lr).toBe(1e-2);
  });

  const bad: Array<[string, () => unknown, RegExp]> = [
    ['lr 0', () => createOptimizer('sgd', { lr: 0 }), /lr must be a positive finite number, got 0$/],
    ['lr negative', () => createOptimizer('adam', { lr: -1e-3 }), /lr must be a positive finite number, got -0.001/],
    ['lr NaN', () => createOptimizer({ kind: 'adamw', lr: NaN }), /lr must be a positive finite number, got NaN/],
    ['lr Infinity', () => createOptimizer('sgd', { lr: Infinity }), /lr must be a positive finite number, got Infinity/],
    ['lr string', () => createOptimizer('sgd', { lr: '0.1' as unknown as number }), /got the string "0.1"/],
    ['momentum 1', () => createOptimizer('sgd', { momentum: 1 }), /momentum must be in \[0, 1\).*got 1/],
    ['momentum < 0', () => createOptimizer('adam', { momentum: -0.1 }), /momentum must be in \[0, 1\).*beta1.*got -0.1/],
    ['wd < 0', () => createOptimizer('adamw', { wd: -0.01 }), /wd must be a finite number ≥ 0.*got -0.01/],
    ['beta2 1', () => createOptimizer('adam', { beta2: 1 }), /beta2 must be in \[0, 1\), got 1/],
    ['eps 0', () => createOptimizer('adam', { eps: 0 }), /eps must be a positive finite number, got 0/],
    ['unknown kind', () => createOptimizer('rmsprop' as OptimizerKind), /unknown optimizer 'rmsprop'; valid kinds are 'sgd', 'adam', 'adamw'/],
    ['missing kind', () => createOptimizer({} as { kind: OptimizerKind }), /unknown optimizer undefined/],
    [
      'unknown option',
      () => createOptimizer({ kind: 'adam', beta1: 0.8 } as unknown as { kind: OptimizerKind }),
      /unknown optimizer option 'beta1' \(Adam's beta1 is called 'momentum'\); valid options are 'lr'/,
    ],
    ['unknown override', () => createOptimizer('sgd', { nesterov: 1 } as Partial<HyperParams>), /unknown optimizer option 'nesterov'/],
  ];
  for (const [name, f, msg] of bad) {
    it(`rejects ${name} with a ConfigError`, () => {
      let err: unknown;
      try {
        track(f() as Optimizer);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).code).toBe('CONFIG');
      expect((err as Error).message).toMatch(msg);
    });
  }
});

describe('sgd', () => {
  it('without momentum is plain gradient descent and keeps no slot', () => {
    const { opt } = runAgainstReference('sgd', [{}, {}, { lr: 0.5 }], { lr: 0.1, momentum: 0 });
    expect(opt.numTensors).toBe(0);
    expect(opt.getState().slots).toEqual([]);
    // Spot-check one value by hand: w[0] = 0.5 − 0.1·0.3 − 0.1·0.2 − 0.5·0.1
    const p = makeParams(W0, B0);
    const o = track(createOptimizer('sgd', { lr: 0.1, momentum: 0 }));
    stepWith(o, p, { w: gradsAt(0).w });
    expect(p[0]!.dataSync()[0]).toBeCloseTo(0.5 - 0.1 * 0.3, 6);
  });

  it('with momentum matches the reference while lr and momentum change between steps', () => {
    const { opt, params, ref } = runAgainstReference('sgd', changing, { lr: 0.1 });
    expect(opt.numTensors).toBe(2);
    // The run actually moved the parameters (so the comparison is not vacuous).
    expect(Math.abs(values(params[0]!)[3]! - W0[3]!)).toBeGreaterThan(0.5);
    expect(ref[0]![3]).toBeCloseTo(values(params[0]!)[3]!, 5);
  });

  it('first momentum step equals the plain gradient step (buf starts at 0)', () => {
    const a = makeParams();
    const b = makeParams();
    const withMom = track(createOptimizer('sgd', { lr: 0.1, momentum: 0.9 }));
    const without = track(createOptimizer('sgd', { lr: 0.1, momentum: 0 }));
    stepWith(withMom, a, gradsAt(0));
    stepWith(without, b, gradsAt(0));
    expect(values(a[0]!)).toEqual(values(b[0]!));
  });

  it('applies L2 weight decay to the gradient', () => {
    runAgainstReference('sgd', changing, { lr: 0.1, wd: 0.1 });
    runAgainstReference('sgd', [{}, { wd: 0.5 }, { wd: 0 }, {}], { lr: 0.1, momentum: 0 });
  });

  it('creates the momentum buffer when a callback raises momentum from 0', () => {
    const { opt } = runAgainstReference('sgd', [{}, {}, { momentum: 0.9 }, {}], { lr: 0.1, momentum: 0 });
    expect(opt.numTensors).toBe(2);
  });
});

describe('adam', () => {
  it('matches the reference while lr and beta1 change between steps', () => {
    const { params } = runAgainstReference('adam', changing, { lr: 0.05 });
    expect(Math.abs(values(params[0]!)[3]! - W0[3]!)).toBeGreaterThan(0.1);
  });

  it('takes a first step of about lr·sign(g) (debiasing)', () => {
    const p = makeParams();
    const o = track(createOptimizer('adam', { lr: 0.01 }));
    stepWith(o, p, gradsAt(0));
    const moved = values(p[0]!).map((x, i) => x - W0[i]!);
    // g = [0.3, −0.5, 0, 1.5, 0, −0.25]: each non-zero moves by ≈ −lr·sign(g); zeros stay.
    expectClose(moved, [-0.01, 0.01, 0, -0.01, 0, 0.01], 1e-6 + 0.01 * 1e-4);
  });

  it('matches the reference with beta2, eps and L2 weight decay', () => {
    runAgainstReference('adam', changing, { lr: 0.05, wd: 0.1, beta2: 0.9, eps: 1e-3 });
    runAgainstReference('adam', [{}, { wd: 0.3 }, { beta2: 0.999 }, { momentum: 0 }], { lr: 0.05 });
  });
});

describe('adamw', () => {
  it('matches the reference with decoupled weight decay', () => {
    runAgainstReference('adamw', changing, { lr: 0.05, wd: 0.1 });
    runAgainstReference('adamw', [{}, { wd: 0 }, { wd: 0.5, lr: 0.1 }, {}], { lr: 0.05 });
  });

  it('equals adam when wd = 0 and differs from it (L2 vs decoupled) when wd > 0', () => {
    const run = (kind: OptimizerKind, wd: number) => {
      const p = makeParams();
      const o = track(createOptimizer(kind, { lr: 0.05, wd }));
      for (let s = 0; s < 4; s++) stepWith(o, p, gradsAt(s));
      return values(p[0]!);
    };
    expect(run('adamw', 0)).toEqual(run('adam', 0));
    const l2 = run('adam', 0.5);
    const decoupled = run('adamw', 0.5);
    const diff = Math.max(...l2.map((x, i) => Math.abs(x - decoupled[i]!)));
    expect(diff).toBeGreaterThan(1e-3);
  });
});

describe('step', () => {
  it('leaves a parameter without a gradient alone and keeps no slot for it', () => {
    for (const kind of ['sgd', 'adam', 'adamw'] as const) {
      const p = makeParams();
      const o = track(createOptimizer(kind, { lr: 0.1, wd: 0.1 }));
      stepWith(o, p, { w: gradsAt(0).w });
      stepWith(o, p, { w: gradsAt(1).w });
      expect(values(p[1]!)).toEqual(Array.from(new Float32Array(B0)));
      expect(values(p[0]!)).not.toEqual(Array.from(new Float32Array(W0)));
      expect(o.getState().slots.map((s) => s.param)).toEqual([p[0]!.name]);
      expect(o.getState().slots.map((s) => s.index)).toEqual([0]);
    }
  });

  it('reads hp every step: a NaN lr from a callback is a ConfigError and changes nothing', () => {
    for (const kind of ['sgd', 'adam', 'adamw'] as const) {
      const p = makeParams();
      const o = track(createOptimizer(kind));
      stepWith(o, p, gradsAt(0));
      const before = values(p[0]!);
      const stateBefore = o.getState();
      o.hp.lr = NaN;
      expect(() => stepWith(o, p, gradsAt(1))).toThrow(
        new ConfigError('lr must be a positive finite number, got NaN (set by a callback?)'),
      );
      expect(values(p[0]!)).toEqual(before);
      expect(o.getState().stepCount).toBe(stateBefore.stepCount);
    }
  });

  it('rejects other bad hyper-parameters set between steps', () => {
    const p = makeParams();
    const o = track(createOptimizer('adam'));
    const cases: Array<[Partial<HyperParams>, RegExp]> = [
      [{ lr: 0 }, /^lr must be a positive finite number, got 0 \(set by a callback\?\)$/],
      [{ momentum: 1.5 }, /^momentum must be in \[0, 1\).*got 1.5 \(set by a callback\?\)$/],
      [{ wd: -1 }, /^wd must be .*got -1 \(set by a callback\?\)$/],
      [{ beta2: NaN }, /^beta2 must be in \[0, 1\), got NaN/],
      [{ eps: -1 }, /^eps must be a positive finite number, got -1/],
    ];
    for (const [change, msg] of cases) {
      const saved = { ...o.hp };
      Object.assign(o.hp, change);
      expect(() => stepWith(o, p, gradsAt(0))).toThrow(msg);
      expect(() => stepWith(o, p, gradsAt(0))).toThrow(ConfigError);
      Object.assign(o.hp, saved);
    }
    stepWith(o, p, gradsAt(0));
  });

  it('rejects a gradient whose shape does not match its variable, before updating anything', () => {
    const p = makeParams();
    const o = track(createOptimizer('sgd'));
    const grads = { [p[0]!.name]: tf.ones([2, 3]), [p[1]!.name]: tf.ones([1]) };
    expect(() => o.step(p, grads)).toThrow(/gradient for 't\d+\/bias' has shape \[1\] but the parameter has shape \[3\]/);
    tf.dispose(grads);
    expect(values(p[0]!)).toEqual(Array.from(new Float32Array(W0)));
  });

  it('refuses to step after dispose', () => {
    const p = makeParams();
    const o = createOptimizer('adam');
    stepWith(o, p, gradsAt(0));
    o.dispose();
    expect(o.numTensors).toBe(0);
    expect(() => stepWith(o, p, gradsAt(0))).toThrow(/disposed; create a new one/);
  });
});

describe('memory', () => {
  for (const kind of ['sgd', 'adam', 'adamw'] as const) {
    it(`${kind}: after N steps holds exactly params + numTensors, and dispose frees the slots`, () => {
      const start = tf.memory().numTensors;
      const p = makeParams();
      const o = createOptimizer(kind, { wd: 0.1 });
      for (let s = 0; s < 5; s++) {
        stepWith(o, p, gradsAt(s));
        expect(tf.memory().numTensors).toBe(start + 2 + o.numTensors);
      }
      expect(o.numTensors).toBe(kind === 'sgd' ? 2 : 4);
      const state = o.getState();
      expect(tf.memory().numTensors).toBe(start + 2 + o.numTensors);
      o.setState(state);
      expect(tf.memory().numTensors).toBe(start + 2 + o.numTensors);
      stepWith(o, p, gradsAt(5));
      expect(tf.memory().numTensors).toBe(start + 2 + o.numTensors);
      o.dispose();
      expect(tf.memory().numTensors).toBe(start + 2);
      tf.dispose(p);
      expect(tf.memory().numTensors).toBe(start);
    });
  }

  it('two optimizers on the same variables do not clash (slot names are per optimizer)', () => {
    const p = makeParams();
    const a = track(createOptimizer('adam'));
    const b = track(createOptimizer('adam'));
    stepWith(a, p, gradsAt(0));
    stepWith(b, p, gradsAt(0));
    expect(a.numTensors + b.numTensors).toBe(8);
  });
});

describe('getState / setState', () => {
  const configs: Array<[OptimizerKind, Partial<HyperParams>]> = [
    ['sgd', { lr: 0.1, wd: 0.05 }],
    ['sgd', { lr: 0.1, momentum: 0 }],
    ['adam', { lr: 0.05, wd: 0.05 }],
    ['adamw', { lr: 0.05, wd: 0.1 }],
  ];
  const N = 4;
  const M = 4;
  /** hp changes applied before each step, as a one-cycle callback would. */
  const sched = (s: number): Partial<HyperParams> => ({ lr: 0.02 + 0.01 * s, momentum: 0.95 - 0.05 * s });

  for (const [kind, hp] of configs) {
    it(`${kind} ${JSON.stringify(hp)}: resuming on a fresh optimizer is bit-identical to an uninterrupted run`, () => {
      const names: [string, string] = [`resume/${kind}/kernel`, `resume/${kind}/bias`];
      const schedFor = (s: number) => (hp.momentum === 0 ? { lr: sched(s).lr } : sched(s));

      // Uninterrupted.
      let p = makeParams(W0, B0, names);
      let o = createOptimizer(kind, hp);
      for (let s = 0; s < N + M; s++) {
        Object.assign(o.hp, schedFor(s));
        stepWith(o, p, gradsAt(s));
      }
      const expected = p.map((v) => new Float32Array(v.dataSync()));
      o.dispose();
      tf.dispose(p);

      // Interrupted after N steps: save params + optimizer state, throw everything away.
      p = makeParams(W0, B0, names);
      o = createOptimizer(kind, hp);
      for (let s = 0; s < N; s++) {
        Object.assign(o.hp, schedFor(s));
        stepWith(o, p, gradsAt(s));
      }
      // Through structuredClone, like a checkpoint round-trip.
      const state: OptimizerState = structuredClone(o.getState());
      const savedParams = p.map((v) => new Float32Array(v.dataSync()));
      o.dispose();
      tf.dispose(p);

      // Resume: fresh variables with the same names, fresh optimizer with default hp.
      const w = tf.tidy(() => tf.variable(tf.tensor(savedParams[0]!, [2, 3]), true, names[0]));
      const b = tf.tidy(() => tf.variable(tf.tensor(savedParams[1]!, [3]), true, names[1]));
      created.push(w, b);
      const resumed = track(createOptimizer(kind));
      const hpRef = resumed.hp;
      resumed.setState(state);
      expect(resumed.hp).toBe(hpRef); // restored in place
      expect(resumed.hp).toEqual(state.hp);
      expect(resumed.getState().stepCount).toBe(N);
      for (let s = N; s < N + M; s++) {
        Object.assign(resumed.hp, schedFor(s));
        stepWith(resumed, [w, b], gradsAt(s));
      }
      expect(new Float32Array(w.dataSync())).toEqual(expected[0]);
      expect(new Float32Array(b.dataSync())).toEqual(expected[1]);
      // Bit-identical, not merely close.
      expect(Buffer.from(w.dataSync().buffer).equals(Buffer.from(expected[0]!.buffer))).toBe(true);
    });
  }

  it('getState is a deep copy that later steps do not change', () => {
    const p = makeParams();
    const o = track(createOptimizer('adam'));
    stepWith(o, p, gradsAt(0));
    const s = o.getState();
    const m0 = Array.from(s.slots[0]!.buffers[0]!.values);
    expect(s.kind).toBe('adam');
    expect(s.stepCount).toBe(1);
    expect(s.slots.map((x) => x.param)).toEqual([p[0]!.name, p[1]!.name]);
    expect(s.slots.map((x) => x.index)).toEqual([0, 1]);
    expect(s.slots[0]!.buffers.map((x) => x.shape)).toEqual([
      [2, 3],
      [2, 3],
    ]);
    // m after one step = (1 − β1)·g
    expectClose(m0, gradsAt(0).w.map((g) => 0.1 * g));
    // Writing into a returned state must not reach the live buffers either.
    o.getState().slots[0]!.buffers[0]!.values.fill(42);
    expect(Array.from(o.getState().slots[0]!.buffers[0]!.values)).toEqual(m0);
    o.hp.lr = 0.5;
    stepWith(o, p, gradsAt(1));
    expect(Array.from(s.slots[0]!.buffers[0]!.values)).toEqual(m0);
    expect(s.hp.lr).toBe(1e-3);
    expect(s.stepCount).toBe(1);
  });

  it('setState copies its input: mutating the state object afterwards has no effect', () => {
    const p = makeParams();
    const o = track(createOptimizer('sgd'));
    stepWith(o, p, gradsAt(0));
    const s = o.getState();
    const fresh = track(createOptimizer('sgd'));
    fresh.setState(s);
    s.slots[0]!.buffers[0]!.values.fill(123);
    s.hp.lr = 99;
    expect(Array.from(fresh.getState().slots[0]!.buffers[0]!.values)).not.toContain(123);
    expect(fresh.hp.lr).toBe(1e-2);
  });

  it('accepts plain number arrays for values (e.g. a JSON checkpoint)', () => {
    const p = makeParams();
    const o = track(createOptimizer('sgd'));
    stepWith(o, p, gradsAt(0));
    const json = JSON.parse(
      JSON.stringify(o.getState(), (_k, v: unknown) => (v instanceof Float32Array ? Array.from(v) : v)),
    ) as OptimizerState;
    const fresh = track(createOptimizer('sgd'));
    fresh.setState(json);
    expect(fresh.getState()).toEqual(o.getState());
  });

  function validState(): OptimizerState {
    const p = makeParams();
    const o = track(createOptimizer('adam'));
    stepWith(o, p, gradsAt(0));
    return o.getState();
  }

  const badStates: Array<[string, (s: OptimizerState) => unknown, RegExp]> = [
    ['another kind', (s) => (s.kind = 'adamw'), /optimizer state is for 'adamw' but this optimizer is 'adam'/],
    ['a bad hp', (s) => (s.hp.lr = -1), /lr must be a positive finite number, got -1 \(in the saved optimizer state\)/],
    ['a bad stepCount', (s) => (s.stepCount = 1.5), /stepCount must be an integer ≥ 0, got 1.5/],
    ['a missing buffer', (s) => s.slots[0]!.buffers.pop(), /has 1 buffers; adam keeps 2 \(m, v\)/],
    [
      'values that do not fit the shape',
      (s) => (s.slots[0]!.buffers[1]!.values = new Float32Array(5)),
      /has shape \[2, 3\] \(6 values\) but holds 5 values/,
    ],
    ['a bad shape', (s) => (s.slots[0]!.buffers[0]!.shape = [2, -3]), /has an invalid shape/],
    ['a duplicated param', (s) => (s.slots[1]!.index = s.slots[0]!.index), /parameter 0 appears twice/],
    ['a bad param position', (s) => (s.slots[1]!.index = -1), /needs the position of its parameter \(index\), got -1/],
    [
      'slots keyed by name only (an older state)',
      (s) => delete (s.slots[0] as { index?: number }).index,
      /needs the position of its parameter \(index\), got undefined for 't\d+\/kernel' \(a state keyed by variable name/,
    ],
    ['no slots array', (s) => ((s as { slots: unknown }).slots = null), /slots must be an array/],
  ];
  for (const [name, mutate, msg] of badStates) {
    it(`rejects a state with ${name}, leaving the optimizer as it was`, () => {
      const s = validState();
      mutate(s);
      const p = makeParams();
      const o = track(createOptimizer('adam'));
      stepWith(o, p, gradsAt(0));
      const before = o.getState();
      expect(() => o.setState(s)).toThrow(ConfigError);
      expect(() => o.setState(s)).toThrow(msg);
      expect(o.getState()).toEqual(before);
    });
  }

  it('keys the buffers by parameter position: a state restores into variables with other names', () => {
    const s = validState();
    const p = makeParams(); // different names from the saved state's
    expect(s.slots.map((x) => x.param)).not.toContain(p[0]!.name);
    const o = track(createOptimizer('adam'));
    o.setState(s);
    stepWith(o, p, gradsAt(1));
    // The restored buffers were used (step 2 of adam), and are now reported under the new names.
    const after = o.getState();
    expect(after.stepCount).toBe(2);
    expect(after.slots.map((x) => [x.index, x.param])).toEqual([
      [0, p[0]!.name],
      [1, p[1]!.name],
    ]);
    const ref = new RefOptimizer('adam');
    const w = [...W0];
    const b = [...B0];
    ref.step({ ...o.hp }, [w, b], [gradsAt(0).w, gradsAt(0).b]);
    ref.step({ ...o.hp }, [w, b], [gradsAt(1).w, gradsAt(1).b]);
    // The saved state came from W0 after step 0; the fresh params start from W0 again, so only m, v and t carry over.
    expect(Array.from(after.slots[0]!.buffers[0]!.values)).toEqual(
      Array.from(new Float32Array(ref.slots.get(0)!.m!)).map((x) => expect.closeTo(x, 6)),
    );
  });

  it('rejects, at the next step, restored buffers for positions beyond the parameters being trained', () => {
    const s = validState();
    const p = makeParams();
    const o = track(createOptimizer('adam'));
    o.setState(s);
    expect(() => stepWith(o, [p[0]!], { w: gradsAt(0).w })).toThrow(ConfigError);
    expect(() => stepWith(o, [p[0]!], { w: gradsAt(0).w })).toThrow(
      /the optimizer state has buffers for parameter 1 \('t\d+\/bias'\), but only 1 parameter is being trained; the state comes from a different model/,
    );
    expect(values(p[0]!)).toEqual(Array.from(new Float32Array(W0)));
    expect(o.getState().stepCount).toBe(1);
  });

  it('rejects restored buffers whose shape does not match the parameter', () => {
    const s = validState();
    const [kernel] = s.slots.map((x) => x.param);
    const bad = tf.tidy(() => tf.variable(tf.zeros([3, 2]), true, `${kernel}-wrong`));
    created.push(bad);
    s.slots.pop();
    const o = track(createOptimizer('adam'));
    o.setState(s);
    const grads = { [bad.name]: tf.ones([3, 2]) };
    expect(() => o.step([bad], grads)).toThrow(
      /optimizer state for parameter 0 \('.*-wrong', saved as 't\d+\/kernel'\) has shape \[2, 3\] but the parameter has shape \[3, 2\]; the state was saved from a different model/,
    );
    tf.dispose(grads);
  });
});

describe('a state moves between instances of one architecture (parameters by position, not by tfjs name)', () => {
  it('state from one models.mlp({ seed: 1 }) restores into a second instance, and both continue bit-identically', () => {
    const options = { seed: 1, inputShape: [6], hidden: [5, 4], classes: 3 };
    const first = mlp(options);
    const second = mlp(options);
    const paramsOf = (m: tf.LayersModel) => m.trainableWeights.map((w) => w.read() as tf.Variable);
    // The premise: tfjs names the second instance's variables differently.
    expect(paramsOf(second).map((p) => p.name)).not.toEqual(paramsOf(first).map((p) => p.name));

    const x = tf.tensor2d(Array.from({ length: 8 * 6 }, (_, i) => Math.sin(i * 0.37)), [8, 6]);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2, 2, 1], 'int32'), 3);
    const step = (model: tf.LayersModel, opt: Optimizer) => {
      const params = paramsOf(model);
      const { value, grads } = tf.variableGrads(() => tf.losses.meanSquaredError(y, model.apply(x) as tf.Tensor) as tf.Scalar, params);
      try {
        opt.step(params, grads);
      } finally {
        value.dispose();
        tf.dispose(grads);
      }
    };
    const bytes = (model: tf.LayersModel) => model.weights.map((w) => Buffer.from(w.read().dataSync().slice().buffer).toString('hex'));

    const optFirst = track(createOptimizer('adam', { lr: 0.05 }));
    for (let s = 0; s < 3; s++) step(first, optFirst);

    // Checkpoint the first: weights and optimizer state through JSON, then restore into the second.
    const checkpoint = JSON.parse(JSON.stringify(encodeState({ weights: first.getWeights().map((t) => t.dataSync().slice()), optimizer: optFirst.getState() }))) as JsonValue;
    const restored = decodeState(checkpoint) as { weights: Float32Array[]; optimizer: OptimizerState };
    const tensors = restored.weights.map((v, i) => tf.tensor(v, second.weights[i]!.shape as number[]));
    second.setWeights(tensors);
    tf.dispose(tensors);
    const optSecond = track(createOptimizer('adam'));
    optSecond.setState(restored.optimizer);
    expect(bytes(second)).toEqual(bytes(first));

    for (let s = 0; s < 4; s++) {
      step(first, optFirst);
      step(second, optSecond);
    }
    expect(bytes(second)).toEqual(bytes(first));
    expect(optSecond.getState().slots.map((s) => s.param)).toEqual(paramsOf(second).map((p) => p.name));
    expect(optSecond.getState().stepCount).toBe(7);
    tf.dispose([x, y]);
    first.dispose();
    second.dispose();
  });
});
