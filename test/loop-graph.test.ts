/**
 * Model-based coverage of the loop machine with `xstate/graph`: on every tiny configuration
 * (0–2 epochs, 0–2 train and 0–2 validation batches, with and without validation) the graph
 * of the machine is walked, each path to a final state is checked by the contract's oracle,
 * and together the paths must reach every state and every transition `describeMachine` lists.
 *
 * The machine branches on context flags that hooks set, and hooks are not part of the
 * machine. So for traversal `runHooks` is provided as a pure assign driven by the event
 * that enters the stage: `{ type: 'NEXT', control }` means "a hook of the stage entered now
 * returns { [control]: true }" (ignored where the contract gives it no meaning — the bad
 * cases end in FAIL, which is offered from every state), `{ type: 'NEXT', jump: N }` means
 * `{ epoch: N }` from trainBegin. `getAdjacencyMap` explores that event space; vertices are
 * keyed by the state value plus only the context the transitions read (epoch, batch index,
 * flags, jump, failure, train) — not the iteration count or other bookkeeping — so the graph
 * stays small. Shortest paths come from a breadth-first walk over the adjacency map.
 */
import { assign, type SnapshotFrom } from 'xstate';
import { getAdjacencyMap } from 'xstate/graph';
import { describe, expect, it } from 'vitest';
import { describeMachine, stageOfStatePath, type MachineDescription } from '../machines/describe.js';
import type { Stage } from '../machines/stages.js';
import { trainLoopMachine, type HookParams, type LoopInput } from '../machines/trainLoop.js';
import { CONTRACT_CONTROLS, checkTrace, mayComeFrom, type HookCall, type WorkFault } from './support/traceChecker.js';

type GraphEvent =
  | { type: 'NEXT'; control?: (typeof CONTRACT_CONTROLS)[number]; jump?: number }
  | { type: 'FAIL'; failure: { stage: Stage; callback: string | null; message: string } }
  // learn.stop() / a signal: the driver sends it between stages, as if the stage just done had asked.
  | { type: 'STOP' };

const graphMachine = trainLoopMachine.provide({
  actions: {
    runHooks: assign(({ context, event }, params: HookParams) => {
      const e = event as GraphEvent;
      if (e.type !== 'NEXT') return {};
      if (params.stage === 'trainBegin' && e.jump !== undefined) return { jumpTo: e.jump };
      if (e.control && mayComeFrom(e.control, params.stage, context.train)) {
        return { controls: { ...context.controls, [e.control]: true } };
      }
      return {};
    }),
  },
});

type Snap = SnapshotFrom<typeof graphMachine>;

const DESCRIPTION: MachineDescription = describeMachine(trainLoopMachine);
/** The state that calls every callback's jumpToEpoch, read from its entry actions, not by name. */
const JUMP_STATES = new Set(DESCRIPTION.states.filter((s) => s.entry.some((a) => a.type === 'runJumpToEpoch')).map((s) => s.path));

/** Dotted paths of the active states, leaf last: `{ epoch: { train: 'lossBegin' } }` → epoch, epoch.train, epoch.train.lossBegin. */
function activePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix + value];
  const out: string[] = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) out.push(prefix + k, ...activePaths(v, `${prefix}${k}.`));
  return out;
}

const leafOf = (s: Snap) => activePaths(s.value).at(-1)!;

function serialize(s: Snap): string {
  const c = s.context;
  return JSON.stringify([s.value, c.epoch, c.batchIndex, c.train, c.controls, c.jumpTo, c.failure !== null]);
}

const FAILURE = { stage: 'trainBegin' as Stage, callback: 'm', message: 'injected' };

function eventsFor(s: Snap): GraphEvent[] {
  if (s.status !== 'active') return [];
  const controls = CONTRACT_CONTROLS.map((control) => ({ type: 'NEXT' as const, control }));
  // The driver sends NEXT first; a FAIL can only follow something that ran. A resumed run
  // starts where its checkpoint was: `epoch: N` from trainBegin is not offered there.
  const jumps = s.context.resume ? [] : [0, 1, 2].map((jump) => ({ type: 'NEXT' as const, jump }));
  if (s.value === 'ready') return [{ type: 'NEXT' }, ...controls, ...jumps];
  return [{ type: 'NEXT' }, ...controls, { type: 'FAIL', failure: FAILURE }, { type: 'STOP' }];
}

