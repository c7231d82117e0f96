/**
 * Breakpoints and their conditions. A condition is data — `{ field, op, value }` — checked
 * against a fixed table of operators on an allowlisted set of context fields; nothing a client
 * sends is ever evaluated as code, and a field name can only ever select one of the getters
 * below (a Map, so `constructor` or `__proto__` select nothing).
 */
import type { MachineDescription } from '../../machines/describe.js';
import { STAGES, type Stage } from '../../machines/stages.js';
import { ConfigError } from '../../src/errors.js';
import type { TrainContext } from '../../src/loop/context.js';
import type { Breakpoint, CompareOp, Condition } from './protocol.js';

type FieldKind = 'number' | 'boolean';
type Getter = (ctx: TrainContext) => number | boolean | null;

/** The context fields a condition may test, and how each is read. */
const FIELDS = new Map<string, { kind: FieldKind; get: Getter }>([
  ['epoch', { kind: 'number', get: (c) => c.epoch }],
  ['nEpochs', { kind: 'number', get: (c) => c.nEpochs }],
  ['iteration', { kind: 'number', get: (c) => c.iteration }],
  ['batchIndex', { kind: 'number', get: (c) => c.batchIndex }],
  ['nBatches', { kind: 'number', get: (c) => c.nBatches }],
  ['train', { kind: 'boolean', get: (c) => c.train }],
  ['smoothLoss', { kind: 'number', get: (c) => c.smoothLoss }],
  ['lastLossValue', { kind: 'number', get: (c) => c.lastLossValue }],
  ['lr', { kind: 'number', get: (c) => c.learn.lr }],
  ['momentum', { kind: 'number', get: (c) => c.learn.momentum }],
  ['wd', { kind: 'number', get: (c) => c.learn.wd }],
]);

export const CONDITION_FIELDS: readonly string[] = [...FIELDS.keys()];

const OPS = new Map<CompareOp, (a: number, b: number) => boolean>([
  ['<', (a, b) => a < b],
  ['<=', (a, b) => a <= b],
  ['>', (a, b) => a > b],
  ['>=', (a, b) => a >= b],
  ['==', (a, b) => a === b],
  ['!=', (a, b) => a !== b],
]);

export const CONDITION_OPS: readonly CompareOp[] = [...OPS.keys()];

/**
 * Does the condition hold in this context? A field with no value yet (the smoothed loss before
 * the first batch is NaN, the loss before it is computed is null) never satisfies a condition.
 */
export function conditionHolds(when: Condition, ctx: TrainContext): boolean {
  const field = FIELDS.get(when.field);
  const op = OPS.get(when.op);
  if (!field || !op) return false;
  const v = field.get(ctx);
  if (typeof v === 'boolean') return op(Number(v), Number(when.value));
  if (typeof v !== 'number' || Number.isNaN(v)) return false;
  return op(v, when.value as number);
}

/** The stage of every state path of the machine (null for states without hooks). */
export type StatePaths = ReadonlyMap<string, Stage | null>;

export function statePaths(machine: MachineDescription): StatePaths {
  return new Map(machine.states.map((s) => [s.path, s.stage]));
}

const STAGE_SET: ReadonlySet<string> = new Set(STAGES);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A condition object from outside, checked field by field; a string says what is wrong. */
export function checkCondition(raw: unknown): Condition | string {
  if (!isRecord(raw)) return 'when must be an object { field, op, value }';
  for (const key of Object.keys(raw)) if (!['field', 'op', 'value'].includes(key)) return `when has an unknown key "${key}" (keys: field, op, value)`;
  const { field, op, value } = raw;
  const spec = typeof field === 'string' ? FIELDS.get(field) : undefined;
  if (!spec) return `when.field must be one of ${CONDITION_FIELDS.join(', ')}; got ${JSON.stringify(field)}`;
  if (typeof op !== 'string' || !OPS.has(op as CompareOp)) return `when.op must be one of ${CONDITION_OPS.join(' ')}; got ${JSON.stringify(op)}`;
  if (spec.kind === 'boolean') {
    if (typeof value !== 'boolean') return `when.value must be true or false for ${field}; got ${JSON.stringify(value)}`;
    if (op !== '==' && op !== '!=') return `${field} is true or false: compare it with == or !=, not ${op}`;
  } else if (typeof value !== 'number' || !Number.isFinite(value)) {
    return `when.value must be a finite number for ${field}; got ${JSON.stringify(value)}`;
  }
  return { field: field as string, op: op as CompareOp, value };
}

