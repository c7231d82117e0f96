/**
 * The loop machine run without XState's interpreter on the per-batch path, still decided by the
 * machine definition alone. An XState actor costs about 8 µs per event (a macrostep builds sets
 * of state nodes, clones the snapshot, notifies observers); the loop sends about 7 events a batch.
 * Here every step is resolved *once* by XState's own pure `transition` function and memoised:
 *
 * - which transition an event takes is chosen as XState's `getTransitionData` chooses it: the
 *   machine's guards evaluated on the current context, the innermost state's candidates first
 *   (the candidate lists read once from the state nodes; anything unusual is left to XState);
 * - what taking it does — the exit, transition and entry actions in order, the state reached,
 *   its tags and status — is read once per (state, transition) from `transition()` on a probe
 *   copy of the machine whose actions all do nothing (so none of them is resolved away, an
 *   `assign` included), then replayed with the real implementations: an `assign` merges its
 *   update into a fresh context as XState's `resolveAssign` does, any other action is called
 *   with `{ context, event, self }` and its params (`self`: this actor, as XState passes its own);
 * - all of it is kept per machine object (`ResolvedMachine`), so every actor of one provided
 *   machine shares it: runLoop provides the loop machine once, and a fit resolves nothing anew;
 *   each fit's actor gets that fit's work as actions of its own (`OwnActions`), put in place of
 *   the machine's where a step lists them.
 *
 * That is exact only for machines whose one event makes one microstep: no eventless (`always`)
 * or delayed transitions, no invoked or spawned actors, no parallel or history states, no nested
 * final states or onDone, no built-in actions (raise, sendTo, enqueueActions, …, inline or named)
 * and no dynamic params. `unsupportedByResolvedActor` checks that from the definition; runLoop
 * uses the live actor otherwise, and whenever someone outside watches the actor itself (XState
 * inspection, `onActor`, a snapshot to restore). A watcher of the steps alone (the visualizer)
 * is told them by this actor as the live actor's inspection tells them (src/loop/stepInspection.ts).
 * test/resolved-actor.test.ts runs both on the same scenarios and compares every step.
 */
import { initialTransition, transition, type AnyStateMachine, type EventObject } from 'xstate';
import type { StepWatcher } from './stepInspection.js';

interface ExecutableAction {
  type: string;
  params: unknown;
}

type ActionImpl = ((args: unknown, params: unknown) => void) & { type?: string; assignment?: unknown };

type GuardImpl = (args: { context: unknown; event: EventObject }, params: unknown) => unknown;

/** A transition the event may take, with its guard resolved to the implementation (null: none). */
interface Candidate {
  transition: object;
  guard: GuardImpl | null;
  params: unknown;
  guardType: string;
  nodeId: string;
  /** What taking it does, once resolved. */
  step: Step | null;
}

/** An action of a step: its implementation, params, and for an assign its assignment. */
interface ResolvedAction {
  type: string;
  impl: ActionImpl;
  params: unknown;
  assignment: unknown;
}

/** One transition taken from one state: what it runs and where it ends. */
interface Step {
  /** Its place among the machine's steps: an actor with actions of its own keeps its versions by it. */
  id: number;
  /** XState's definition of the transition taken, as the list a step watcher is told. */
  transitions: readonly object[];
  actions: ResolvedAction[];
  /** The state it reaches. */
  record: StateRecord;
  status: 'active' | 'done';
  tags: ReadonlySet<string>;
  hasTag: (tag: string) => boolean;
}

export interface ResolvedSnapshot<C> {
  status: 'active' | 'done' | 'error';
  value: unknown;
  context: C;
  error: unknown;
  hasTag(tag: string): boolean;
}

const BUILTIN = /^xstate\./;
const NO_TRANSITIONS: readonly object[] = Object.freeze([]);

/**
 * What a step does depends on the machine's definition only (the state it leaves, the
 * transition it takes), not on the implementations: so steps resolved once serve every actor
 * of that definition — every fit provides the loop machine anew with its own work and hooks.
 * Keyed by the definition (`machine.config`), then by the state left and the transition taken.
 */
