import type { Control, ControlName } from '../../machines/controls.js';
import type { Stage } from '../../machines/stages.js';
import { ConfigError } from '../errors.js';
import type { JumpPosition, TrainContext } from './context.js';
import type { QuietPoint } from './quietPoint.js';
import type { LearnerApi } from './learnerApi.js';

/** What a hook may return: nothing, or a control object (contract §3). */
export type HookResult = Control | void | undefined | null;
export type Hook = (ctx: TrainContext) => HookResult;
/** A pure, synchronous predicate; `true` has the effect of the control it is keyed by. */
export type Guard = (ctx: TrainContext) => boolean;
export type Guards = Partial<Record<ControlName, Guard>>;

/**
 * The base class of every callback (fastai v1's `Callback`, in TypeScript).
 * Implement only the hooks you need; each runs as an entry action of its stage's state.
 *
 * ```ts
 * class RaiseLr extends Callback {
 *   onEpochEnd() { this.learn.lr *= 1.1; }
 * }
 * ```
 */
export abstract class Callback {
  /** Within a stage, callbacks run by ascending order; ties in the order they were given. */
  order = 0;
  /**
   * Does this callback change what a training step computes (MixUp, GradientAccumulation,
   * GradientClipping)? Such callbacks stay in `lrFind`'s mock run, so the lr it suggests is
   * for the training as it will really run; all others sit it out.
   */
  readonly shapesTraining: boolean = false;
  /** Controls that fire when a predicate of the context is true, keyed by control name. */
  guards: Guards = {};

  #learn: LearnerApi | null = null;

  /** The name used in errors, the dry run and checkpoints; the class name by default. */
  get name(): string {
    // An anonymous class (`new (class extends Callback {})()`) still gets a name messages can show.
    return this.constructor.name || 'AnonymousCallback';
  }

  /** The learner this callback is attached to (set when the Learner is created or `add`s it). */
  get learn(): LearnerApi {
    if (!this.#learn) {
      throw new ConfigError(
        `callback ${this.name} is not attached to a Learner: pass it in new Learner({ callbacks }) or learn.addCallback()`,
      );
    }
    return this.#learn;
  }

  /** @internal — the learner it is attached to, if any. */
  get attachedTo(): LearnerApi | null {
    return this.#learn;
  }

  /**
   * @internal — refuses a learner other than the one this callback is attached to: one
   * instance serves one learner at a time, or `this.learn` would point at the wrong one.
   */
  checkAttachable(learn: LearnerApi): void {
    if (this.#learn !== null && this.#learn !== learn) {
      throw new ConfigError(
        `callback ${this.name} is already attached to another Learner; a callback instance serves one learner at a time: ` +
          `make a new instance (new ${this.constructor.name}(…)) for this one, or learn.removeCallback() it from the other first`,
      );
    }
  }

  /** @internal — called by the Learner; `null` detaches. Attaching to a second learner is a ConfigError. */
  attach(learn: LearnerApi | null): void {
    if (learn !== null) this.checkAttachable(learn);
    this.#learn = learn;
  }

  onTrainBegin?(ctx: TrainContext): HookResult;
  onEpochBegin?(ctx: TrainContext): HookResult;
  onBatchBegin?(ctx: TrainContext): HookResult;
  onLossBegin?(ctx: TrainContext): HookResult;
  onBackwardBegin?(ctx: TrainContext): HookResult;
  onBackwardEnd?(ctx: TrainContext): HookResult;
  onStepEnd?(ctx: TrainContext): HookResult;
  onBatchEnd?(ctx: TrainContext): HookResult;
  onValidateBegin?(ctx: TrainContext): HookResult;
  onValidateEnd?(ctx: TrainContext): HookResult;
  onEpochEnd?(ctx: TrainContext): HookResult;
  onTrainEnd?(ctx: TrainContext): HookResult;
  /**
   * To resume training at `epoch` directly (fastai v1's jump_to_epoch). Runs after every
   * onTrainBegin and after the states were restored. `at` tells where exactly: when a
   * checkpoint taken mid-epoch is resumed, `at.batchIndex` > 0 train batches of `epoch` have
   * already run (and are in the restored state), so only what came after them is to be forgotten.
   */
  jumpToEpoch?(epoch: number, at: JumpPosition): void;