/** A breakpoint object from outside (`{ stage, path?, when? }`), checked against the machine. */
export function checkBreakpoint(raw: Record<string, unknown>, paths: StatePaths): Breakpoint | string {
  const { stage, path, when } = raw;
  if (typeof stage !== 'string' || !STAGE_SET.has(stage)) return `stage must be one of ${STAGES.join(', ')}; got ${JSON.stringify(stage)}`;
  const bp: Breakpoint = { stage: stage as Stage };
  if (path !== undefined) {
    if (typeof path !== 'string' || !paths.has(path)) return `path must be a state of the machine such as epoch.train.lossBegin; got ${JSON.stringify(path)}`;
    if (paths.get(path) !== stage) return `state ${path} is not in stage ${stage} (its stage is ${paths.get(path) ?? 'none'})`;
    bp.path = path;
  }
  if (when !== undefined) {
    const c = checkCondition(when);
    if (typeof c === 'string') return c;
    bp.when = c;
  }
  return bp;
}

/** Breakpoints are the same place when stage and path agree; a new one there replaces the old (its condition). */
export function samePlace(a: Breakpoint, b: Breakpoint): boolean {
  return a.stage === b.stage && (a.path ?? null) === (b.path ?? null);
}

export function addBreakpoint(list: readonly Breakpoint[], bp: Breakpoint): Breakpoint[] {
  return [...list.filter((b) => !samePlace(b, bp)), bp];
}

/** Without a stage, all; with a stage, every one of that stage; with a path too, only the one at that path. */
export function clearBreakpoints(list: readonly Breakpoint[], stage?: Stage, path?: string): Breakpoint[] {
  if (stage === undefined) return [];
  return list.filter((b) => b.stage !== stage || (path !== undefined && b.path !== path));
}

/** The breakpoint that stops the run in this state and context, if any. */
export function matchBreakpoint(list: readonly Breakpoint[], stage: Stage, path: string, ctx: TrainContext): Breakpoint | null {
  for (const b of list) {
    if (b.stage !== stage || (b.path !== undefined && b.path !== path)) continue;
    if (b.when && !conditionHolds(b.when, ctx)) continue;
    return b;
  }
  return null;
}

// The longest operators first, so `<=` is not read as `<` followed by `=2`.
const SPEC_OPS = [...CONDITION_OPS].sort((a, b) => b.length - a.length);

/**
 * The CLI's `--break SPEC` and the API's string breakpoints: `STAGE` or `STAGE:FIELD OP VALUE`,
 * where STAGE may be a state path (`epoch.validation.batchEnd`) to break in that state only:
 * `backwardEnd`, `backwardEnd:smoothLoss>2`, `lossBegin:iteration==120`, `batchEnd:train==false`.
 */
export function parseBreakSpec(spec: string, paths: StatePaths): Breakpoint {
  const bad = (why: string) =>
    new ConfigError(`--break "${spec}": ${why}. Write STAGE or STAGE:FIELD OP VALUE, e.g. backwardEnd or backwardEnd:smoothLoss>2`);
  const colon = spec.indexOf(':');
  const place = (colon < 0 ? spec : spec.slice(0, colon)).trim();
  const raw: Record<string, unknown> = {};
  if (place.includes('.')) {
    const stage = paths.get(place);
    if (!stage) throw bad(`${place} is not a state with hooks (states: ${[...paths].filter(([, s]) => s).map(([p]) => p).join(', ')})`);
    raw.stage = stage;
    raw.path = place;
  } else {
    raw.stage = place;
  }
  if (colon >= 0) {
    const cond = spec.slice(colon + 1).trim();
    const op = SPEC_OPS.find((o) => cond.includes(o));
    if (!op) throw bad(`no operator in "${cond}" (one of ${CONDITION_OPS.join(' ')})`);
    const at = cond.indexOf(op);
    const field = cond.slice(0, at).trim();
    const text = cond.slice(at + op.length).trim();
    const value = text === 'true' ? true : text === 'false' ? false : text === '' ? Number.NaN : Number(text);
    raw.when = { field, op, value };
  }
  const bp = checkBreakpoint(raw, paths);
  if (typeof bp === 'string') throw bad(bp);
  return bp;
}

/** Breakpoints given to the API or the CLI: spec strings or `{ stage, path?, when? }` objects. */
export function toBreakpoints(given: unknown, paths: StatePaths): Breakpoint[] {
  if (given === undefined || given === null) return [];
  const items = Array.isArray(given) ? given : [given];
  let list: Breakpoint[] = [];
  for (const item of items) {
    if (typeof item === 'string') list = addBreakpoint(list, parseBreakSpec(item, paths));
    else if (isRecord(item)) {
      for (const key of Object.keys(item)) {
        if (!['stage', 'path', 'when'].includes(key)) throw new ConfigError(`visualizer break: unknown key "${key}" (keys: stage, path, when)`);
      }
      const bp = checkBreakpoint(item, paths);
      if (typeof bp === 'string') throw new ConfigError(`visualizer break: ${bp}`);
      list = addBreakpoint(list, bp);
    } else {
      throw new ConfigError(`visualizer break: give a spec such as "lossBegin" or { stage: 'lossBegin' }, got ${JSON.stringify(item)}`);
    }
  }
  return list;
}
