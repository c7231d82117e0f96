import { CONTROLS, CONTROL_NAMES, controlsAllowedAt, type ControlName } from '../../machines/controls.js';
import { hookNameOf, STAGES, TRAIN_ONLY_STAGES, type Stage } from '../../machines/stages.js';
import { Callback, type Guard, type Hook } from './callback.js';
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

/** Words a hook name is made of: a field `on<Word>…` holding a function is meant as a hook. */
const STAGE_WORDS = ['train', 'epoch', 'batch', 'loss', 'backward', 'step', 'valid', 'fit', 'forward', 'grad'];

/** Optimal string alignment distance (edits, with adjacent transpositions), case-insensitive. */
function editDistance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** Does an `on…` name read as a hook: it names a stage word, or is within two edits of a hook name? */
function looksLikeHook(name: string): boolean {
  const rest = name.slice(2).toLowerCase();
  return STAGE_WORDS.some((w) => rest.startsWith(w)) || [...HOOK_NAMES].some((h) => editDistance(name, h) <= 2);
}

/**
 * Hook names of other frameworks, as users porting a callback write them (fastai v2's events in
 * camelCase and snake_case, Keras's `on_epoch_end`), with the trainchart hook that runs there.
 * A member named so is a port that would never run: refused with the name to use instead.
 */
const FOREIGN_HOOKS: ReadonlyMap<string, string> = new Map(
  (
    [
      ['beforeFit', 'onTrainBegin'],
      ['afterFit', 'onTrainEnd'],
      ['beforeEpoch', 'onEpochBegin'],
      ['afterEpoch', 'onEpochEnd'],
      ['beforeTrain', 'onEpochBegin'],
      ['afterTrain', 'onValidateBegin'],
      ['beforeBatch', 'onBatchBegin'],
      ['afterPred', 'onLossBegin'],
      ['afterLoss', 'onBackwardBegin'],
      ['beforeBackward', 'onBackwardBegin'],
      ['afterBackward', 'onBackwardEnd'],
      ['beforeStep', 'onBackwardEnd'],
      ['afterStep', 'onStepEnd'],
      ['afterBatch', 'onBatchEnd'],
      ['beforeValidate', 'onValidateBegin'],
      ['afterValidate', 'onValidateEnd'],
      ['afterCancelBatch', 'onBatchEnd'],
      ['afterCancelEpoch', 'onEpochEnd'],
      ['afterCancelFit', 'onTrainEnd'],
    ] as const
  ).flatMap(([camel, ours]) => [
    [camel, ours],
    [camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), ours],
  ]),
);

/** The trainchart hook a foreign-looking name means, if any: `afterEpoch`, `after_epoch`, `OnEpochEnd`, `on_epoch_end`. */
function hookMeantBy(name: string): string | null {
  const foreign = FOREIGN_HOOKS.get(name);
  if (foreign) return foreign;
  const squashed = name.replace(/_/g, '').toLowerCase();
  for (const h of HOOK_NAMES) if (h.toLowerCase() === squashed) return h;
  return null;
}

/**
 * The `on…` members of a callback that are not hooks but look meant as one, read without
 * running getters:
 *  - class members below Callback (methods, getters, setters): every `on<Capital>…` one, since
 *    a class member named so is code, and a helper is easily renamed;
 *  - own fields (class fields, or assigned in the constructor) holding a function: those whose
 *    name looks like a hook. An `on…` field holding anything else (`onSaved = 'saved.json'`), or
 *    a handler whose name is like no stage (`onProgress = (n) => …`), is an option, not a hook.
 */
function misnamedHooks(cb: object): Array<{ name: string; what: string }> {
  const found = new Map<string, string>();
  const isCandidate = (name: string) =>
    !HOOK_NAMES.has(name) && !found.has(name) && (/^on[A-Z]/.test(name) || hookMeantBy(name) !== null);
  for (const name of Object.getOwnPropertyNames(cb)) {
    const d = Object.getOwnPropertyDescriptor(cb, name)!;
    if (!isCandidate(name)) continue;
    if (d.get || d.set) found.set(name, 'getter');
    else if (typeof d.value === 'function' && (hookMeantBy(name) !== null || looksLikeHook(name))) found.set(name, 'field holding a function');
  }
  for (let o: object | null = Object.getPrototypeOf(cb); o && o !== Callback.prototype; o = Object.getPrototypeOf(o)) {
    for (const name of Object.getOwnPropertyNames(o)) {
      const d = Object.getOwnPropertyDescriptor(o, name)!;
      if (!isCandidate(name) || Object.hasOwn(cb, name)) continue;
      if (d.get || d.set) found.set(name, 'getter');
      else if (typeof d.value === 'function') found.set(name, 'method');
    }
  }
  return [...found].map(([name, what]) => ({ name, what }));
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
    if (hook !== undefined && hook !== null && typeof hook !== 'function') {
      throw new ConfigError(`callback ${cb.name}: ${name} is a hook name but holds ${typeof hook}, not a function`);
    }
  }
  if (typeof cb.atQuietPoint === 'function' && cb.atQuietPoint.constructor?.name === 'AsyncFunction') {
    throw new ConfigError(`callback ${cb.name}: atQuietPoint is async; it must be synchronous (the run waits at the quiet point until it returns)`);
  }
  for (const { name, what } of misnamedHooks(cb)) {
    const meant = hookMeantBy(name);
    throw new ConfigError(
      `callback ${cb.name} has a ${what} ${name}, which is not a stage hook` +
        (meant ? `; the hook that runs there is ${meant}` : '') +
        `; hooks are ${[...HOOK_NAMES].join(', ')} (rename it if it is not meant as one)`,
    );
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
