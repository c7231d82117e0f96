/**
 * The statechart as a drawable graph: one node per machine state (compound states contain
 * their children), one edge per (source, target, event) with the guards that pick it as its
 * label, plus an initial marker in every scope that has an initial state. Read from
 * `describeMachine(trainLoopMachine)` — never from a hand-written list — so the page, the SVG,
 * the DOT and the Mermaid export all draw the loop that actually runs.
 *
 * Pure data in, pure data out: used by the browser page and by `trainchart chart` alike.
 */
import type { ActionRef, MachineDescription, StateInfo, TransitionInfo } from '../../machines/describe.js';
import type { Stage } from '../../machines/stages.js';
import type { LoopPlan } from '../../src/dryRun.js';

export type ChartNodeKind = 'atomic' | 'compound' | 'final' | 'initial';

export interface ChartNode {
  /** The state's path (`epoch.train.lossBegin`), or `initial:<scope>` for an initial marker. */
  id: string;
  /** The machine state this node draws; null for an initial marker. */
  path: string | null;
  /** Id of the compound node it sits in; null at the top level. */
  parent: string | null;
  label: string;
  stage: Stage | null;
  kind: ChartNodeKind;
  /** Callbacks whose hook runs on entering this state, in run order (from the dry run; empty without one). */
  callbacks: string[];
  /** Entry actions, for tooltips. */
  entry: string[];
}

export interface ChartEdge {
  id: string;
  source: string;
  target: string;
  event: string;
  /** Guard names in the order the machine tries them (`else` for the unguarded fallback); empty when there is no choice. */
  guards: string[];
  /** Actions run on the transition, for tooltips. */
  actions: string[];
  /** Lowest compound node containing both ends (null: the top level). */
  container: string | null;
}

export interface ChartGraph {
  id: string;
  nodes: ChartNode[];
  edges: ChartEdge[];
  /** Transitions that belong to no drawn state (the root's FAIL), in words. */
  notes: string[];
}

export const INITIAL_PREFIX = 'initial:';

/** A guard as the project names it: the control a `control` guard reads, else the guard's own name. */
export function guardName(guard: ActionRef | null): string | null {
  if (!guard) return null;
  if (guard.type === 'control' && typeof guard.params?.name === 'string') return guard.params.name;
  return guard.type;
}

/** The edge label: the guards joined in the order they are tried. */
export function edgeLabel(edge: Pick<ChartEdge, 'event' | 'guards'>): string {
  const guards = edge.guards.join(' | ');
  if (edge.event === 'NEXT') return guards;
  return guards ? `${edge.event} [${guards}]` : edge.event;
}

const ancestors = (byPath: Map<string, StateInfo>, path: string): string[] => {
  const out: string[] = [];
  for (let p = byPath.get(path)?.parent ?? null; p !== null; p = byPath.get(p)?.parent ?? null) out.push(p);
  return out;
};

function lowestCommonContainer(byPath: Map<string, StateInfo>, a: string, b: string): string | null {
  const upB = new Set(ancestors(byPath, b));
  for (const p of ancestors(byPath, a)) if (upB.has(p)) return p;
  return null;
}

/** Which callbacks run on entering each state, by path, from the dry run's plan. */
function callbacksByPath(plan: LoopPlan | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const step of plan?.steps ?? []) for (const path of step.states) out.set(path, step.callbacks.map((c) => c.name));
  return out;
}

export function chartGraph(description: MachineDescription, plan?: LoopPlan): ChartGraph {
  const byPath = new Map(description.states.map((s) => [s.path, s]));
  const cbs = callbacksByPath(plan);
  const nodes: ChartNode[] = [];
  const edges: ChartEdge[] = [];
  const notes: string[] = [];

  const addInitial = (scope: string | null, target: string) => {
    const id = `${INITIAL_PREFIX}${scope ?? ''}`;
    nodes.push({ id, path: null, parent: scope, label: '', stage: null, kind: 'initial', callbacks: [], entry: [] });
    edges.push({ id: `e:${id}`, source: id, target, event: '', guards: [], actions: [], container: scope });
  };
  if (description.initial) addInitial(null, description.initial);
  for (const s of description.states) {
    nodes.push({
      id: s.path,
      path: s.path,
      parent: s.parent,
      label: s.key,
      stage: s.stage,
      kind: s.kind === 'compound' ? 'compound' : s.kind === 'final' ? 'final' : 'atomic',
      callbacks: cbs.get(s.path) ?? [],
      entry: s.entry.map((a) => a.type),
    });
    if (s.kind === 'compound' && s.initial) addInitial(s.path, s.initial);
  }

  // Transitions of one source and event are tried in order: the unguarded last one is `else`.
  const groups = new Map<string, TransitionInfo[]>();
  for (const t of description.transitions) {
    const key = `${t.source}\u0000${t.event}`;
    const list = groups.get(key) ?? [];
    list.push(t);
    groups.set(key, list);
  }
  const merged = new Map<string, ChartEdge>();
  for (const list of groups.values()) {
    const choice = list.length > 1;
    for (const t of list) {
      if (t.source === '') {
        // The root's own transitions (FAIL) leave every state: a note, not an edge from everywhere.
        notes.push(`${t.event} from any state → ${t.targets.join(', ')}${t.actions.length ? ` (${t.actions.map((a) => a.type).join(', ')})` : ''}`);
        continue;
      }
      const guard = guardName(t.guard) ?? (choice ? 'else' : null);
      for (const target of t.targets) {
        const key = `${t.source}\u0000${target}\u0000${t.event}`;
        let edge = merged.get(key);
        if (!edge) {
          edge = {
            id: `e${merged.size}`,
            source: t.source,
            target,
            event: t.event,
            guards: [],
            actions: [],
            container: lowestCommonContainer(byPath, t.source, target),
          };
          merged.set(key, edge);
        }
        if (guard) edge.guards.push(guard);
        for (const a of t.actions) if (!edge.actions.includes(a.type)) edge.actions.push(a.type);
      }
    }
  }
  edges.push(...merged.values());
  return { id: description.id, nodes, edges, notes };
}
