/**
 * A sweep spec, checked field by field before anything is enqueued: a mistake names the field
 * (`grid.lr[1]`, `random.space.wd.min`) and what it must be, and nothing reaches Redis.
 *
 *   { "name": "lr-scan",
 *     "base":   { "model": "mlp", "epochs": 1, "limitTrain": 1000, "seed": 1 },
 *     "grid":   { "lr": [0.001, 0.003] },
 *     "random": { "n": 8, "seed": 7, "space": { "wd": { "min": 1e-5, "max": 1e-2, "log": true },
 *                                               "batchSize": [32, 64] } } }
 */
import { ConfigError } from '../errors.js';
import { checkRunOption, isRunOptionKey, RUN_OPTION_KEYS, RUN_OPTIONS, type RunOptionKey } from './runOptions.js';

export type ParamValue = string | number | boolean;

/** A numeric range of the random search: uniform, or log-uniform with `log: true` (min > 0). */
export interface ParamRange {
  min: number;
  max: number;
  log?: boolean;
}

export interface RandomSearch {
  /** How many configurations to draw. */
  n: number;
  /** Seed of the draws: the same seed gives the same configurations (default 0). */
  seed?: number;
  /** Each option: a list of choices (drawn uniformly) or a numeric range. */
  space: Partial<Record<RunOptionKey, ParamValue[] | ParamRange>>;
}

export interface SweepSpec {
  /** The sweep's name: its runs' directory under the runs dir and the prefix of its job ids. */
  name: string;
  /** Options every run shares (`trainchart train`'s, in camelCase). */
  base?: Partial<Record<RunOptionKey, ParamValue>>;
  /** Every combination of these lists (the cartesian product, in the order written). */
  grid?: Partial<Record<RunOptionKey, ParamValue[]>>;
  /** Seeded random configurations, crossed with every grid point. */
  random?: RandomSearch;
}

/** A sweep's runs are at most this many: a typo in a grid should not enqueue a million jobs. */
export const MAX_RUNS = 10_000;

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

const SPEC_KEYS = ['name', 'base', 'grid', 'random'];
const RANDOM_KEYS = ['n', 'seed', 'space'];
const RANGE_KEYS = ['min', 'max', 'log'];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown) => JSON.stringify(v) ?? String(v);

function unknownKeys(where: string, obj: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) throw new ConfigError(`sweep spec: unknown field ${where}${key}; known: ${known.join(', ')}`);
  }
}

function optionKey(key: string, field: string): RunOptionKey {
  if (!isRunOptionKey(key)) throw new ConfigError(`sweep spec: ${field} is not a train option; known: ${RUN_OPTION_KEYS.join(', ')}`);
  return key;
}

/** A sweep name is a directory name and part of a job id (BullMQ ids cannot hold ':'). */
export function checkSweepName(name: unknown, field = 'name'): string {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new ConfigError(
      `sweep spec: ${field} must be 1 to 100 letters, digits, '.', '_' or '-' (starting with a letter or digit), got ${show(name)}`,
    );
  }
  return name;
}

function checkList(key: RunOptionKey, list: unknown, field: string): ParamValue[] {
  if (!Array.isArray(list) || list.length === 0) throw new ConfigError(`sweep spec: ${field} must be a non-empty list of values, got ${show(list)}`);
  const seen = new Set<string>();
  return list.map((v, i) => {
    checkRunOption(key, v, `${field}[${i}]`);
    if (seen.has(show(v))) throw new ConfigError(`sweep spec: ${field} has ${show(v)} twice (the runs would be the same)`);
    seen.add(show(v));
    return v as ParamValue;
  });
}

function checkRange(key: RunOptionKey, range: Record<string, unknown>, field: string): ParamRange {
  unknownKeys(`${field}.`, range, RANGE_KEYS);
  if (!RUN_OPTIONS[key].numeric) throw new ConfigError(`sweep spec: ${field} is a range, but ${key} is not a number: give a list of choices`);
  const { min, max, log = false } = range;
  if (typeof min !== 'number' || !Number.isFinite(min)) throw new ConfigError(`sweep spec: ${field}.min must be a number, got ${show(min)}`);
  if (typeof max !== 'number' || !Number.isFinite(max)) throw new ConfigError(`sweep spec: ${field}.max must be a number, got ${show(max)}`);
  if (typeof log !== 'boolean') throw new ConfigError(`sweep spec: ${field}.log must be true or false, got ${show(log)}`);
  if (!(min < max)) throw new ConfigError(`sweep spec: ${field}.min must be below ${field}.max, got min ${min}, max ${max}`);
  if (log && !(min > 0)) throw new ConfigError(`sweep spec: ${field}.min must be > 0 when log is true (a log-uniform range), got ${min}`);
  checkRunOption(key, min, `${field}.min`);
  checkRunOption(key, max, `${field}.max`);
  return { min, max, log };
}