interface StepPlan {
  actions: ExecutableAction[];
  value: unknown;
  status: 'active' | 'done';
  tags: ReadonlySet<string>;
}
const PLANS = new WeakMap<object, Map<string, StepPlan>>();
/** A transition's place in the definition: its source state, event and index among that event's candidates. */
const TRANSITION_KEYS = new WeakMap<object, string>();
function transitionKey(t: object): string {
  let key = TRANSITION_KEYS.get(t);
  if (key === undefined) {
    const { source, eventType } = t as { source: { id: string; transitions: Map<string, object[]> }; eventType: string };
    key = `${source.id}\u0000${eventType}\u0000${source.transitions.get(eventType)?.indexOf(t) ?? -1}`;
    TRANSITION_KEYS.set(t, key);
  }
  return key;
}
/** The probe (every action silent) per definition, reused while the guards are the same functions. */
const PROBES = new WeakMap<object, { guards: Record<string, unknown>; probe: AnyStateMachine }>();
function probeOf(machine: AnyStateMachine): AnyStateMachine {
  const guards = machine.implementations.guards as Record<string, unknown>;
  const known = PROBES.get(machine.config);
  const same = known && Object.keys(guards).length === Object.keys(known.guards).length && Object.keys(guards).every((k) => guards[k] === known.guards[k]);
  if (known && same) return known.probe;
  const silent = Object.fromEntries(Object.keys(machine.implementations.actions).map((name) => [name, () => {}]));
  const probe = machine.provide({ actions: silent });
  PROBES.set(machine.config, { guards: { ...guards }, probe });
  return probe;
}

/**
 * Why the machine cannot be run resolved (null: it can). Reads the definition only.
 */
export function unsupportedByResolvedActor(machine: AnyStateMachine): string | null {
  const actions = machine.implementations.actions as Record<string, unknown>;
  /** A named action whose implementation is a plain function or an assign (not raise, enqueueActions, sendTo, …). */
  const implemented = (type: string): string | null => {
    const impl = actions[type] as { resolve?: unknown; type?: unknown } | undefined;
    if (!impl) return `action "${type}" has no implementation`;
    if (typeof impl.resolve === 'function' && impl.type !== 'xstate.assign') return `action "${type}" is the built-in ${String(impl.type)}`;
    return null;
  };
  const named = (a: unknown): string | null => {
    if (typeof a === 'string') return implemented(a);
    if (a && typeof a === 'object' && typeof (a as { type?: unknown }).type === 'string') {
      const { type, params } = a as { type: string; params?: unknown };
      if (typeof params === 'function') return `action "${type}" has dynamic params`;
      return implemented(type);
    }
    return 'an inline or built-in action';
  };
  const visit = (node: AnyStateMachine['root']): string | null => {
    const config = node.config as Record<string, unknown>;
    if (node.type === 'parallel' || node.type === 'history') return `state "${node.id}" is ${node.type}`;
    if (config.always || config.after || config.invoke) return `state "${node.id}" has always/after/invoke`;
    // Reaching a nested final state raises a done event inside the same step (onDone).
    if (config.onDone || (node.type === 'final' && node.parent !== machine.root)) return `state "${node.id}" has onDone or is a nested final state`;
    for (const a of [...node.entry, ...node.exit]) {
      const why = named(a);
      if (why) return `state "${node.id}": ${why}`;
    }
    for (const list of node.transitions.values()) {
      for (const t of list) {
        if (typeof t.guard === 'function') return `state "${node.id}" has an inline guard`;
        if (t.guard && typeof t.guard === 'object' && typeof (t.guard as { params?: unknown }).params === 'function') {
          return `state "${node.id}" has a guard with dynamic params`;
        }
        for (const a of t.actions) {
          const why = named(a);
          if (why) return `state "${node.id}" (event ${t.eventType}): ${why}`;
        }
      }
    }
    for (const child of Object.values(node.states ?? {})) {
      const why = visit(child as AnyStateMachine['root']);
      if (why) return why;
    }
    return null;
  };
  return visit(machine.root);
}

