/**
 * The optimizers: SGD (with momentum), Adam and AdamW, written against tfjs ops instead of
 * using `tf.train.*`, for two reasons:
 *
 * - Callbacks (one-cycle, the LR finder) change `lr`, `momentum` (Adam's β1) and `wd` per
 *   batch. tfjs's AdamOptimizer folds β1 into accumulated powers it keeps internally, so a
 *   β1 changed mid-run is applied wrongly. Here `step()` reads `hp` afresh every call.
 * - Exact resume: `getState()` / `setState()` carry every buffer and the step count bit for
 *   bit, so a resumed run computes exactly what the uninterrupted one would have.
 *
 * The buffers are kept by **parameter position**: the i-th variable of the `params` given to
 * `step` (the model's `trainableWeights` order). tfjs names variables globally, so a second
 * instance of one architecture in a process gets other names (`dense_Dense3/kernel` for
 * `dense_Dense1/kernel`); positions are the same in every instance, so a state restores into
 * any model of the architecture, and shapes are checked at the next step. Names are kept for
 * messages only. `step` must therefore get the same parameters in the same order every time.
 *
 * The update formulas (fastai's conventions; tests check them against plain JS):
 *
 *   sgd:   if wd > 0: g ← g + wd·p                    (L2 penalty folded into the gradient)
 *          buf ← momentum·buf + g                      (buf starts at 0, so buf₁ = g)
 *          p   ← p − lr·buf                            (momentum 0 and no buffer yet: p ← p − lr·g)
 *
 *   adam:  t ← t + 1                                   (one count per step() call, starting at 1)
 *          if wd > 0: g ← g + wd·p                    (L2)
 *          m ← β1·m + (1−β1)·g                         (β1 = hp.momentum, read every step)
 *          v ← β2·v + (1−β2)·g²
 *          p ← p − lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + eps)
 *          The debias term uses the *current* β1, as fastai does.
 *
 *   adamw: as adam, but the weight decay is decoupled: p ← p·(1 − lr·wd) before the Adam
 *          update, and g is left alone.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors.js';

export interface HyperParams {
  /** Learning rate, > 0. */
  lr: number;
  /** SGD momentum, or Adam's β1 (fastai's "mom"); in [0, 1). */
  momentum: number;
  /** Weight decay, ≥ 0: L2 for sgd and adam, decoupled for adamw. */
  wd: number;
  /** Adam's β2, in [0, 1). Unused by sgd. */
  beta2: number;
  /** Adam's ε, > 0. Unused by sgd. */
  eps: number;
}

export type OptimizerKind = 'sgd' | 'adam' | 'adamw';

export interface OptimizerState {
  kind: OptimizerKind;
  hp: HyperParams;
  stepCount: number;
  /**
   * Per parameter that has buffers: its position in `params` (`index`), its variable name when
   * saved (`param`, for messages only), and sgd's [momentum buffer] or adam/adamw's [m, v].
   */
  slots: Array<{ index: number; param: string; buffers: Array<{ shape: number[]; values: Float32Array }> }>;
}

export interface Optimizer {
  readonly kind: OptimizerKind;
  /** Mutable: callbacks set `hp.lr` etc. between steps; `step()` reads it every time. */
  readonly hp: HyperParams;
  /**
   * One update. `grads` is keyed by variable name; a param without a gradient is left alone.
   * `params` must be the same variables in the same order at every step (the buffers are kept
   * by position). The caller keeps ownership of `grads` (they are not disposed here).
   */
  step(params: tf.Variable[], grads: tf.NamedTensorMap): void;
  /** A deep copy of the whole state; later steps do not change it. */
  getState(): OptimizerState;
  /** Restores a state exactly (the object is copied, not kept). */
  setState(state: OptimizerState): void;
  /** Tensors the optimizer owns (its slot variables). */
  readonly numTensors: number;
  dispose(): void;
}

