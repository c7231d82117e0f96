/**
 * Edits of the loop machine's config, for tests that need a broken or custom machine: the
 * real config is deep-copied, edited, and built with the machine's own setup, so everything
 * not edited is exactly the real machine.
 */
import { trainLoopMachine, trainLoopSetup } from '../../machines/trainLoop.js';

/** A state node of the machine's config, as far as the mutations need it. */
export interface ConfigNode {
  meta?: unknown;
  tags?: string[];
  entry?: unknown[];
  exit?: unknown[];
  on?: Record<string, unknown>;
  states?: Record<string, ConfigNode>;
  [key: string]: unknown;
}

export type Transition = { target?: string; guard?: unknown; actions?: unknown };

/** A deep copy of plain objects and arrays; functions (the context factory, inline guards) are shared. */
export function copy<T>(x: T): T {
  if (Array.isArray(x)) return x.map(copy) as T;
  if (x !== null && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) {
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, copy(v)])) as T;
  }
  return x;
}

export function node(root: ConfigNode, path: string): ConfigNode {
  return path.split('.').reduce((n, key) => n.states![key]!, root);
}

/** The NEXT transitions of a state, as an array one can edit in place. */
export function nextOf(n: ConfigNode): Transition[] {
  const raw = n.on!.NEXT;
  const list = (Array.isArray(raw) ? raw : [raw]).map((t) => (typeof t === 'string' ? { target: t } : (t as Transition)));
  n.on!.NEXT = list;
  return list;
}

/** Every transition of the config whose guard is `name` gets `guard` instead. */
export function replaceGuard(n: ConfigNode, name: string, guard: unknown) {
  for (const t of Object.values(n.on ?? {}).flat() as Transition[]) if (t && typeof t === 'object' && t.guard === name) t.guard = guard;
  for (const child of Object.values(n.states ?? {})) replaceGuard(child, name, guard);
}

/** The real machine with `edit` applied to a copy of its config. */
export function mutant(edit: (config: ConfigNode) => void): typeof trainLoopMachine {
  const config = copy(trainLoopMachine.config) as unknown as ConfigNode;
  edit(config);
  return trainLoopSetup.createMachine(config as never) as unknown as typeof trainLoopMachine;
}
