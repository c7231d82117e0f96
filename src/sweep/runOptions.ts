/**
 * The options of one run of a sweep: `trainchart train`'s options in camelCase, each with the
 * check that a value given in `base`, in a `grid` list or drawn from a `random` space must pass.
 * One table, so the spec's validation, the expansion and the processor agree on what a run is.
 */
import { ConfigError } from '../errors.js';

export type ModelName = 'mlp' | 'cnn';
export type OptimizerName = 'sgd' | 'adam' | 'adamw';
export type BackendName = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

/** One run, as the processor trains it (every field filled in: see `RUN_DEFAULTS`). */
export interface RunConfig {
  model: ModelName;
  epochs: number;
  batchSize: number;
  lr: number;
  optimizer: OptimizerName;
  /** Weight decay (L2 for sgd/adam, decoupled for adamw); absent: the optimizer's default (adamw 0.01, else 0), as `train`. */
  wd?: number;
  seed: number;
  limitTrain?: number;
  limitValid?: number;
  /** Train with the one-cycle policy up to `lrMax` (default: `lr`). */
  oneCycle: boolean;
  lrMax?: number;
  /** EarlyStopping's patience on the validation loss (none when absent). */
  earlyStopping?: number;
  /**
   * The backend must be the same on every worker of a sweep for a resumed run to be bit-identical
   * (wasm and cpu are deterministic; a checkpoint taken on one and resumed on another is not).
   */
  backend: BackendName;
  /** A checkpoint every this many train batches (and at every epoch end). */
  checkpointEvery: number;
}

export type RunOptionKey = keyof RunConfig;

/** `trainchart train`'s defaults, so a run of a sweep is the same run as `train` with the same options. */
export const RUN_DEFAULTS = {
  model: 'mlp',
  epochs: 3,
  batchSize: 64,
  lr: 2e-3,
  optimizer: 'adam',
  seed: 1,
  oneCycle: false,
  backend: 'auto',
  checkpointEvery: 50,
} as const satisfies Partial<RunConfig>;

type Check = (value: unknown, field: string) => unknown;

const fail = (field: string, want: string, value: unknown): never => {
  throw new ConfigError(`sweep spec: ${field} must be ${want}, got ${JSON.stringify(value) ?? String(value)}`);
};

const int =
  (min: number): Check =>
  (v, field) =>
    typeof v === 'number' && Number.isSafeInteger(v) && v >= min ? v : fail(field, `an integer ≥ ${min}`, v);
const positive: Check = (v, field) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : fail(field, 'a positive number', v));
const nonNegative: Check = (v, field) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : fail(field, 'a number ≥ 0', v));
const oneOf =
  (...choices: string[]): Check =>
  (v, field) =>
    typeof v === 'string' && choices.includes(v) ? v : fail(field, `one of ${choices.map((c) => `"${c}"`).join(', ')}`, v);
const bool: Check = (v, field) => (typeof v === 'boolean' ? v : fail(field, 'true or false', v));

/** Every option a run takes, with its check; `numeric` ones may come from a `{ min, max }` range. */
export const RUN_OPTIONS: Record<RunOptionKey, { check: Check; numeric: boolean; integer: boolean }> = {
  model: { check: oneOf('mlp', 'cnn'), numeric: false, integer: false },
  epochs: { check: int(1), numeric: true, integer: true },
  batchSize: { check: int(1), numeric: true, integer: true },
  lr: { check: positive, numeric: true, integer: false },
  optimizer: { check: oneOf('sgd', 'adam', 'adamw'), numeric: false, integer: false },
  wd: { check: nonNegative, numeric: true, integer: false },
  seed: { check: int(0), numeric: true, integer: true },
  limitTrain: { check: int(1), numeric: true, integer: true },
  limitValid: { check: int(1), numeric: true, integer: true },
  oneCycle: { check: bool, numeric: false, integer: false },
  lrMax: { check: positive, numeric: true, integer: false },
  earlyStopping: { check: int(1), numeric: true, integer: true },
  backend: { check: oneOf('auto', 'tensorflow', 'wasm', 'cpu'), numeric: false, integer: false },
  checkpointEvery: { check: int(1), numeric: true, integer: true },
};

export const RUN_OPTION_KEYS = Object.keys(RUN_OPTIONS) as RunOptionKey[];

export function isRunOptionKey(key: string): key is RunOptionKey {
  return Object.hasOwn(RUN_OPTIONS, key);
}

/** The check of one option's value; `field` is where it was written, for the message. */
export function checkRunOption(key: string, value: unknown, field: string): unknown {
  if (!isRunOptionKey(key)) {
    throw new ConfigError(`sweep spec: ${field} is not a train option; known: ${RUN_OPTION_KEYS.join(', ')}`);
  }
  return RUN_OPTIONS[key].check(value, field);
}

/**
 * A whole run: the defaults filled in and the rules that involve two options checked
 * (`where` names the run, e.g. `run 3 (lr=0.01, …)`).
 */
export function completeRunConfig(options: Partial<Record<RunOptionKey, unknown>>, where: string): RunConfig {
  const config = { ...RUN_DEFAULTS, ...options } as RunConfig;
  for (const key of Object.keys(config)) checkRunOption(key, (config as unknown as Record<string, unknown>)[key], `${where}.${key}`);
  if (config.lrMax !== undefined && !config.oneCycle) {
    throw new ConfigError(`sweep spec: ${where}.lrMax sets the peak of the one-cycle schedule: add "oneCycle": true, or vary lr instead`);
  }
  return config;
}