export const OPTIMIZER_KINDS: readonly OptimizerKind[] = ['sgd', 'adam', 'adamw'];

const HP_KEYS: readonly (keyof HyperParams)[] = ['lr', 'momentum', 'wd', 'beta2', 'eps'];

/** fastai's defaults. */
export const DEFAULT_HYPERPARAMS: Readonly<Record<OptimizerKind, Readonly<HyperParams>>> = {
  sgd: { lr: 1e-2, momentum: 0.9, wd: 0, beta2: 0.99, eps: 1e-5 },
  adam: { lr: 1e-3, momentum: 0.9, wd: 0, beta2: 0.99, eps: 1e-5 },
  adamw: { lr: 1e-3, momentum: 0.9, wd: 1e-2, beta2: 0.99, eps: 1e-5 },
};

/** Buffers kept per parameter, in the order they appear in `OptimizerState`. */
const SLOT_NAMES: Record<OptimizerKind, readonly string[]> = {
  sgd: ['momentum'],
  adam: ['m', 'v'],
  adamw: ['m', 'v'],
};

function describe(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  return v === null ? 'null' : typeof v;
}

function isNum(v: unknown): v is number {
  return typeof v === 'number';
}

/**
 * Throws ConfigError for the first bad hyper-parameter. Called on every step, so the happy
 * path is just ten comparisons; messages are only built on failure. `where` is appended to
 * the message to point at the likely source (creation, a callback, a checkpoint).
 */
function checkHyperParams(hp: HyperParams, where: string): void {
  const { lr, momentum, wd, beta2, eps } = hp;
  if (!(isNum(lr) && lr > 0 && lr < Infinity)) {
    throw new ConfigError(`lr must be a positive finite number, got ${describe(lr)}${where}`);
  }
  if (!(isNum(momentum) && momentum >= 0 && momentum < 1)) {
    throw new ConfigError(
      `momentum must be in [0, 1) (it is SGD's momentum, or Adam's beta1), got ${describe(momentum)}${where}`,
    );
  }
  if (!(isNum(wd) && wd >= 0 && wd < Infinity)) {
    throw new ConfigError(`wd must be a finite number ≥ 0 (0 turns weight decay off), got ${describe(wd)}${where}`);
  }
  if (!(isNum(beta2) && beta2 >= 0 && beta2 < 1)) {
    throw new ConfigError(`beta2 must be in [0, 1), got ${describe(beta2)}${where}`);
  }
  if (!(isNum(eps) && eps > 0 && eps < Infinity)) {
    throw new ConfigError(`eps must be a positive finite number, got ${describe(eps)}${where}`);
  }
}