/** The key under which describeMachine lists a transition. */
function transitionKey(source: string, event: string, guard: unknown, targets: string[]): string {
  const g = guard === null || guard === undefined ? '-' : typeof guard === 'string' ? guard : JSON.stringify(guard);
  return `${source} --${event}[${g}]--> ${targets.join(',')}`;
}

const DESCRIBED_TRANSITIONS = DESCRIPTION.transitions.map((t) =>
  transitionKey(t.source, t.event, t.guard && (t.guard.params ? { type: t.guard.type, params: t.guard.params } : t.guard.type), t.targets),
);

interface Step {
  event: GraphEvent;
  state: Snap;
}

/** The hook calls a path makes, with one callback `m` whose hooks return what the events carry. */
function traceOf(start: Snap, steps: Step[]): { trace: HookCall[]; workFault: WorkFault | null } {
  const trace: HookCall[] = [];
  let workFault: WorkFault | null = null;
  let prev = start;
  for (const { event, state } of steps) {
    if (event.type === 'STOP') {
      // As learn.stop() from a hook of the stage just done (or of the jump).
      if (trace.length) trace.at(-1)!.stopped = true;
      prev = state;
      continue;
    }
    if (event.type === 'FAIL') {
      const leaf = leafOf(prev);
      const error = new Error(`FAIL in ${leaf}`);
      // A FAIL in a stage is one of its hooks throwing; in another state it is the work.
      if (stageOfStatePath(DESCRIPTION, leaf) || JUMP_STATES.has(leaf)) trace.at(-1)!.threw = error;
      else workFault ??= { afterCalls: trace.length, error };
    }
    const leaf = leafOf(state);
    const stage = stageOfStatePath(DESCRIPTION, leaf);
    const c = state.context;
    if (JUMP_STATES.has(leaf)) {
      trace.push({ stage: 'jumpToEpoch', callback: 'm', epoch: c.resume ? c.resume.epoch : c.jumpTo!, batchIndex: -1, train: true, iteration: -1 });
    } else if (stage) {
      const call: HookCall = { stage, callback: 'm', epoch: c.epoch, batchIndex: c.batchIndex, train: c.train, iteration: c.iteration };
      if (event.type === 'NEXT' && stage === 'trainBegin' && event.jump !== undefined) call.returned = { epoch: event.jump };
      else if (event.type === 'NEXT' && event.control && mayComeFrom(event.control, stage, c.train)) call.returned = { [event.control]: true };
      trace.push(call);
    }
    prev = state;
  }
  return { trace, workFault };
}

function explore(input: LoopInput) {
  const adjacency = getAdjacencyMap(graphMachine, {
    input,
    events: eventsFor as never,
    serializeState: serialize as never,
    serializeEvent: (e) => JSON.stringify(e),
    limit: 200_000,
  });
  const keys = Object.keys(adjacency);
  const start = adjacency[keys[0] as keyof typeof adjacency]!.state as Snap;
  // Shortest path to every vertex: breadth first over the adjacency map (it is built breadth first too).
  const pathTo = new Map<string, Step[]>([[keys[0]!, []]]);
  const queue = [keys[0]!];
  const transitions = new Set<string>();
  const states = new Set<string>();
  while (queue.length) {
    const key = queue.shift()!;
    const { state, transitions: out } = adjacency[key as keyof typeof adjacency]!;
    const from = state as Snap;
    for (const p of activePaths(from.value)) states.add(p);
    for (const { event, state: to } of Object.values(out)) {
      for (const t of graphMachine.getTransitionData(from, event as never)) {
        transitions.add(
          transitionKey(t.source.path.join('.'), t.eventType, t.guard ?? null, (t.target ?? []).map((n) => n.path.join('.'))),
        );
      }
      const toKey = serialize(to as Snap);
      if (!pathTo.has(toKey)) {
        pathTo.set(toKey, [...pathTo.get(key)!, { event: event as GraphEvent, state: to as Snap }]);
        queue.push(toKey);
      }
    }
  }
  const complete = [...pathTo.values()].filter((steps) => steps.length && steps.at(-1)!.state.status === 'done');
  return { start, vertices: keys.length, complete, transitions, states };
}

