/**
 * The optimizers: SGD (with momentum), Adam and AdamW, written against tfjs ops instead of
 * using `tf.train.*`, for three reasons:
 *
 * - Callbacks (one-cycle, the LR finder) change `lr`, `momentum` (Adam's β1) and `wd` per
 *   batch. tfjs's AdamOptimizer folds β1 into accumulated powers it keeps internally, so a
 *   β1 changed mid-run is applied wrongly. Here `step()` reads `hp` afresh every call.
 * - State per variable: each variable's buffers and step count belong to that variable
 *   (src/optim/slots.ts), so freezing and unfreezing layers between fits (fastai's
 *   `fine_tune`) neither mixes one layer's moments into another nor loses a frozen one's, and
 *   Adam debiases with the variable's own step count, as PyTorch and fastai do.
 * - Exact resume: `getState()` / `setState()` carry every buffer and step count bit for bit,
 *   saved under stable names (src/models/paramNames.ts), so a resumed run — in a new process,
 *   on a new instance of the architecture — computes exactly what the uninterrupted one would.
 *
 * The update formulas are in src/optim/updateRules.ts, the hyper-parameter checks in
 * src/optim/hyperParams.ts, the state format in src/optim/state.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors.js';
import { checkHyperParams, HP_KEYS, resolveSpec, type HyperParams, type OptimizerKind } from './hyperParams.js';
import { ScalarCache } from './scalarCache.js';
import { SlotTable, type Slot } from './slots.js';
import { BUFFER_NAMES, fmtShape, shapesEqual, validateState, type OptimizerState } from './state.js';
import { adamDebias, adamUpdate, sgdUpdate } from './updateRules.js';

export { DEFAULT_HYPERPARAMS, OPTIMIZER_KINDS, type HyperParams, type OptimizerKind } from './hyperParams.js';
export type { OptimizerState, SlotState } from './state.js';

/** Every variable of a model (trainable or not) → its stable name: `stableParamNames(model)`. */
export type ParamNames = ReadonlyMap<tf.Variable, string>;

export interface Optimizer {
  readonly kind: OptimizerKind;
  /** Mutable: callbacks set `hp.lr` etc. between steps; `step()` reads it every time. */
  readonly hp: HyperParams;
  /**
   * One update of `params` (the variables being trained now). `grads` is keyed by tfjs variable
   * name; a param without a gradient is left alone and its step count does not move.
   * `names` is the whole model, every variable (frozen ones too) with its stable name
   * (`stableParamNames(model)`): a restored state binds to it, and getState saves under it.
   * Without `names` the model is taken to be `params` under their tfjs names (bare variables,
   * one instance): a restored state must then name only variables of `params`.
   * The caller keeps ownership of `grads` (they are not disposed here).
   */
  step(params: readonly tf.Variable[], grads: tf.NamedTensorMap, names?: ParamNames): void;
  /**
   * Tells the optimizer the model it trains (as `step`'s `names`) before any step, so that
   * `setState` checks a state against it and binds it at once (the Learner does so).
   */
  bind(names: ParamNames): void;
  /** A deep copy of the whole state; later steps do not change it. */
  getState(): OptimizerState;
  /**
   * Restores a state exactly (the object is copied, not kept). Everything is checked before
   * anything changes: a state naming a variable the model does not have, or of another shape,
   * is a ConfigError (at once when the model is known, else at the next step, before it updates).
   */
  setState(state: OptimizerState): void;
  /** Tensors the optimizer owns (its buffers and cached hyper-parameter scalars). */
  readonly numTensors: number;
  dispose(): void;
}

/** Distinguishes the buffers of different optimizers: tfjs variable names are global. */
let nextOptimizerId = 0;

class TfOptimizer implements Optimizer {
  readonly hp: HyperParams;
  private readonly slots = new SlotTable();
  private readonly scalars = new ScalarCache();
  private disposed = false;
  private readonly id = nextOptimizerId++;
  private nextSlot = 0;

  constructor(
    readonly kind: OptimizerKind,
    hp: HyperParams,
  ) {
    this.hp = hp;
  }

  get numTensors(): number {
    return this.slots.numBuffers + this.scalars.size;
  }

  bind(names: ParamNames): void {
    if (this.disposed) throw new ConfigError('this optimizer was disposed; create a new one');
    this.slots.planBind(names)?.();
  }

  step(params: readonly tf.Variable[], grads: tf.NamedTensorMap, names?: ParamNames): void {
    if (this.disposed) throw new ConfigError('this optimizer was disposed; create a new one to keep training');
    checkHyperParams(this.hp, ' (set by a callback?)');
    // Validate everything before touching any variable, so a bad call leaves no half-done step.
    for (const p of params) {
      const g = grads[p.name];
      if (g !== undefined && !shapesEqual(g.shape, p.shape)) {
        throw new ConfigError(
          `gradient for '${p.name}' has shape ${fmtShape(g.shape)} but the parameter has shape ${fmtShape(p.shape)}; ` +
            'grads must be keyed by variable name and match each variable',
        );
      }
      if (names && !names.has(p)) {
        throw new ConfigError(
          `'${p.name}' is being trained but is not in the names given to step(); they must hold every variable of the model (stableParamNames(model))`,
        );
      }
    }
    const model = names ?? new Map(params.map((p) => [p, p.name] as const));
    this.slots.planBind(model)?.();

    tf.tidy(() => (this.kind === 'sgd' ? this.stepSgd(params, grads) : this.stepAdam(params, grads)));
  }