function shapesEqual(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const fmtShape = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Distinguishes the slot variables of different optimizers: tfjs variable names are global. */
let nextOptimizerId = 0;

class TfOptimizer implements Optimizer {
  readonly hp: HyperParams;
  private stepCount = 0;
  /** Parameter position → its slot variables (SLOT_NAMES[kind] order); a hole for a parameter without any. */
  private slots: Array<tf.Variable[] | undefined> = [];
  /** Parameter position → the variable name it had at its last step (or in the restored state): for messages and getState. */
  private paramNames: string[] = [];
  private disposed = false;
  private readonly id = nextOptimizerId++;

  constructor(
    readonly kind: OptimizerKind,
    hp: HyperParams,
  ) {
    this.hp = hp;
  }

  get numTensors(): number {
    let n = 0;
    for (const s of this.slots) if (s) n += s.length;
    return n;
  }

  step(params: tf.Variable[], grads: tf.NamedTensorMap): void {
    if (this.disposed) throw new ConfigError('this optimizer was disposed; create a new one to keep training');
    checkHyperParams(this.hp, ' (set by a callback?)');
    // Validate everything before touching any variable, so a bad call leaves no half-done step.
    params.forEach((p, i) => {
      const g = grads[p.name];
      if (g !== undefined && !shapesEqual(g.shape, p.shape)) {
        throw new ConfigError(
          `gradient for '${p.name}' has shape ${fmtShape(g.shape)} but the parameter has shape ${fmtShape(p.shape)}; ` +
            'grads must be keyed by variable name and match each variable',
        );
      }
      const slot = this.slots[i];
      if (slot !== undefined && !shapesEqual(slot[0]!.shape, p.shape)) {
        throw new ConfigError(
          `optimizer state for parameter ${i} (${this.describeParam(i, p.name)}) has shape ${fmtShape(slot[0]!.shape)} but the ` +
            `parameter has shape ${fmtShape(p.shape)}; the state was saved from a different model`,
        );
      }
    });
    if (this.slots.length > params.length) {
      const extra = this.slots.flatMap((s, i) => (s !== undefined && i >= params.length ? [`${i} ('${this.paramNames[i]}')`] : []));
      if (extra.length > 0) {
        throw new ConfigError(
          `the optimizer state has buffers for parameter${extra.length === 1 ? '' : 's'} ${extra.join(', ')}, but only ` +
            `${params.length} parameter${params.length === 1 ? ' is' : 's are'} being trained; the state comes from a different ` +
            'model, or step() was given other parameters than before (they must be the same, in the same order, every step)',
        );
      }
    }
    params.forEach((p, i) => {
      if (this.slots[i] !== undefined) this.paramNames[i] = p.name;
    });

    const t = ++this.stepCount;
    const { lr, momentum, wd, beta2, eps } = this.hp;
    tf.tidy(() => {
      if (this.kind === 'sgd') {
        const sLr = tf.scalar(lr);
        const sMom = tf.scalar(momentum);
        const sWd = wd > 0 ? tf.scalar(wd) : null;
        params.forEach((p, i) => {
          const g = grads[p.name];
          if (g === undefined) return;
          // No buffer is kept while momentum is 0 (it would always equal g); once one exists it
          // keeps being updated, so a callback moving momentum to 0 and back stays exact.
          const slot = this.slots[i] ?? (momentum > 0 ? this.createSlots(p, i) : undefined);
          tf.tidy(() => {
            let d: tf.Tensor = sWd ? tf.add(g, tf.mul(p, sWd)) : g;
            if (slot) {
              const buf = slot[0]!;
              d = tf.add(tf.mul(buf, sMom), d);
              buf.assign(d);
            }
            p.assign(tf.sub(p, tf.mul(d, sLr)));
          });
        });
        return;
      }

      // Adam / AdamW. The debiasing is folded into two scalars (as PyTorch does), which is
      // algebraically the formula in the header:
      //   lr·(m/bc1)/(sqrt(v/bc2)+eps) = [lr·sqrt(bc2)/bc1] · m / (sqrt(v) + eps·sqrt(bc2))
      // and saves three full-size ops per parameter.
      const bc1 = 1 - momentum ** t;
      const bc2 = 1 - beta2 ** t;
      const sqrtBc2 = Math.sqrt(bc2);
      const sB1 = tf.scalar(momentum);
      const sOneMinusB1 = tf.scalar(1 - momentum);
      const sB2 = tf.scalar(beta2);
      const sOneMinusB2 = tf.scalar(1 - beta2);
      const sStep = tf.scalar((lr * sqrtBc2) / bc1);
      const sEps = tf.scalar(eps * sqrtBc2);
      const decoupled = this.kind === 'adamw';
      const sL2 = !decoupled && wd > 0 ? tf.scalar(wd) : null;
      const sDecay = decoupled && wd > 0 ? tf.scalar(1 - lr * wd) : null;
      params.forEach((p, i) => {
        const g0 = grads[p.name];
        if (g0 === undefined) return;
        const [m, v] = (this.slots[i] ?? this.createSlots(p, i)) as [tf.Variable, tf.Variable];
        tf.tidy(() => {
          const g = sL2 ? tf.add(g0, tf.mul(p, sL2)) : g0;
          const m1 = tf.add(tf.mul(m, sB1), tf.mul(g, sOneMinusB1));
          const v1 = tf.add(tf.mul(v, sB2), tf.mul(tf.square(g), sOneMinusB2));
          m.assign(m1);
          v.assign(v1);
          const upd = tf.mul(tf.div(m1, tf.add(tf.sqrt(v1), sEps)), sStep);
          const base = sDecay ? tf.mul(p, sDecay) : p;
          p.assign(tf.sub(base, upd));
        });
      });
    });
  }

  private createSlots(p: tf.Variable, index: number): tf.Variable[] {
    const slot = SLOT_NAMES[this.kind].map((s) => {
      const zeros = tf.zerosLike(p);
      const v = tf.variable(zeros, false, this.slotName(index, s));
      zeros.dispose();
      return v;
    });
    this.slots[index] = slot;
    this.paramNames[index] = p.name;
    return slot;
  }

  /** Unique per optimizer and position: tfjs variable names are global to the process. */
  private slotName(index: number, slot: string): string {
    return `opt${this.id}/param${index}/${slot}`;
  }

  private describeParam(index: number, current: string): string {
    const saved = this.paramNames[index];
    return saved === undefined || saved === current ? `'${current}'` : `'${current}', saved as '${saved}'`;
  }

  getState(): OptimizerState {
    return {
      kind: this.kind,
      hp: { ...this.hp },
      stepCount: this.stepCount,
      slots: this.slots.flatMap((vars, index) =>
        vars === undefined
          ? []
          : [
              {
                index,
                param: this.paramNames[index]!,
                // Copy: on the cpu backend dataSync returns the tensor's own storage.
                buffers: vars.map((v) => ({ shape: [...v.shape], values: new Float32Array(v.dataSync() as Float32Array) })),
              },
            ],
      ),
    };
  }

  setState(state: OptimizerState): void {
    if (this.disposed) throw new ConfigError('this optimizer was disposed; create a new one and call setState on it');
    validateState(state, this.kind);
    // Everything is validated above, so from here the swap cannot fail half-way.
    this.disposeSlots();
    for (const { index, param, buffers } of state.slots) {
      const vars = buffers.map((b, i) =>
        tf.tidy(() =>
          tf.variable(
            // Copy so later changes to the caller's arrays cannot reach our buffers.
            tf.tensor(Float32Array.from(b.values), b.shape, 'float32'),
            false,
            this.slotName(index, SLOT_NAMES[this.kind][i]!),
          ),
        ),
      );
      this.slots[index] = vars;
      this.paramNames[index] = param;
    }
    // Assign in place: callbacks may hold a reference to `hp`.
    for (const k of HP_KEYS) this.hp[k] = state.hp[k];
    this.stepCount = state.stepCount;
  }

  private disposeSlots(): void {
    for (const s of this.slots) if (s) for (const v of s) v.dispose();
    this.slots = [];
    this.paramNames = [];
  }

  dispose(): void {
    this.disposeSlots();
    this.disposed = true;
  }
}

/** Checks a state (e.g. read back from a checkpoint) before any of it is applied. */
function validateState(state: OptimizerState, kind: OptimizerKind): void {
  const bad = (what: string) => new ConfigError(`invalid optimizer state: ${what}`);
  if (typeof state !== 'object' || state === null) throw bad(`expected an object, got ${describe(state)}`);
  if (state.kind !== kind) {
    throw new ConfigError(
      `optimizer state is for '${String(state.kind)}' but this optimizer is '${kind}'; ` +
        `create the optimizer with kind '${String(state.kind)}' to resume from it`,
    );
  }
  if (typeof state.hp !== 'object' || state.hp === null) throw bad('hp is missing');
  checkHyperParams(state.hp, ' (in the saved optimizer state)');
  if (!(Number.isInteger(state.stepCount) && state.stepCount >= 0)) {
    throw bad(`stepCount must be an integer ≥ 0, got ${describe(state.stepCount)}`);
  }
  if (!Array.isArray(state.slots)) throw bad('slots must be an array');
  const nBuf = SLOT_NAMES[kind].length;
  const seen = new Set<number>();
  for (const s of state.slots) {
    if (!Number.isInteger(s?.index) || s.index < 0) {
      throw bad(
        `every slot needs the position of its parameter (index), got ${describe(s?.index)}` +
          (typeof s?.param === 'string' ? ` for '${s.param}' (a state keyed by variable name, from an older version, cannot be restored)` : ''),
      );
    }
    if (typeof s.param !== 'string') throw bad(`the slot of parameter ${s.index} needs a param name`);
    if (seen.has(s.index)) throw bad(`parameter ${s.index} appears twice`);
    seen.add(s.index);
    if (!Array.isArray(s.buffers) || s.buffers.length !== nBuf) {
      throw bad(
        `'${s.param}' has ${Array.isArray(s.buffers) ? s.buffers.length : 'no'} buffers; ${kind} keeps ${nBuf} ` +
          `(${SLOT_NAMES[kind].join(', ')})`,
      );
    }
    let shape0: number[] | undefined;
    for (const b of s.buffers) {
      if (!Array.isArray(b?.shape) || !b.shape.every((d) => Number.isInteger(d) && d >= 0)) {
        throw bad(`a buffer of '${s.param}' has an invalid shape`);
      }
      const size = b.shape.reduce((a, d) => a * d, 1);
      const len = (b.values as ArrayLike<number> | undefined)?.length;
      if (typeof len !== 'number' || len !== size) {
        throw bad(
          `a buffer of '${s.param}' has shape ${fmtShape(b.shape)} (${size} values) but holds ${describe(len)} values`,
        );
      }
      if (shape0 && !shapesEqual(shape0, b.shape)) throw bad(`the buffers of '${s.param}' differ in shape`);
      shape0 = b.shape;
    }
  }
}

function pickHyperParams(src: object, from: string): Partial<HyperParams> {
  const out: Partial<HyperParams> = {};
  for (const [k, v] of Object.entries(src)) {
    if (from === 'spec' && k === 'kind') continue;
    if (!(HP_KEYS as readonly string[]).includes(k)) {
      const hint = k === 'beta1' || k === 'mom' ? " (Adam's beta1 is called 'momentum')" : '';
      throw new ConfigError(
        `unknown optimizer option '${k}'${hint}; valid options are ${HP_KEYS.map((x) => `'${x}'`).join(', ')}`,
      );
    }
    if (v !== undefined) out[k as keyof HyperParams] = v as number;
  }
  return out;
}

/**
 * `createOptimizer('adam')`, `createOptimizer({ kind: 'sgd', lr: 0.1 })`, or either with
 * `overrides` (applied last). Unset hyper-parameters take fastai's defaults for the kind.
 */
export function createOptimizer(
  spec: OptimizerKind | ({ kind: OptimizerKind } & Partial<HyperParams>),
  overrides?: Partial<HyperParams>,
): Optimizer {
  const isObj = typeof spec === 'object' && spec !== null;
  const kind: unknown = isObj ? spec.kind : spec;
  if (!(OPTIMIZER_KINDS as readonly unknown[]).includes(kind)) {
    throw new ConfigError(
      `unknown optimizer ${typeof kind === 'string' ? `'${kind}'` : describe(kind)}; ` +
        `valid kinds are ${OPTIMIZER_KINDS.map((k) => `'${k}'`).join(', ')}`,
    );
  }
  const k = kind as OptimizerKind;
  const hp: HyperParams = {
    ...DEFAULT_HYPERPARAMS[k],
    ...(isObj ? pickHyperParams(spec, 'spec') : {}),
    ...(overrides ? pickHyperParams(overrides, 'overrides') : {}),
  };
  checkHyperParams(hp, '');
  return new TfOptimizer(k, hp);
}