/**
 * One state the actor can be in, with what each event type may do from there: its candidate
 * transitions (null: XState chooses, see `choose`), and the steps already resolved.
 */
interface StateRecord {
  value: unknown;
  candidates: Map<string, Candidate[] | null>;
  /** Steps by the transition XState chose (states whose candidates are left to XState). */
  stepsByTransition: Map<object, Step>;
}

/**
 * What the actors of one machine (one `provide`d instance) share: the records of its states,
 * their candidate transitions and resolved steps. Nothing in it depends on a run: the actions'
 * implementations are the machine's own, a run's context is passed in. A driver that provides
 * its machine once (runLoop does) resolves each step once per process, not once per fit.
 */
class ResolvedMachine {
  /** One record per state (by its value's JSON): every step reaching a state shares its record and value object. */
  private readonly records = new Map<string, StateRecord>();
  readonly probe: AnyStateMachine;
  private readonly plans: Map<string, StepPlan>;
  private readonly impls: Record<string, ActionImpl>;
  private steps = 0;

  constructor(readonly machine: AnyStateMachine) {
    this.impls = machine.implementations.actions as Record<string, ActionImpl>;
    this.probe = probeOf(machine);
    let plans = PLANS.get(machine.config);
    if (!plans) PLANS.set(machine.config, (plans = new Map()));
    this.plans = plans;
  }

  /** The candidates of `eventType` from the innermost active state out to the root (null: let XState choose). */
  candidatesOf(value: unknown, eventType: string): Candidate[] | null {
    const nodes: AnyStateMachine['root'][] = [this.machine.root];
    for (let v = value; ; ) {
      const parent = nodes[nodes.length - 1]!;
      const key = typeof v === 'string' ? v : Object.keys(v as object)[0]!;
      const child = parent.states?.[key];
      if (!child) return null;
      nodes.push(child);
      if (typeof v === 'string') break;
      v = (v as Record<string, unknown>)[key];
    }
    const guards = this.machine.implementations.guards as Record<string, unknown>;
    const out: Candidate[] = [];
    for (const node of nodes.reverse()) {
      for (const descriptor of node.transitions.keys()) if (descriptor !== eventType && descriptor.includes('*')) return null;
      for (const t of node.transitions.get(eventType) ?? []) {
        const guard = t.guard as unknown;
        const candidate = (g: GuardImpl | null, params: unknown, guardType: string): Candidate => ({ transition: t, guard: g, params, guardType, nodeId: node.id, step: null });
        if (guard === undefined || guard === null) {
          out.push(candidate(null, undefined, ''));
          continue;
        }
        if (typeof guard === 'function') {
          if ('check' in guard) return null;
          out.push(candidate(guard as GuardImpl, undefined, ''));
          continue;
        }
        const type = typeof guard === 'string' ? guard : (guard as { type: string }).type;
        const impl = guards[type];
        const params = typeof guard === 'string' ? undefined : (guard as { params?: unknown }).params;
        if (typeof impl !== 'function' || 'check' in impl || typeof params === 'function') return null;
        out.push(candidate(impl as GuardImpl, params, type));
      }
    }
    return out;
  }

  /** What taking `taken` from state `value` does, from the plan XState's `transition()` gave for it. */
  resolveStep(value: unknown, context: unknown, taken: object, event: EventObject): Step {
    const planKey = `${JSON.stringify(value)}\u0000${transitionKey(taken)}`;
    let plan = this.plans.get(planKey);
    if (!plan) {
      const from = this.probe.resolveState({ value, context } as never);
      const [next, executable] = transition(this.probe, from, event) as unknown as [
        { value: unknown; status: string; tags: Set<string> },
        ExecutableAction[],
      ];
      plan = {
        actions: executable.map(({ type, params }) => ({ type, params })),
        value: next.value,
        status: next.status === 'done' ? 'done' : 'active',
        tags: new Set(next.tags),
      };
      this.plans.set(planKey, plan);
    }
    const tags = plan.tags;
    return { id: this.steps++, transitions: Object.freeze([taken]), actions: this.implsOf(plan.actions), record: this.recordOf(plan.value), status: plan.status, tags, hasTag: (tag) => tags.has(tag) };
  }