  private stepSgd(params: readonly tf.Variable[], grads: tf.NamedTensorMap): void {
    const { lr, momentum, wd } = this.hp;
    const s = {
      lr: this.scalars.get('lr', lr),
      momentum: this.scalars.get('momentum', momentum),
      wd: wd > 0 ? this.scalars.get('wd', wd) : null,
    };
    for (const p of params) {
      const g = grads[p.name];
      if (g === undefined) continue;
      // No buffer is kept while momentum is 0 (it would always equal g); once one exists it
      // keeps being updated (buf ← 0·buf + g = g, fastai's average_grad), so a callback moving
      // momentum to 0 and back stays exact.
      const slot = this.slots.get(p) ?? (momentum > 0 ? this.createSlot(p) : undefined);
      if (slot) slot.step++;
      sgdUpdate(p, g, slot ? slot.buffers[0]! : null, s);
    }
  }

  private stepAdam(params: readonly tf.Variable[], grads: tf.NamedTensorMap): void {
    const { lr, momentum, wd, beta2, eps } = this.hp;
    const decoupled = this.kind === 'adamw';
    const common = {
      beta1: this.scalars.get('beta1', momentum),
      oneMinusBeta1: this.scalars.get('1-beta1', 1 - momentum),
      beta2: this.scalars.get('beta2', beta2),
      oneMinusBeta2: this.scalars.get('1-beta2', 1 - beta2),
      l2: !decoupled && wd > 0 ? this.scalars.get('wd', wd) : null,
      decay: decoupled && wd > 0 ? this.scalars.get('1-lr*wd', 1 - lr * wd) : null,
    };
    // Variables trained together share their step count, so this is usually one pair per step.
    const debiased = new Map<number, { stepSize: tf.Scalar; epsHat: tf.Scalar }>();
    for (const p of params) {
      const g = grads[p.name];
      if (g === undefined) continue;
      const slot = this.slots.get(p) ?? this.createSlot(p);
      const t = ++slot.step;
      let d = debiased.get(t);
      if (!d) {
        const { stepSize, epsHat } = adamDebias(lr, momentum, beta2, eps, t);
        d = { stepSize: tf.scalar(stepSize), epsHat: tf.scalar(epsHat) };
        debiased.set(t, d);
      }
      const [m, v] = slot.buffers as [tf.Variable, tf.Variable];
      adamUpdate(p, g, m, v, { ...common, ...d });
    }
  }

  private createSlot(p: tf.Variable): Slot {
    // step() bound the model before any slot is made, so nameOf gives the stable name.
    const slot = { name: this.slots.nameOf(p), variable: p, shape: [...p.shape], step: 0, buffers: this.newBuffers(p.shape) };
    this.slots.add(slot);
    return slot;
  }

  private newBuffers(shape: readonly number[], values?: ReadonlyArray<ArrayLike<number>>): tf.Variable[] {
    const id = this.nextSlot++;
    return BUFFER_NAMES[this.kind].map((b, i) =>
      tf.tidy(() => {
        const init = values ? tf.tensor(Float32Array.from(values[i]!), [...shape], 'float32') : tf.zeros([...shape], 'float32');
        // Unique per optimizer and slot: tfjs variable names are global to the process.
        return tf.variable(init, false, `opt${this.id}/slot${id}/${b}`);
      }),
    );
  }

  getState(): OptimizerState {
    return {
      kind: this.kind,
      hp: { ...this.hp },
      slots: [...this.slots].map((s) => ({
        param: s.name,
        step: s.step,
        // Copy: on the cpu backend dataSync returns the tensor's own storage.
        buffers: s.buffers.map((b) => ({ shape: [...b.shape], values: new Float32Array(b.dataSync() as Float32Array) })),
      })),
    };
  }

  setState(state: OptimizerState): void {
    if (this.disposed) throw new ConfigError('this optimizer was disposed; create a new one and call setState on it');
    validateState(state, this.kind);
    const incoming = state.slots.map((s) => ({ name: s.param, shape: s.buffers[0]!.shape }));
    this.slots.checkRestored(incoming);
    // Everything is checked above, so from here the swap cannot fail half-way.
    this.scalars.clear();
    this.slots.replace(
      state.slots.map((s) => ({
        name: s.param,
        variable: null,
        shape: [...s.buffers[0]!.shape],
        step: s.step,
        // Copies, so later changes to the caller's arrays cannot reach our buffers.
        buffers: this.newBuffers(
          s.buffers[0]!.shape,
          s.buffers.map((b) => b.values),
        ),
      })),
    );
    // Assign in place: callbacks may hold a reference to `hp`.
    for (const k of HP_KEYS) this.hp[k] = state.hp[k];
  }

  dispose(): void {
    this.slots.clear();
    this.scalars.clear();
    this.disposed = true;
  }
}

/**
 * `createOptimizer('adam')`, `createOptimizer({ kind: 'sgd', lr: 0.1 })`, or either with
 * `overrides` (applied last). Unset hyper-parameters take fastai's defaults for the kind.
 */
export function createOptimizer(
  spec: OptimizerKind | ({ kind: OptimizerKind } & Partial<HyperParams>),
  overrides?: Partial<HyperParams>,
): Optimizer {
  const { kind, hp } = resolveSpec(spec, overrides);
  return new TfOptimizer(kind, hp);
}
