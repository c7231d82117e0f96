/**
 * The optimizer's per-variable state, keyed by the variable itself.
 *
 * A slot (sgd's momentum buffer; adam's m and v; the variable's own step count) belongs to one
 * variable object: whatever else is trained or frozen at a step, that variable's slot drives
 * that variable's update and nothing else's. Keying by position among the trainable variables
 * cannot do that: freezing a layer shifts every position after it.
 *
 * The table also knows the **model**: every variable that may be trained (trainable or frozen)
 * with its stable name (src/models/paramNames.ts). It is told at each step and by `bind`, and
 * uses it to
 * - save each slot under the stable name of its variable;
 * - bind a restored slot (from `setState`, which knows names only) to the variable of that name,
 *   at once when the model is known, else at the next step; a name the model lacks, or a shape
 *   that differs, is a ConfigError naming it, raised before anything changes;
 * - refuse state of another model's variable that carries the same name as one of this model
 *   (one optimizer object trained two models).
 */
import type * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors.js';
import { fmtShape, shapesEqual } from './state.js';

export interface Slot {
  /** Stable name of its variable (saved in the state). */
  name: string;
  /** Its variable; null for a restored slot not bound to one yet. */
  variable: tf.Variable | null;
  shape: readonly number[];
  /** Updates this slot took part in (Adam's t). */
  step: number;
  /** The optimizer's buffers for the variable, BUFFER_NAMES order; owned (disposed) by the table. */
  buffers: tf.Variable[];
}

interface Model {
  /** The map last given, to recognise it (the engine gives the same one at every step of a fit). */
  source: ReadonlyMap<tf.Variable, string>;
  byName: ReadonlyMap<string, tf.Variable>;
}

const LIST_MAX = 8;

function listNames(byName: ReadonlyMap<string, unknown>): string {
  const all = [...byName.keys()];
  const shown = all.slice(0, LIST_MAX).map((n) => `'${n}'`).join(', ');
  return all.length > LIST_MAX ? `${shown}, … (${all.length} in all)` : shown || 'none';
}

function unknownVariable(name: string, byName: ReadonlyMap<string, unknown>): ConfigError {
  return new ConfigError(
    `optimizer state has buffers for '${name}', but the model has no variable of that name ` +
      `(it has ${listNames(byName)}); the state was saved from a different model`,
  );
}

function wrongShape(name: string, shape: readonly number[], v: tf.Variable): ConfigError {
  return new ConfigError(
    `optimizer state for '${name}' has shape ${fmtShape(shape)} but the model's '${name}' has shape ${fmtShape(v.shape)}; ` +
      'the state was saved from a different model',
  );
}

export class SlotTable {
  /** Every slot, in the order it was created or restored (the order getState lists them in). */
  private order: Slot[] = [];
  private byVar = new Map<tf.Variable, Slot>();
  private model: Model | null = null;

  [Symbol.iterator](): Iterator<Slot> {
    return this.order[Symbol.iterator]();
  }

  get numBuffers(): number {
    let n = 0;
    for (const s of this.order) n += s.buffers.length;
    return n;
  }

  /** The slot of `variable`, if it has one. */
  get(variable: tf.Variable): Slot | undefined {
    return this.byVar.get(variable);
  }

  /** The stable name the current model gives `variable` (its tfjs name when it has none). */
  nameOf(variable: tf.Variable): string {
    return this.model?.source.get(variable) ?? variable.name;
  }

  /** Adds the slot of a variable that has none (the caller checked with `get`). */
  add(slot: Slot & { variable: tf.Variable }): void {
    this.order.push(slot);
    this.byVar.set(slot.variable, slot);
  }

  /**
   * Checks the slots against the model `names` describes (every variable of it, trainable or
   * not, with its stable name) and returns what makes it the current model: binding restored
   * slots and taking the model's names. Throws a ConfigError, having changed nothing, when a
   * slot does not fit. Returns null when `names` is the current model already.
   */
  planBind(names: ReadonlyMap<tf.Variable, string>): (() => void) | null {
    if (this.model?.source === names) return null;
    const byName = new Map<string, tf.Variable>();
    for (const [v, n] of names) {
      const other = byName.get(n);
      if (other !== undefined && other !== v) {
        throw new ConfigError(`two variables of the model are both named '${n}' ('${other.name}' and '${v.name}'); stable names must be unique`);
      }
      byName.set(n, v);
    }
    const renames: Array<[Slot, string]> = [];
    const binds: Array<[Slot, tf.Variable]> = [];
    const taken = new Map<string, Slot>();
    const boundTo = new Set<tf.Variable>(this.byVar.keys());
    for (const s of this.order) {
      let name = s.name;
      if (s.variable !== null) {
        const current = names.get(s.variable);
        if (current !== undefined) {
          if (current !== s.name) renames.push([s, current]);
          name = current;
        } else if (byName.has(s.name)) {
          throw new ConfigError(
            `the optimizer holds state for '${s.name}' of a variable ('${s.variable.name}') that is not part of this model, ` +
              `whose own '${s.name}' is '${byName.get(s.name)!.name}'; one optimizer trains one model: give this model an ` +
              'optimizer of its own (setState moves a saved state onto it)',
          );
        }
      } else {
        const v = byName.get(s.name);
        if (v === undefined) throw unknownVariable(s.name, byName);
        if (!shapesEqual(v.shape, s.shape)) throw wrongShape(s.name, s.shape, v);
        if (boundTo.has(v)) throw new ConfigError(`the optimizer has two states for '${s.name}'`);
        boundTo.add(v);
        binds.push([s, v]);
      }
      if (taken.has(name)) throw new ConfigError(`the optimizer has two states that would both be saved as '${name}'`);
      taken.set(name, s);
    }
    return () => {
      for (const [s, name] of renames) s.name = name;
      for (const [s, v] of binds) {
        s.variable = v;
        this.byVar.set(v, s);
      }
      this.model = { source: names, byName };
    };
  }

  /**
   * Checks restored slots (name and shape) against the current model, when one is known; a
   * restore before any model is known is checked when it binds (`planBind`).
   */
  checkRestored(slots: ReadonlyArray<{ name: string; shape: readonly number[] }>): void {
    if (!this.model) return;
    const byName = this.model.byName;
    for (const { name, shape } of slots) {
      const v = byName.get(name);
      if (v === undefined) throw unknownVariable(name, byName);
      if (!shapesEqual(v.shape, shape)) throw wrongShape(name, shape, v);
    }
  }

  /** Replaces every slot by restored, unbound ones (checked with `checkRestored`); binds them now when the model is known. */
  replace(slots: Slot[]): void {
    this.clear();
    this.order = slots;
    if (this.model) {
      for (const s of slots) {
        const v = this.model.byName.get(s.name)!;
        s.variable = v;
        this.byVar.set(v, s);
      }
    }
  }

  /** Disposes every buffer and forgets every slot (the model stays known). */
  clear(): void {
    for (const s of this.order) for (const b of s.buffers) b.dispose();
    this.order = [];
    this.byVar.clear();
  }
}