  recordOf(value: unknown): StateRecord {
    const key = JSON.stringify(value);
    let record = this.records.get(key);
    if (!record) this.records.set(key, (record = { value, candidates: new Map(), stepsByTransition: new Map() }));
    return record;
  }

  /** The real implementations of the actions the probe listed, in its order. */
  implsOf(executable: readonly ExecutableAction[]): Step['actions'] {
    return executable.map(({ type, params }) => {
      const impl = this.impls[type];
      if (!impl || BUILTIN.test(type)) throw new Error(`the resolved loop actor cannot run action "${type}"`);
      return { type, impl, params, assignment: impl.type === 'xstate.assign' ? impl.assignment : null };
    });
  }
}

const RESOLVED = new WeakMap<AnyStateMachine, ResolvedMachine>();

/**
 * Implementations of this actor's own for some of the machine's named actions: what
 * `machine.provide({ actions })` would give it, without a new machine object (whose steps would
 * all be resolved anew). A driver that runs one machine for many runs (runLoop: one per fit)
 * gives each run's actor its own work this way, called directly, not through a stand-in that
 * looks up the run. Stricter than `provide`: each replaces an action the machine implements
 * (with a plain function or an assign), and is itself one of those two.
 */
export type OwnActions = Readonly<Record<string, unknown>>;

/**
 * A stand-in for `createActor(machine, { input })` — with actions of its own,
 * `createActor(machine.provide({ actions: own }), { input })` — with the part of Actor the loop uses. As
 * XState's: made, it has its initial context and has applied the initial state's `assign`s;
 * `start()` runs the initial state's other entry actions (each with the context it had at its
 * place in the list); an error in either leaves it with status 'error'.
 */
export class ResolvedActor<C extends object> {
  private snapshot: ResolvedSnapshot<C>;
  /** The record of the current state (`snapshot.value`). */
  private record: StateRecord;
  private readonly resolved: ResolvedMachine;
  /** The initial entry actions that are not assigns, until `start()`. */
  private deferred: Array<() => void> | null = [];
  /** This actor's versions of the steps' actions (by step id), when it has actions of its own. */
  private readonly ownSteps: ResolvedAction[][] = [];
  /** The actions of its own, copied as it is made (as `provide` does) into an object with no prototype. */
  private readonly own: Record<string, unknown> | null;
  /** The event that made the initial state, for the first step watcher's snapshot. */
  private readonly initEvent: EventObject;

