import { CONTROLS, CONTROL_NAMES, controlsAllowedAt, type ControlName } from '../../machines/controls.js';
import { hookNameOf, STAGES, TRAIN_ONLY_STAGES, type Stage } from '../../machines/stages.js';
import { Callback, type Guard, type Hook } from '../callback.js';
import { ConfigError, ControlError } from '../errors.js';

export interface BoundHook {
  callback: Callback;
  hook: Hook;
}

export interface BoundGuard {
  callback: Callback;
  control: ControlName;
  guard: Guard;
}

/** What the hooks of one stage asked for. */
export interface Requested {
  controls: Partial<Record<ControlName, true>> | null;
  jumpTo: number | null;
}

/**
 * Which hooks and guards run at each stage, worked out once per fit so the per-batch path
 * only walks short arrays. Sorting is stable, so ties keep the order callbacks were given.
 */
export class HookTable {
  private readonly hooks = new Map<Stage, BoundHook[]>();
  private readonly guards = new Map<string, BoundGuard[]>();
  readonly jumpers: Callback[];
  /** Callbacks told about quiet points (`atQuietPoint`), in run order. */
  readonly quietObservers: Callback[];

  constructor(readonly callbacks: readonly Callback[]) {
    for (const cb of callbacks) validateCallback(cb);
    const sorted = [...callbacks].sort((a, b) => a.order - b.order);
    for (const stage of STAGES) {
      const name = hookNameOf(stage);
      const bound: BoundHook[] = [];
      for (const cb of sorted) {
        const hook = (cb as unknown as Record<string, unknown>)[name];
        if (typeof hook === 'function') bound.push({ callback: cb, hook: hook as Hook });
      }
      this.hooks.set(stage, bound);
      for (const train of [true, false]) {
        if (!train && TRAIN_ONLY_STAGES.has(stage)) continue;
        const list: BoundGuard[] = [];
        for (const control of controlsAllowedAt(stage, train)) {
          for (const cb of sorted) {
            const guard = cb.guards[control];
            if (guard) list.push({ callback: cb, control, guard });
          }
        }
        this.guards.set(key(stage, train), list);
      }
    }
    this.jumpers = sorted.filter((cb) => typeof cb.jumpToEpoch === 'function');
    this.quietObservers = sorted.filter((cb) => typeof cb.atQuietPoint === 'function');
  }

  hooksAt(stage: Stage): readonly BoundHook[] {
    return this.hooks.get(stage)!;
  }

  guardsAt(stage: Stage, train: boolean): readonly BoundGuard[] {
    return this.guards.get(key(stage, train)) ?? [];
  }
}

function key(stage: Stage, train: boolean) {
  return train ? stage : `${stage}:valid`;
}

const HOOK_NAMES: ReadonlySet<string> = new Set(STAGES.map(hookNameOf));

/** The methods a callback's classes below Callback define, read without running getters. */
function ownMethods(cb: object): Array<[string, Function]> {
  const found = new Map<string, Function>();
  // Methods only: an option field that happens to be called `onSaved` is not a misspelled hook.
  for (let o: object | null = Object.getPrototypeOf(cb); o && o !== Callback.prototype; o = Object.getPrototypeOf(o)) {
    for (const name of Object.getOwnPropertyNames(o)) {
      const d = Object.getOwnPropertyDescriptor(o, name);
      if (!found.has(name) && d && typeof d.value === 'function' && name !== 'constructor') found.set(name, d.value);
    }
  }
  return [...found];
}

/**
 * A callback's mistakes are caught when fit starts, not discovered as silence later:
 * a class passed instead of an instance, an async hook (hooks run synchronously inside
 * transitions), a misspelled hook name such as `onEpochStart`, a bad guard.
 */