/**
 * The spec, checked; `nameOverride` (the CLI's `--name`) replaces `spec.name`. Throws a
 * ConfigError naming the first bad field.
 */
export function validateSpec(raw: unknown, nameOverride?: string): SweepSpec {
  if (!isObject(raw)) throw new ConfigError(`sweep spec: must be a JSON object with name, base, grid and/or random, got ${show(raw)}`);
  unknownKeys('', raw, SPEC_KEYS);
  const name = nameOverride !== undefined ? checkSweepName(nameOverride, '--name') : checkSweepName(raw.name);
  const spec: SweepSpec = { name };
  const taken = new Map<string, string>();
  const claim = (key: string, field: string) => {
    const other = taken.get(key);
    if (other !== undefined) throw new ConfigError(`sweep spec: ${field} is also set at ${other}: an option is fixed in base or varied in grid or random, once`);
    taken.set(key, field);
  };

  if (raw.base !== undefined) {
    if (!isObject(raw.base)) throw new ConfigError(`sweep spec: base must be an object of train options, got ${show(raw.base)}`);
    const base: Record<string, ParamValue> = {};
    for (const [key, value] of Object.entries(raw.base)) {
      optionKey(key, `base.${key}`);
      base[key] = checkRunOption(key, value, `base.${key}`) as ParamValue;
      claim(key, `base.${key}`);
    }
    spec.base = base;
  }

  if (raw.grid !== undefined) {
    if (!isObject(raw.grid)) throw new ConfigError(`sweep spec: grid must be an object of lists, e.g. { "lr": [0.001, 0.003] }, got ${show(raw.grid)}`);
    const grid: Record<string, ParamValue[]> = {};
    for (const [key, list] of Object.entries(raw.grid)) {
      const k = optionKey(key, `grid.${key}`);
      grid[key] = checkList(k, list, `grid.${key}`);
      claim(key, `grid.${key}`);
    }
    spec.grid = grid;
  }

  if (raw.random !== undefined) {
    const r = raw.random;
    if (!isObject(r)) throw new ConfigError(`sweep spec: random must be { "n": 8, "seed": 7, "space": { … } }, got ${show(r)}`);
    unknownKeys('random.', r, RANDOM_KEYS);
    if (typeof r.n !== 'number' || !Number.isSafeInteger(r.n) || r.n < 1) throw new ConfigError(`sweep spec: random.n must be an integer ≥ 1, got ${show(r.n)}`);
    const seed = r.seed ?? 0;
    if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) throw new ConfigError(`sweep spec: random.seed must be an integer ≥ 0, got ${show(seed)}`);
    if (!isObject(r.space) || Object.keys(r.space).length === 0) {
      throw new ConfigError(`sweep spec: random.space must be an object with at least one option, e.g. { "lr": { "min": 1e-4, "max": 1e-2, "log": true } }, got ${show(r.space)}`);
    }
    const space: Record<string, ParamValue[] | ParamRange> = {};
    for (const [key, dim] of Object.entries(r.space)) {
      const field = `random.space.${key}`;
      const k = optionKey(key, field);
      if (Array.isArray(dim)) space[key] = checkList(k, dim, field);
      else if (isObject(dim)) space[key] = checkRange(k, dim, field);
      else throw new ConfigError(`sweep spec: ${field} must be a list of choices or a range { "min", "max", "log"? }, got ${show(dim)}`);
      claim(key, field);
    }
    spec.random = { n: r.n, seed, space };
  }

  if (spec.grid === undefined && spec.random === undefined) {
    throw new ConfigError('sweep spec: nothing varies: add grid (lists of values) and/or random ({ n, seed, space })');
  }
  const gridSize = Object.values(spec.grid ?? {}).reduce((n, list) => n * list.length, 1);
  const total = gridSize * (spec.random?.n ?? 1);
  if (total > MAX_RUNS) throw new ConfigError(`sweep spec: ${total} runs (grid ${gridSize} × random ${spec.random?.n ?? 1}) is more than ${MAX_RUNS}: split the sweep`);
  return spec;
}
