/**
 * Reads the machine's own definition into plain data: states (with their stage, tags,
 * entry/exit actions) and transitions (event, guard, target, actions). The dry run, the
 * visualizer and the coverage tests all use this, so none of them keeps a hand-written
 * copy of the loop.
 */
import type { AnyStateMachine, AnyStateNode } from 'xstate';
import type { Stage } from './stages.js';

export interface ActionRef {
  type: string;
  params?: Record<string, unknown>;
}

export interface TransitionInfo {
  source: string;
  event: string;
  guard: ActionRef | null;
  targets: string[];
  actions: ActionRef[];
}

export interface StateInfo {
  /** Dotted path below the root, e.g. `epoch.train.lossBegin`. */
  path: string;
  parent: string | null;
  key: string;
  stage: Stage | null;
  kind: 'atomic' | 'compound' | 'final' | 'parallel' | 'history';
  tags: string[];
  entry: ActionRef[];
  exit: ActionRef[];
  initial: string | null;
}

export interface MachineDescription {
  id: string;
  /** The top-level initial state (`ready`), as `StateInfo.initial` is for compound states. */
  initial: string | null;
  states: StateInfo[];
  transitions: TransitionInfo[];
}

function actionRef(a: unknown): ActionRef {
  if (typeof a === 'string') return { type: a };
  if (typeof a === 'function') return { type: (a as { type?: string }).type ?? a.name ?? '(inline)' };
  const o = a as { type: string; params?: Record<string, unknown> };
  return o.params === undefined ? { type: o.type } : { type: o.type, params: o.params };
}

function pathOf(node: AnyStateNode): string {
  return node.path.join('.');
}

export function describeMachine(machine: AnyStateMachine): MachineDescription {
  const states: StateInfo[] = [];
  const transitions: TransitionInfo[] = [];
  const visit = (node: AnyStateNode, parent: AnyStateNode | null) => {
    if (parent) {
      const meta = (node.meta ?? {}) as { stage?: Stage };
      states.push({
        path: pathOf(node),
        parent: parent.path.length ? pathOf(parent) : null,
        key: node.key,
        stage: meta.stage ?? null,
        kind: node.type,
        tags: [...node.tags],
        entry: node.entry.map(actionRef),
        exit: node.exit.map(actionRef),
        initial: node.initial?.target?.[0] ? pathOf(node.initial.target[0]) : null,
      });
    }
    for (const [event, list] of node.transitions) {
      for (const t of list) {
        transitions.push({
          source: pathOf(node),
          event,
          guard: t.guard ? actionRef(t.guard) : null,
          targets: (t.target ?? []).map((n: AnyStateNode) => pathOf(n)),
          actions: t.actions.map(actionRef),
        });
      }
    }
    for (const child of Object.values(node.states) as AnyStateNode[]) visit(child, node);
  };
  visit(machine.root, null);
  const rootInitial = machine.root.initial?.target?.[0];
  return { id: machine.id, initial: rootInitial ? pathOf(rootInitial) : null, states, transitions };
}

/** The stage a state value is in (`null` for the internal states ready, jump, gradients and the final ones). */
export function stageOfStatePath(description: MachineDescription, path: string): Stage | null {
  return description.states.find((s) => s.path === path)?.stage ?? null;
}

/**
 * Is the state inside the validation pass — the compound state its `validateBegin` stage sits
 * in? ctx.train is false there and only there (docs/loop.md).
 */
export function isInValidation(description: MachineDescription, path: string): boolean {
  const byPath = new Map(description.states.map((s) => [s.path, s]));
  const scope = description.states.find((s) => s.stage === 'validateBegin')?.parent ?? null;
  for (let p = byPath.get(path)?.parent ?? null; p !== null; p = byPath.get(p)?.parent ?? null) if (p === scope) return true;
  return false;
}

/** The key of `workStages`: an action's name and the pass it runs in. */
export const workKey = (action: string, train: boolean): string => `${action}:${train ? 'train' : 'validation'}`;

/**
 * Where each action runs, read from the machine's own definition: an entry or exit action runs
 * in its state's stage; a transition's action in its target's stage, or its source's when the
 * target is no stage (backwardBegin → `gradients`). Keyed by `workKey(action, train)`, train
 * being whether that state is outside the validation pass, since one action may run in both
 * (computeLoss: backwardBegin in a train batch, batchEnd in validation). An action that runs at
 * two different stages of one pass maps to `null` (its stage is then the caller's to tell);
 * actions of states that are no stage (`jump`) are not listed.
 */
export function workStages(description: MachineDescription): Map<string, Stage | null> {
  const byPath = new Map(description.states.map((s) => [s.path, s]));
  const places = new Map<string, Stage | null>();
  const place = (action: string, state: StateInfo | undefined) => {
    if (!state?.stage) return;
    const key = workKey(action, !isInValidation(description, state.path));
    const known = places.get(key);
    places.set(key, known === undefined || known === state.stage ? state.stage : null);
  };
  for (const s of description.states) for (const a of [...s.entry, ...s.exit]) place(a.type, s);
  for (const t of description.transitions) {
    const target = t.targets.length === 1 ? byPath.get(t.targets[0]!) : undefined;
    const where = target?.stage ? target : byPath.get(t.source);
    for (const a of t.actions) place(a.type, where);
  }
  return places;
}