function validateCallback(cb: unknown) {
  if (!(cb instanceof Callback)) {
    const what = typeof cb === 'function' ? `the class ${(cb as { name?: string }).name ?? '(anonymous)'} (did you forget \`new\`?)` : String(cb);
    throw new ConfigError(`callbacks must be Callback instances, got ${what}`);
  }
  for (const name of HOOK_NAMES) {
    const hook = (cb as unknown as Record<string, unknown>)[name];
    if (typeof hook === 'function' && hook.constructor?.name === 'AsyncFunction') {
      throw new ConfigError(`callback ${cb.name}: ${name} is async; hooks must be synchronous (they run inside the loop's state transitions)`);
    }
  }
  if (typeof cb.atQuietPoint === 'function' && cb.atQuietPoint.constructor?.name === 'AsyncFunction') {
    throw new ConfigError(`callback ${cb.name}: atQuietPoint is async; it must be synchronous (the run waits at the quiet point until it returns)`);
  }
  for (const [name] of ownMethods(cb)) {
    if (/^on[A-Z]/.test(name) && !HOOK_NAMES.has(name)) {
      throw new ConfigError(
        `callback ${cb.name} has a method ${name}, which is not a stage hook; hooks are ${[...HOOK_NAMES].join(', ')} (rename it if it is a helper)`,
      );
    }
  }
  validateGuards(cb);
}

function validateGuards(cb: Callback) {
  if (cb.guards === null || typeof cb.guards !== 'object') {
    throw new ConfigError(`callback ${cb.name}: guards must be an object keyed by control name, got ${String(cb.guards)}`);
  }
  for (const [name, guard] of Object.entries(cb.guards)) {
    if (!(CONTROL_NAMES as readonly string[]).includes(name)) {
      throw new ConfigError(
        `callback ${cb.name} declares a guard for unknown control "${name}"; guards may be keyed by ${CONTROL_NAMES.join(', ')}`,
      );
    }
    if (typeof guard !== 'function') {
      throw new ConfigError(`callback ${cb.name}: guard "${name}" must be a function (ctx) => boolean`);
    }
  }
  if (!Number.isFinite(cb.order)) throw new ConfigError(`callback ${cb.name}: order must be a finite number, got ${cb.order}`);
}

/**
 * Checks what a hook returned against the contract and merges it into `into`.
 * An unknown key, or a control with no meaning at this stage, is an error naming
 * the callback, the stage and the key — never a silent no-op.
 */
export function mergeHookResult(result: unknown, cb: Callback, stage: Stage, train: boolean, into: Requested): void {
  if (result === undefined || result === null) return;
  const where = `${cb.name}.${hookNameOf(stage)}${train ? '' : ' (validation)'}`;
  if (typeof (result as { then?: unknown }).then === 'function') {
    // The run fails here; the Promise's own rejection, if any, must not crash the process too.
    (result as PromiseLike<unknown>).then(undefined, () => {});
    throw new ControlError(
      `${where} returned a Promise; hooks run synchronously inside the loop's state transitions, so make the hook synchronous (no async, no await)`,
      cb.name,
      stage,
      'then',
    );
  }
  const proto = typeof result === 'object' ? Object.getPrototypeOf(result) : undefined;
  if (typeof result !== 'object' || (proto !== Object.prototype && proto !== null)) {
    throw new ControlError(
      `${where} returned ${JSON.stringify(result)}; a hook returns nothing or a control object such as { stopTraining: true }`,
      cb.name,
      stage,
      String(result),
    );
  }
  for (const [k, value] of Object.entries(result)) {
    if (k === 'epoch') {
      if (stage !== 'trainBegin') {
        throw new ControlError(`${where} returned { epoch: ${value} }; epoch may only come from trainBegin`, cb.name, stage, k);
      }
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
        throw new ControlError(
          `${where} returned { epoch: ${JSON.stringify(value)} }; epoch must be an integer ≥ 0`,
          cb.name,
          stage,
          k,
        );
      }
      into.jumpTo = value;
      continue;
    }
    const spec = CONTROLS[k as ControlName];
    if (!spec || !Object.hasOwn(CONTROLS, k)) {
      throw new ControlError(
        `${where} returned unknown control "${k}"; known controls: ${CONTROL_NAMES.join(', ')}, epoch`,
        cb.name,
        stage,
        k,
      );
    }
    if (typeof value !== 'boolean') {
      throw new ControlError(`${where} returned { ${k}: ${JSON.stringify(value)} }; controls take true or false`, cb.name, stage, k);
    }
    if (!spec.allowedAt(stage, train)) {
      throw new ControlError(
        `${where} returned "${k}", which has no meaning at ${stage}${train ? '' : ' during validation'}; it may come from ${spec.from}`,
        cb.name,
        stage,
        k,
      );
    }
    if (value) (into.controls ??= {})[k as ControlName] = true;
  }
}
