/**
 * The optimizer's saved state: its format, and the checks a state (e.g. read back from a
 * checkpoint) passes before any of it is applied.
 *
 * The state is kept per variable and saved under the variable's **stable name**
 * (src/models/paramNames.ts: `layers.1/kernel`), never its tfjs name (process-wide, so it
 * differs between instances of one architecture) nor its position among the trainable
 * variables (which freezing a layer shifts). Each slot carries its own step count: Adam's
 * debiasing is per parameter, as in PyTorch and fastai.
 */
import { ConfigError } from '../errors.js';
import { checkHyperParams, describe, type HyperParams, type OptimizerKind } from './hyperParams.js';

export interface SlotState {
  /** The variable's stable name (e.g. `layers.1/kernel`; for bare variables stepped without names, its tfjs name). */
  param: string;
  /** Updates this slot took part in: Adam's t for this variable; for sgd, the momentum updates. */
  step: number;
  /** sgd's [momentum buffer], adam/adamw's [m, v] (BUFFER_NAMES order), each the variable's shape. */
  buffers: Array<{ shape: number[]; values: Float32Array }>;
}

export interface OptimizerState {
  kind: OptimizerKind;
  hp: HyperParams;
  /** One per variable that has state, in the order they first got it. */
  slots: SlotState[];
}

/** Buffers kept per variable, in the order they appear in a slot. */
export const BUFFER_NAMES: Readonly<Record<OptimizerKind, readonly string[]>> = {
  sgd: ['momentum'],
  adam: ['m', 'v'],
  adamw: ['m', 'v'],
};

export function shapesEqual(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export const fmtShape = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Checks the state's own consistency (not yet against a model: see the optimizer's binding).
 * Throws a ConfigError naming what is wrong; returns nothing, changes nothing.
 */
export function validateState(state: OptimizerState, kind: OptimizerKind): void {
  const bad = (what: string) => new ConfigError(`invalid optimizer state: ${what}`);
  if (typeof state !== 'object' || state === null) throw bad(`expected an object, got ${describe(state)}`);
  if ('stepCount' in state) {
    throw bad(
      'it has one global stepCount and buffers by parameter position, the format of an older version; ' +
        'that state cannot be restored exactly (Adam now counts steps per variable): start the optimizer afresh',
    );
  }
  if (state.kind !== kind) {
    throw new ConfigError(
      `optimizer state is for '${String(state.kind)}' but this optimizer is '${kind}'; ` +
        `create the optimizer with kind '${String(state.kind)}' to resume from it`,
    );
  }
  if (typeof state.hp !== 'object' || state.hp === null) throw bad('hp is missing');
  checkHyperParams(state.hp, ' (in the saved optimizer state)');
  if (!Array.isArray(state.slots)) throw bad('slots must be an array');
  const nBuf = BUFFER_NAMES[kind].length;
  const seen = new Set<string>();
  for (const s of state.slots) {
    if (typeof s?.param !== 'string' || s.param === '') {
      throw bad(`every slot needs the stable name of its variable (param), got ${describe(s?.param)}`);
    }
    if (seen.has(s.param)) throw bad(`'${s.param}' appears twice`);
    seen.add(s.param);
    if (!(Number.isInteger(s.step) && s.step >= 0)) {
      throw bad(`the step count of '${s.param}' must be an integer ≥ 0, got ${describe(s.step)}`);
    }
    if (!Array.isArray(s.buffers) || s.buffers.length !== nBuf) {
      throw bad(
        `'${s.param}' has ${Array.isArray(s.buffers) ? s.buffers.length : 'no'} buffers; ${kind} keeps ${nBuf} ` +
          `(${BUFFER_NAMES[kind].join(', ')})`,
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
        throw bad(`a buffer of '${s.param}' has shape ${fmtShape(b.shape)} (${size} values) but holds ${describe(len)} values`);
      }
      if (shape0 && !shapesEqual(shape0, b.shape)) throw bad(`the buffers of '${s.param}' differ in shape`);
      shape0 = b.shape;
    }
  }
}
