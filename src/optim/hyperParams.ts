/**
 * The optimizers' hyper-parameters: their kinds, fastai's defaults, and the checks run at
 * creation, at every step (a callback may have set them) and on a restored state.
 */
import { ConfigError } from '../errors.js';

export interface HyperParams {
  /** Learning rate, ≥ 0 (schedules anneal it to 0; a step with lr 0 moves nothing but still updates the moments). */
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

export const OPTIMIZER_KINDS: readonly OptimizerKind[] = ['sgd', 'adam', 'adamw'];

export const HP_KEYS: readonly (keyof HyperParams)[] = ['lr', 'momentum', 'wd', 'beta2', 'eps'];

/** fastai's defaults. */
export const DEFAULT_HYPERPARAMS: Readonly<Record<OptimizerKind, Readonly<HyperParams>>> = {
  sgd: { lr: 1e-2, momentum: 0.9, wd: 0, beta2: 0.99, eps: 1e-5 },
  adam: { lr: 1e-3, momentum: 0.9, wd: 0, beta2: 0.99, eps: 1e-5 },
  adamw: { lr: 1e-3, momentum: 0.9, wd: 1e-2, beta2: 0.99, eps: 1e-5 },
};

/** A value as it reads in an error message. */
export function describe(v: unknown): string {
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
export function checkHyperParams(hp: HyperParams, where: string): void {
  const { lr, momentum, wd, beta2, eps } = hp;
  if (!(isNum(lr) && lr >= 0 && lr < Infinity)) {
    throw new ConfigError(`lr must be a finite number ≥ 0 (0 leaves the weights where they are), got ${describe(lr)}${where}`);
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

/** The hyper-parameters of a spec or overrides object; anything else is a ConfigError. */
export function pickHyperParams(src: object, from: 'spec' | 'overrides'): Partial<HyperParams> {
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

/** The kind and full hyper-parameters of a `createOptimizer` call, checked. */
export function resolveSpec(
  spec: OptimizerKind | ({ kind: OptimizerKind } & Partial<HyperParams>),
  overrides?: Partial<HyperParams>,
): { kind: OptimizerKind; hp: HyperParams } {
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
  return { kind: k, hp };
}