  /**
   * `watch`: told of every step as the live actor's inspection tells it, with a subset of its
   * fields (src/loop/stepInspection.ts): a microstep for each event taken (ignored: of no
   * transition), then the snapshot after it; the initial snapshot on `start()`.
   */
  constructor(
    private readonly machine: AnyStateMachine,
    input: unknown,
    own: OwnActions | null = null,
    private readonly watch: StepWatcher | null = null,
  ) {
    this.own = own === null ? null : Object.assign(Object.create(null) as Record<string, unknown>, own);
    if (own !== null) {
      const named = machine.implementations.actions as Record<string, unknown>;
      for (const [name, impl] of Object.entries(own)) {
        if (!Object.hasOwn(named, name)) throw new Error(`ResolvedActor: the machine "${machine.id}" implements no action "${name}" for this actor to replace`);
        if (typeof impl !== 'function') throw new Error(`ResolvedActor: the implementation of action "${name}" must be a function or an assign, got ${typeof impl}`);
        if (BUILTIN.test(String((impl as ActionImpl).type ?? '')) && (impl as ActionImpl).type !== 'xstate.assign') {
          throw new Error(`ResolvedActor: action "${name}" cannot be the built-in ${String((impl as ActionImpl).type)}`);
        }
      }
    }
    let resolved = RESOLVED.get(machine);
    if (!resolved) RESOLVED.set(machine, (resolved = new ResolvedMachine(machine)));
    this.resolved = resolved;
    const [initial, executable] = initialTransition(resolved.probe, input) as unknown as [
      { value: unknown; context: C; status: string; tags: Set<string>; error?: unknown },
      ExecutableAction[],
    ];
    let tags = new Set(initial.tags);
    this.record = resolved.recordOf(initial.value);
    const event = { type: 'xstate.init', input } as EventObject;
    this.initEvent = event;
    let context = initial.context;
    // XState's own failure as the actor is made (its context factory threw): an actor in error.
    let failed = initial.status === 'error';
    let error: unknown = failed ? initial.error : undefined;
    if (!failed) {
      try {
        for (const action of this.ownVersions(resolved.implsOf(executable))) {
          if (action.assignment !== null) context = assigned(action.assignment, context, event, action.params, this);
          else {
            const args = { context, event, self: this };
            this.deferred!.push(() => action.impl(args, action.params));
          }
        }
      } catch (e) {
        // As XState's getInitialSnapshot: the actor is left as it was before the initial state
        // was entered — only the root's tags (its value still names the initial state), the
        // context as its factory made it (the probe's, whose assigns did nothing).
        failed = true;
        error = e;
        context = initial.context;
        tags = new Set(machine.root.tags);
      }
    }
    const status = failed ? 'error' : initial.status === 'done' ? 'done' : 'active';
    this.snapshot = { status, value: this.record.value, context, error, hasTag: (t) => tags.has(t) };
  }

  /** Runs the initial state's entry actions that are not assigns (once). */
  start(): this {
    const deferred = this.deferred;
    this.deferred = null;
    // As XState: an actor that failed as it was made tells no snapshot.
    if (deferred === null || this.snapshot.status === 'error') return this;
    const started = this.snapshot;
    try {
      for (const run of deferred) run();
    } catch (error) {
      this.snapshot = { ...this.snapshot, status: 'error', error };
    }
    // As XState: the snapshot told is the one the actor started in, even when an entry action then threw.
    this.watch?.({ type: '@xstate.snapshot', event: this.initEvent, snapshot: started });
    return this;
  }

  getSnapshot(): ResolvedSnapshot<C> {
    return this.snapshot;
  }

  /** The machine's own persisted form of the current state (checkpoints), as the live actor gives it. */
  getPersistedSnapshot(): unknown {
    const { value, context, status } = this.snapshot;
    return this.machine.getPersistedSnapshot(this.machine.resolveState({ value, context, status } as never));
  }

  send(event: EventObject): void {
    if (this.snapshot.status !== 'active') return;
    // As XState: an event whose step threw tells no snapshot (the actor's error is the news).
    if (this.take(event)) this.watch?.({ type: '@xstate.snapshot', event, snapshot: this.snapshot });
  }

  /** One event's step (none: ignored), leaving the snapshot after it; false when the step threw. */
  private take(event: EventObject): boolean {
    const current = this.snapshot;
    let step: Step | undefined;
    try {
      step = this.choose(current, event);
    } catch (error) {
      this.snapshot = { ...current, status: 'error', error };
      return false;
    }
    if (step === undefined) {
      // Ignored: the same snapshot, as the actor keeps it; XState still tells a microstep, of no transition.
      this.watch?.({ type: '@xstate.microstep', event, snapshot: current, _transitions: NO_TRANSITIONS });
      return true;
    }
    let context = current.context;
    this.assigned = false;
    try {
      const actions = this.own === null ? step.actions : (this.ownSteps[step.id] ??= this.ownVersions(step.actions));
      for (let i = 0; i < actions.length; i++) context = this.run(actions[i]!, context, event);
    } catch (error) {
      // As XState: the step did not happen, the context is the one before the event.
      this.snapshot = { ...current, status: 'error', error };
      return false;
    }
    // As XState's microstep: the same state nodes and no assign keep the very same snapshot.
    if (step.record !== this.record || this.assigned || step.status !== current.status) {
      this.record = step.record;
      this.snapshot = { status: step.status, value: step.record.value, context, error: undefined, hasTag: step.hasTag };
    }
    this.watch?.({ type: '@xstate.microstep', event, snapshot: this.snapshot, _transitions: step.transitions });
    return true;
  }