const CONFIGS: LoopInput[] = [];
for (const nEpochs of [0, 1, 2]) {
  for (const nTrainBatches of [0, 1, 2]) {
    CONFIGS.push({ nEpochs, nTrainBatches, nValidBatches: 0, validate: false });
    for (const nValidBatches of [0, 1, 2]) CONFIGS.push({ nEpochs, nTrainBatches, nValidBatches, validate: true });
  }
}
// Resumed from a checkpoint (§6): mid-epoch (also with the epoch's flags, and after its last
// batch), at an epoch's start, and at the end of a finished run.
const point = (epoch: number, batchIndex: number, iteration: number, flags: { stopEpoch?: boolean; skipValidate?: boolean } = {}) => ({
  epoch,
  batchIndex,
  iteration,
  stopEpoch: flags.stopEpoch ?? false,
  skipValidate: flags.skipValidate ?? false,
});
for (const validate of [false, true]) {
  const base = { nEpochs: 2, nTrainBatches: 2, nValidBatches: validate ? 1 : 0, validate };
  for (const resume of [point(0, 1, 1), point(1, 2, 4), point(1, 0, 2), point(2, 0, 4), point(0, 1, 1, { stopEpoch: true }), point(1, 1, 3, { skipValidate: true })]) {
    CONFIGS.push({ ...base, resume });
  }
}

describe('model-based paths through the loop machine (xstate/graph)', () => {
  const reachedStates = new Set<string>();
  const reachedTransitions = new Set<string>();
  let pathsChecked = 0;

  for (const input of CONFIGS) {
    const r = input.resume;
    const resumed = r ? `, resumed at e${r.epoch} b${r.batchIndex}${r.stopEpoch ? ' stopEpoch' : ''}${r.skipValidate ? ' skipValidate' : ''}` : '';
    const name = `${input.nEpochs} epochs, ${input.nTrainBatches} train, ${input.validate ? `${input.nValidBatches} valid` : 'no validation'}${resumed}`;
    it(`${name}: every path to a final state keeps the contract`, () => {
      const { start, complete, transitions, states } = explore(input);
      for (const t of transitions) reachedTransitions.add(t);
      for (const s of states) reachedStates.add(s);
      for (const s of complete) for (const p of activePaths(s.at(-1)!.state.value)) reachedStates.add(p);
      expect(complete.length).toBeGreaterThan(0);
      for (const steps of complete) {
        const { trace, workFault } = traceOf(start, steps);
        const status = String(steps.at(-1)!.state.value);
        const { violations } = checkTrace({
          trace,
          workFault,
          config: {
            callbacks: [{ name: 'm', order: 0 }],
            nEpochs: input.nEpochs,
            nTrain: input.nTrainBatches,
            nValid: input.nValidBatches,
            validate: input.validate,
            resume: input.resume ? { ...input.resume, carried: [] } : null,
          },
          outcome: { status },
        });
        const events = steps.map((s) =>
          s.event.type === 'FAIL' || s.event.type === 'STOP' ? s.event.type : 'control' in s.event ? s.event.control : 'jump' in s.event ? `jump ${s.event.jump}` : 'NEXT',
        );
        expect(violations, `events: ${events.join(' ')}`).toEqual([]);
        pathsChecked++;
      }
    });
  }

  it('together the paths reach every state and every transition describeMachine lists', () => {
    expect(pathsChecked).toBeGreaterThan(CONFIGS.length);
    const missingStates = DESCRIPTION.states.map((s) => s.path).filter((p) => !reachedStates.has(p));
    expect(missingStates).toEqual([]);
    const missingTransitions = DESCRIBED_TRANSITIONS.filter((t) => !reachedTransitions.has(t));
    expect(missingTransitions).toEqual([]);
    // And nothing was taken that describeMachine does not list (the keys really correspond).
    expect([...reachedTransitions].filter((t) => !DESCRIBED_TRANSITIONS.includes(t))).toEqual([]);
  });
});