  /**
   * Called at every quiet point of a run (after a train batch's batchEnd and after epochEnd,
   * once all hooks and guards of that stage have run, whatever this callback's order): the
   * place to save the run (the Checkpoint callback). Not a stage: it returns nothing and
   * cannot return a control.
   */
  atQuietPoint?(point: QuietPoint, ctx: TrainContext): void;

  /**
   * The names of the fields that are this callback's *run state* (what a checkpoint carries),
   * as opposed to its options (what the constructor was given). A callback that declares it
   * saves exactly these fields and restores only these: `new EarlyStopping({ patience: 5 })`
   * keeps patience 5 whatever state it is given. A subclass of such a callback lists the
   * parent's keys and its own (`[...TrackerCallback.STATE_KEYS, 'wait']`).
   *
   * Without it, the default of fastai's `get_state` applies: every own plain-data field.
   * That keeps a user callback a few lines long, but saves options as well.
   */
  declare protected readonly stateKeys?: readonly string[];

  /**
   * The state to save in a checkpoint, deep-copied: exactly the `stateKeys` fields when the
   * callback declares them; otherwise every own enumerable field that is plain data (numbers,
   * strings, booleans, null, arrays and plain objects of those), as fastai's `get_state`.
   * Override (calling super) for state kept elsewhere, e.g. in `#private` fields.
   *
   * The values may be NaN, ±Infinity or typed arrays: write a checkpoint as JSON through
   * `encodeState` / `decodeState` (src/io/stateCodec.ts), not with JSON.stringify alone.
   */
  getState(): Record<string, unknown> {
    const state: Record<string, unknown> = {};
    const self = this as unknown as Record<string, unknown>;
    const keys = this.stateKeys;
    if (keys) {
      for (const key of keys) state[key] = structuredClone(self[key]);
      return state;
    }
    for (const [key, value] of Object.entries(this)) {
      if (key === 'guards' || key === 'order' || key === 'shapesTraining') continue; // the base class's settings, not state
      if (isPlainData(value)) state[key] = structuredClone(value);
    }
    return state;
  }

  /**
   * Restores a state from `getState` (copied, not kept). With `stateKeys`, a key that is not
   * one of them is a ConfigError and nothing is changed; keys the state lacks keep their
   * values. `fit(n, { startEpoch, callbackStates })` calls it after every onTrainBegin and
   * before any jumpToEpoch, so onTrainBegin may reset unconditionally.
   */
  setState(state: Record<string, unknown>): void {
    if (typeof state !== 'object' || state === null || Array.isArray(state)) {
      throw new ConfigError(`${this.name}.setState: a state must be an object as returned by getState(), got ${state === null ? 'null' : Array.isArray(state) ? 'an array' : typeof state}`);
    }
    const keys = this.stateKeys;
    if (keys) {
      for (const key of Object.keys(state)) {
        if (!keys.includes(key)) {
          throw new ConfigError(
            `${this.name}.setState: "${key}" is not part of ${this.name}'s state (${keys.length ? keys.join(', ') : 'it keeps none'}); ` +
              'options are given to the constructor and are never restored from a state',
          );
        }
      }
    }
    const self = this as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(state)) self[key] = structuredClone(value);
  }
}

function isPlainData(value: unknown, depth = 0): boolean {
  if (depth > 8) return false;
  if (value === null) return true;
  switch (typeof value) {
    case 'number':
    case 'string':
    case 'boolean':
      return true;
    case 'object':
      if (Array.isArray(value)) return value.every((v) => isPlainData(v, depth + 1));
      if (Object.getPrototypeOf(value) !== Object.prototype) return false;
      return Object.values(value as object).every((v) => isPlainData(v, depth + 1));
    default:
      return false;
  }
}

export type { Stage };