  /**
   * The step the event takes, by the transition XState's `getTransitionData` would choose: the
   * candidates of the innermost active state first, then of each ancestor, each node's in the
   * order it lists them; the first whose guard passes (or that has none) wins. The candidate
   * lists are read once per (state, event type) from the state nodes; the guards run every time,
   * on this context, with XState's arguments. Where XState would do more than call a plain
   * guard (a built-in guard such as `and`; a guard the machine names but gives no function for,
   * where XState raises its own error; a wildcard event descriptor), the list is not made and
   * XState itself chooses.
   */
  private choose(current: ResolvedSnapshot<C>, event: EventObject): Step | undefined {
    const record = this.record;
    let candidates = record.candidates.get(event.type);
    if (candidates === undefined) record.candidates.set(event.type, (candidates = this.resolved.candidatesOf(record.value, event.type)));
    if (candidates === null) {
      const taken = (this.machine.getTransitionData({ machine: this.machine, value: current.value, context: current.context } as never, event) as object[])[0];
      if (taken === undefined) return undefined;
      let step = record.stepsByTransition.get(taken);
      if (!step) record.stepsByTransition.set(taken, (step = this.resolved.resolveStep(current.value, current.context, taken, event)));
      return step;
    }
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      if (c.guard !== null) {
        let passed: unknown;
        try {
          passed = c.guard({ context: current.context, event }, c.params);
        } catch (err) {
          // XState's own wording (StateNode.next), so an error reads the same on either actor.
          throw new Error(`Unable to evaluate guard ${c.guardType ? `'${c.guardType}' ` : ''}in transition for event '${event.type}' in state node '${c.nodeId}':\n${(err as Error).message}`);
        }
        if (!passed) continue;
      }
      return (c.step ??= this.resolved.resolveStep(current.value, current.context, c.transition, event));
    }
    return undefined;
  }

  /** A step's actions with this actor's own implementations in place of the machine's. */
  private ownVersions(actions: ResolvedAction[]): ResolvedAction[] {
    const own = this.own;
    if (own === null) return actions;
    return actions.map((action) => {
      const impl = own[action.type] as ActionImpl | undefined;
      if (impl === undefined) return action;
      return { type: action.type, impl, params: action.params, assignment: impl.type === 'xstate.assign' ? impl.assignment : null };
    });
  }

  /** Did an assign run in the current step (XState then makes a new snapshot, even for an empty update)? */
  private assigned = false;

  /** One action as the actor runs it: an assign makes the next context, anything else is called. */
  private run(action: ResolvedAction, context: C, event: EventObject): C {
    if (action.assignment !== null) {
      this.assigned = true;
      return assigned(action.assignment, context, event, action.params, this);
    }
    action.impl({ context, event, self: this }, action.params);
    return context;
  }
}

/** XState's `resolveAssign`: the update merged into a fresh copy of the context. */
function assigned<C extends object>(assignment: unknown, context: C, event: EventObject, params: unknown, self: unknown): C {
  const args = { context, event, self };
  let update: Record<string, unknown> = {};
  if (typeof assignment === 'function') update = assignment(args, params) as Record<string, unknown>;
  else {
    for (const key of Object.keys(assignment as object)) {
      const prop = (assignment as Record<string, unknown>)[key];
      update[key] = typeof prop === 'function' ? (prop as (a: unknown, p: unknown) => unknown)(args, params) : prop;
    }
  }
  // XState copies the context even for an empty update; only the copy's identity would differ
  // (the snapshot is still new: see `assigned` in send), and most hooks return nothing.
  for (const _ in update) return Object.assign({}, context, update);
  return context;
}
