/**
 * The resolved actor (src/loop/resolvedActor.ts) must be the live XState actor, only cheaper:
 * the reference here is XState's own `createActor`, run side by side on the same machine.
 *
 * - Event by event, on the real machine whose hooks return random controls: after every NEXT,
 *   STOP or FAIL both are in the same state with the same context, status and tags, give the
 *   same persisted snapshot (what a checkpoint saves), and have run the same work in the same order.
 * - Through the real driver, on the property tests' random scenarios (hooks and work throwing,
 *   controls of every kind, resumes, stops): both give the very same hook trace, guard reads,
 *   quiet points and outcome.
 * - Machines it cannot run exactly are recognised from their definition, and runLoop drives them live.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { and, assign, createActor, enqueueActions, not, raise, setup, type AnyStateMachine } from 'xstate';
import { CONTROL_NAMES } from '../machines/controls.js';
import { QUIET, TAPE_CLOSES, TAPE_OPENS, trainLoopMachine, trainLoopSetup, type LoopContext, type LoopInput } from '../machines/trainLoop.js';
import { noControls } from '../machines/controls.js';
import { Callback } from '../src/loop/callback.js';
import { newTrainContext } from '../src/loop/context.js';
import { HookTable } from '../src/loop/hookTable.js';
import { runLoop } from '../src/loop/runLoop.js';
import { NoWorkEngine } from '../bench/machineAlone.js';
import { WORK_NAMES } from '../machines/work.js';
import { ResolvedActor, unsupportedByResolvedActor } from '../src/loop/resolvedActor.js';
import { stepEventsOf, type StepInspectionEvent } from '../src/loop/stepInspection.js';
import { stepView } from './support/stepView.js';
import type { LoopSnapshot } from '../src/loop/observer.js';
import { Rng } from '../src/rng.js';
import { checkScenario, fcParameters, resumedScenarioArb, scenarioArb } from './support/orderProperties.js';
import { mutant, replaceGuard } from './support/machineMutants.js';

/** The real machine, its hooks returning pseudo-random controls from `seed`, its work logged. */
function scriptedMachine(seed: number, log: string[]) {
  return trainLoopMachine.provide({ actions: scriptedActions(seed, log) } as Parameters<typeof trainLoopMachine.provide>[0]);
}

/** The actions of `scriptedMachine`. */
function scriptedActions(seed: number, log: string[]) {
  // The project's seeded generator: both machines built from one seed see the same "random" hooks.
  const rng = new Rng(seed);
  const random = () => rng.nextFloat();
  const work = Object.fromEntries(WORK_NAMES.map((name) => [name, ({ context }: { context: LoopContext }) => log.push(`${name}@${context.epoch}.${context.batchIndex}`)]));
  return {
    ...work,
    runHooks: assign(({ context }: { context: LoopContext }, params: { stage: string }) => {
      log.push(`hooks ${params.stage}`);
      const r = random();
      if (params.stage === 'trainBegin' && r < 0.2) return { jumpTo: Math.floor(random() * 4) };
      if (r < 0.25) {
        const control = CONTROL_NAMES[Math.floor(random() * CONTROL_NAMES.length)]!;
        return { controls: { ...context.controls, [control]: true } };
      }
      return {};
    }),
  };
}

type StateOf = { value: unknown; status: string; context: unknown };

/** The live and the resolved actor are in the same state (value, status, context); their snapshots, for more checks. */
function expectSameState<L extends StateOf, R extends StateOf>(live: { getSnapshot(): L }, resolved: { getSnapshot(): R }, at: string) {
  const a = live.getSnapshot();
  const b = resolved.getSnapshot();
  expect(b.value, at).toEqual(a.value);
  expect(b.status, at).toBe(a.status);
  expect(b.context, at).toEqual(a.context);
  return [a, b] as const;
}

const inputArb: fc.Arbitrary<LoopInput> = fc
  .record({
    nEpochs: fc.integer({ min: 0, max: 3 }),
    nTrainBatches: fc.integer({ min: 0, max: 4 }),
    nValidBatches: fc.integer({ min: 0, max: 2 }),
    validate: fc.boolean(),
    resumeAt: fc.option(fc.record({ epoch: fc.nat(3), batch: fc.nat(4), stopEpoch: fc.boolean(), skipValidate: fc.boolean() })),
  })
  .map(({ resumeAt, ...input }) => {
    if (!resumeAt || input.nEpochs === 0) return input;
    const epoch = resumeAt.epoch % input.nEpochs;
    const batchIndex = resumeAt.batch % (input.nTrainBatches + 1);
    const mid = batchIndex > 0;
    return {
      ...input,
      resume: { epoch, batchIndex, iteration: epoch * input.nTrainBatches + batchIndex, stopEpoch: mid && resumeAt.stopEpoch, skipValidate: mid && resumeAt.skipValidate },
    };
  });

describe('the resolved actor is the live actor, event by event', () => {
  it('the real machine can be resolved; machines it cannot run exactly are recognised from their definition', () => {
    expect(unsupportedByResolvedActor(trainLoopMachine)).toBeNull();
    const inlineGuard = mutant((c) => replaceGuard(c, 'validationDue', () => true));
    expect(unsupportedByResolvedActor(inlineGuard)).toMatch(/inline guard/);
    const eventless = setup({}).createMachine({ initial: 'a', states: { a: { always: 'b' }, b: {} } });
    expect(unsupportedByResolvedActor(eventless)).toMatch(/always/);
    const parallel = setup({}).createMachine({ type: 'parallel', states: { a: {}, b: {} } });
    expect(unsupportedByResolvedActor(parallel)).toMatch(/parallel/);
    const builtin = setup({}).createMachine({ initial: 'a', states: { a: { on: { GO: { actions: assign({}) } } } } });
    expect(unsupportedByResolvedActor(builtin)).toMatch(/inline or built-in/);
    // Named built-ins (raise, enqueueActions) would resolve to nothing in a replay.
    const namedRaise = setup({ actions: { go: raise({ type: 'NEXT' }) } }).createMachine({ initial: 'a', states: { a: { on: { GO: { actions: 'go' } } } } });
    expect(unsupportedByResolvedActor(namedRaise)).toMatch(/built-in xstate\.raise/);
    const namedEnqueue = setup({ actions: { twice: enqueueActions(() => {}) } }).createMachine({ initial: 'a', states: { a: { entry: 'twice' } } });
    expect(unsupportedByResolvedActor(namedEnqueue)).toMatch(/built-in/);
    // A nested final state raises done inside the step: its onDone guards would see a stale context.
    const nestedDone = setup({}).createMachine({
      initial: 'outer',
      states: { outer: { initial: 'x', states: { x: { on: { GO: 'end' } }, end: { type: 'final' } }, onDone: 'after' }, after: {} },
    });
    expect(unsupportedByResolvedActor(nestedDone)).toMatch(/onDone|nested final/);
  });

  /**
   * Live actors of `scriptedMachine(seed)` and resolved ones, a pair per seed, through the same
   * random events, compared after each. `ownActions`: the resolved actors all run one machine
   * (as runLoop's fits share theirs) whose actions log elsewhere, each with its seed's scripted
   * actions as actions of its own — as XState's `provide` gives them, the reference here — and
   * the shared machine's own are never called.
   */
  const compareEventByEvent = (input: LoopInput, hookSeeds: number[], eventSeed: number, ownActions: boolean) => {
    const machinesOwnLog: string[] = [];
    const shared = scriptedMachine(0, machinesOwnLog);
    const pairs = hookSeeds.map((seed) => {
      const liveLog: string[] = [];
      const resolvedLog: string[] = [];
      // The steps each tells: the live actor's from XState's inspection stream (the reference).
      const liveSteps: StepInspectionEvent[] = [];
      const resolvedSteps: StepInspectionEvent[] = [];
      const live = createActor(scriptedMachine(seed, liveLog), { input, inspect: stepEventsOf((e) => liveSteps.push(e)) });
      live.start();
      const watch = (e: StepInspectionEvent) => void resolvedSteps.push(e);
      const resolved = ownActions
        ? new ResolvedActor<LoopContext>(shared, input, scriptedActions(seed, resolvedLog), watch).start()
        : new ResolvedActor<LoopContext>(scriptedMachine(seed, resolvedLog), input, null, watch).start();
      return { live, resolved, liveLog, resolvedLog, liveSteps, resolvedSteps };
    });
    const eventRng = new Rng(eventSeed);
    const events = () => eventRng.nextFloat();
    const compare = (after: string) => {
      for (const [k, { live, resolved, liveLog, resolvedLog, liveSteps, resolvedSteps }] of pairs.entries()) {
        const at = `actor ${k}, ${after}`;
        const [a, b] = expectSameState(live, resolved, at);
        for (const tag of [QUIET, TAPE_OPENS, TAPE_CLOSES]) expect(b.hasTag(tag), `${at}: tag ${tag}`).toBe(a.hasTag(tag));
        expect(resolved.getPersistedSnapshot(), at).toEqual(live.getPersistedSnapshot());
        expect(resolvedLog, at).toEqual(liveLog);
        expect(resolvedSteps.map(stepView), `${at}: steps told`).toEqual(liveSteps.map(stepView));
      }
    };
    compare('start');
    for (let i = 0; i < 400 && pairs.some((p) => p.live.getSnapshot().status === 'active'); i++) {
      const r = events();
      const event =
        r < 0.03
          ? ({ type: 'STOP' } as const)
          : r < 0.045
            ? ({ type: 'FAIL', failure: { stage: 'batchEnd', callback: null, message: `failure ${i}` } } as const)
            : ({ type: 'NEXT' } as const);
      for (const { live, resolved } of pairs) {
        if (live.getSnapshot().status !== 'active') continue; // XState warns of events sent to a stopped actor
        const liveBefore = live.getSnapshot();
        const resolvedBefore = resolved.getSnapshot();
        live.send(event);
        resolved.send(event);
        // An event the machine ignores leaves the very same snapshot (the driver relies on it).
        if (live.getSnapshot() === liveBefore) expect(resolved.getSnapshot(), `event ${i} ignored`).toBe(resolvedBefore);
      }
      compare(`event ${i} (${event.type})`);
    }
    for (const { live } of pairs) expect(live.getSnapshot().status).toBe('done');
    expect(machinesOwnLog).toEqual([]);
  };

  it('same state, context, status, tags, persisted snapshot, work and steps told (XState inspection) after every event (300 random runs)', async () => {
    await fc.assert(
      fc.property(inputArb, fc.integer(), fc.integer(), (input, hookSeed, eventSeed) => compareEventByEvent(input, [hookSeed], eventSeed, false)),
      fcParameters<[LoopInput, number, number]>(300),
    );
  });

  it('with actions of its own, the same as the live actor of the machine provided with them: three actors interleaved on one machine (100 random runs)', async () => {
    await fc.assert(
      fc.property(inputArb, fc.integer(), fc.integer(), (input, hookSeed, eventSeed) => compareEventByEvent(input, [hookSeed, hookSeed + 1, hookSeed + 2], eventSeed, true)),
      fcParameters<[LoopInput, number, number]>(100),
    );
    // The initial state's entry actions of its own: assigns as it is made, the others at start(), as XState's.
    const seen: string[] = [];
    const entering = setup({
      types: { context: {} as { n: number } },
      actions: { look: () => seen.push('machine look'), inc: assign({ n: () => -1 }) },
    });
    const lookThenInc = entering.createMachine({ context: { n: 0 }, initial: 'a', states: { a: { entry: ['look', 'inc'], on: { GO: 'b' } }, b: { entry: 'look' } } });
    const own = {
      look: ({ context }: { context: { n: number } }) => seen.push(`own look n=${context.n}`),
      inc: assign(({ context }: { context: { n: number } }) => ({ n: context.n + 1 })),
    };
    const runs = [createActor(lookThenInc.provide({ actions: own } as Parameters<typeof lookThenInc.provide>[0])), new ResolvedActor<{ n: number }>(lookThenInc, undefined, own)].map((actor) => {
      seen.length = 0;
      const made = actor.getSnapshot().context.n;
      actor.start();
      actor.send({ type: 'GO' });
      return { made, after: actor.getSnapshot().context.n, seen: [...seen] };
    });
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[0]).toEqual({ made: 1, after: 1, seen: ['own look n=0', 'own look n=1'] });
    // An action the machine does not implement (a prototype's name included), or a value no action can be, is refused as the actor is made.
    const input: LoopInput = { nEpochs: 1, nTrainBatches: 1, nValidBatches: 0, validate: false };
    expect(() => new ResolvedActor(trainLoopMachine, input, { noSuchAction: () => {} })).toThrow(/implements no action "noSuchAction"/);
    expect(() => new ResolvedActor(trainLoopMachine, input, { toString: () => 'x' })).toThrow(/implements no action "toString"/);
    expect(() => new ResolvedActor(trainLoopMachine, input, { forward: 42 })).toThrow(/action "forward" must be a function/);
    expect(() => new ResolvedActor(trainLoopMachine, input, { forward: raise({ type: 'NEXT' }) })).toThrow(/built-in xstate\.raise/);
  });

  it('through the driver: the same hook trace, guard reads, quiet points, steps told and outcome as the live actor (200 + 200 scenarios)', async () => {
    for (const arb of [scenarioArb, resumedScenarioArb]) {
      await fc.assert(
        fc.asyncProperty(arb, async (s) => {
          const resolvedSteps: StepInspectionEvent[] = [];
          const liveSteps: StepInspectionEvent[] = [];
          const resolved = await checkScenario(s, { watchSteps: (e) => resolvedSteps.push(e) });
          const live = await checkScenario(s, { live: true, watchSteps: (e) => liveSteps.push(e) });
          // The steps runLoop's watcher is told: the resolved actor's own, and those of XState's inspection.
          expect(resolvedSteps.map(stepView)).toEqual(liveSteps.map(stepView));
          expect(resolvedSteps.length).toBeGreaterThan(0);
          expect(resolved.status).toBe(live.status);
          expect((resolved.error as Error | null)?.message ?? null).toBe((live.error as Error | null)?.message ?? null);
          expect(resolved.trace).toEqual(live.trace);
          expect(resolved.guardCalls).toEqual(live.guardCalls);
          expect(resolved.quietCalls).toEqual(live.quietCalls);
          expect(resolved.violations).toEqual(live.violations);
        }),
        fcParameters(200),
      );
    }
  });

  it('chooses transitions as XState does on machines off the loop: guards that throw, built-in guards, ancestors, wildcards, missing guards', () => {
    /** Both actors through the same events: the same value, status, context and error message after each. */
    const sameRun = (machine: AnyStateMachine, events: string[]) => {
      const liveSteps: StepInspectionEvent[] = [];
      const resolvedSteps: StepInspectionEvent[] = [];
      const live = createActor(machine, { inspect: stepEventsOf((e) => liveSteps.push(e)) });
      live.subscribe({ error: () => {} });
      live.start();
      const resolved = new ResolvedActor<Record<string, unknown>>(machine, undefined, null, (e) => resolvedSteps.push(e)).start();
      const compare = (at: string) => {
        const [a, b] = expectSameState(live, resolved, at);
        expect((b.error as Error | undefined)?.message, at).toBe((a.error as Error | undefined)?.message);
        expect(resolvedSteps.map(stepView), `${at}: steps told`).toEqual(liveSteps.map(stepView));
      };
      compare('started');
      for (const [i, type] of events.entries()) {
        if (live.getSnapshot().status !== 'active') break;
        const [liveBefore, resolvedBefore] = [live.getSnapshot(), resolved.getSnapshot()];
        live.send({ type });
        resolved.send({ type });
        compare(`after event ${i} (${type})`);
        // An ignored event leaves the very same snapshot on both.
        expect(resolved.getSnapshot() === resolvedBefore, `event ${i} (${type}) ignored?`).toBe(live.getSnapshot() === liveBefore);
      }
      return resolved.getSnapshot();
    };
    const counting = setup({
      types: { context: {} as { n: number } },
      actions: { inc: assign(({ context }) => ({ n: context.n + 1 })) },
      guards: {
        small: ({ context }) => context.n < 2,
        atLeast: ({ context }, params: { min: number }) => context.n >= params.min,
        boom: ({ context }) => {
          if (context.n >= 3) throw new Error('guard exploded');
          return false;
        },
        both: and(['small', not('boom')]),
      },
    });
    // Inner candidates first, then the parent's; params reach the guard; a throwing guard ends the actor in error.
    const nested = counting.createMachine({
      context: { n: 0 },
      initial: 'outer',
      on: { GO: { target: '.done', guard: { type: 'atLeast', params: { min: 5 } } } },
      states: {
        outer: {
          initial: 'inner',
          on: { GO: [{ guard: 'boom', target: 'done' }, { target: '.other', actions: 'inc' }] },
          states: { inner: { on: { GO: { guard: 'small', actions: 'inc' } } }, other: {} },
        },
        done: {},
      },
    });
    // n: 0 → 1 → 2 in inner; then the parent's move to other (3); there the parent's guard throws.
    const ended = sameRun(nested, ['GO', 'GO', 'GO', 'GO', 'GO']);
    expect(ended.status).toBe('error');
    expect(String((ended.error as Error).message)).toMatch(/Unable to evaluate guard 'boom' in transition for event 'GO'.*\n.*guard exploded/s);
    // A built-in guard (and/not) and a wildcard descriptor are left to XState's own choice.
    const builtin = counting.createMachine({
      context: { n: 0 },
      initial: 'a',
      states: { a: { on: { GO: [{ guard: 'both', actions: 'inc' }, { target: 'b' }], '*': { actions: 'inc' } } }, b: {} },
    });
    expect(sameRun(builtin, ['GO', 'OTHER', 'GO', 'GO']).value).toBe('b');
    // A guard named but not implemented: XState's error, on both.
    const missing = setup({}).createMachine({ initial: 'a', states: { a: { on: { GO: { guard: 'nowhere' as never, target: 'b' } } }, b: {} } });
    expect(sameRun(missing, ['GO']).status).toBe('error');
    // Failing as it is made (the context factory throws) and starting in a final state: alike, steps told included.
    const noContext = setup({}).createMachine({
      context: () => {
        throw new Error('no context');
      },
      initial: 'a',
      states: { a: { on: { GO: 'b' } }, b: {} },
    });
    expect(sameRun(noContext, ['GO']).status).toBe('error');
    const endsAtOnce = setup({}).createMachine({ initial: 'end', states: { end: { type: 'final' } } });
    expect(sameRun(endsAtOnce, ['GO']).status).toBe('done');
    // The initial state's entry actions as XState runs them: assigns as the actor is made,
    // the others at start(), each seeing the context of its place in the list.
    const seen: string[] = [];
    const entering = setup({
      types: { context: {} as { n: number } },
      actions: {
        look: ({ context }) => seen.push(`look n=${context.n}`),
        inc: assign(({ context }) => {
          seen.push('inc');
          return { n: context.n + 1 };
        }),
        explode: () => {
          throw new Error('entry exploded');
        },
      },
    });
    const lookThenInc = entering.createMachine({ context: { n: 0 }, initial: 'a', states: { a: { entry: ['look', 'inc'], on: { GO: 'b' } }, b: {} } });
    const orders = [createActor(lookThenInc), new ResolvedActor<{ n: number }>(lookThenInc, undefined)].map((actor) => {
      seen.length = 0;
      const made = actor.getSnapshot().context.n;
      actor.start();
      return { made, started: actor.getSnapshot().context.n, seen: [...seen] };
    });
    expect(orders[1]).toEqual(orders[0]);
    expect(orders[0]).toEqual({ made: 1, started: 1, seen: ['look n=0'] });
    // An entry action that throws, and one that throws in a transition (the context stays the one before it).
    const failing = entering.createMachine({ context: { n: 0 }, initial: 'a', states: { a: { entry: 'explode' } } });
    const throwsOnGo = entering.createMachine({ context: { n: 0 }, initial: 'a', states: { a: { on: { GO: { target: 'b', actions: ['inc', 'explode'] } } }, b: {} } });
    expect(sameRun(failing, []).status).toBe('error');
    expect(sameRun(throwsOnGo, ['GO']).context).toEqual({ n: 0 });
    // An assign of the initial state's entry that throws after one that did not, and a thrown
    // undefined: XState leaves the actor before its initial state, in error; so does the resolved one.
    const assigning = setup({
      types: { context: {} as { n: number } },
      actions: {
        inc: assign(({ context }) => ({ n: context.n + 1 })),
        boom: assign(() => {
          throw new Error('assign exploded');
        }),
      },
    });
    const assignExplodes = assigning.createMachine({ context: { n: 0 }, initial: 'a', states: { a: { entry: ['inc', 'boom'], on: { GO: 'b' } }, b: {} } });
    expect(sameRun(assignExplodes, ['GO'])).toMatchObject({ status: 'error', context: { n: 0 } });
    // The same in a nested initial state with tags, the context from a factory: XState's value, tags and context.
    const nestedExplodes = assigning.createMachine({
      context: () => ({ n: 5 }),
      tags: ['rootTag'],
      initial: 'outer',
      states: { outer: { tags: ['outerTag'], initial: 'inner', states: { inner: { tags: ['innerTag'], entry: ['inc', 'boom'] } } } },
    });
    const failedLive = createActor(nestedExplodes);
    failedLive.subscribe({ error: () => {} });
    failedLive.start();
    const failedResolved = new ResolvedActor<{ n: number }>(nestedExplodes, undefined).start();
    const tagsOf = (s: { hasTag(t: string): boolean }) => ['rootTag', 'outerTag', 'innerTag'].filter((t) => s.hasTag(t));
    const [liveFailed, resolvedFailed] = [failedLive.getSnapshot(), failedResolved.getSnapshot()];
    expect({ value: resolvedFailed.value, status: resolvedFailed.status, context: resolvedFailed.context, tags: tagsOf(resolvedFailed) }).toEqual({
      value: liveFailed.value,
      status: liveFailed.status,
      context: liveFailed.context,
      tags: tagsOf(liveFailed),
    });
    expect(tagsOf(liveFailed)).toEqual(['rootTag']);
    const throwsUndefined = setup({}).createMachine({
      context: () => {
        throw undefined;
      },
      initial: 'a',
      states: { a: {} },
    });
    expect(sameRun(throwsUndefined, []).status).toBe('error');
    // A final initial state whose entry runs at start().
    seen.length = 0;
    const endsLooking = entering.createMachine({ context: { n: 0 }, initial: 'end', states: { end: { type: 'final', entry: 'look' } } });
    expect(sameRun(endsLooking, []).status).toBe('done');
    expect(seen).toEqual(['look n=0', 'look n=0']);
    // An inline guard that throws: XState's message has no name in it.
    const inline = setup({}).createMachine({
      initial: 'a',
      states: {
        a: {
          on: {
            GO: {
              guard: () => {
                throw new Error('inline exploded');
              },
              target: 'b',
            },
          },
        },
        b: {},
      },
    });
    expect(String((sameRun(inline, ['GO']).error as Error).message)).toMatch(/^Unable to evaluate guard in transition for event 'GO'/);
    // An event no state takes is ignored (the very same snapshot).
    const resolved = new ResolvedActor<Record<string, unknown>>(nested, undefined).start();
    const before = resolved.getSnapshot();
    resolved.send({ type: 'UNKNOWN' });
    expect(resolved.getSnapshot()).toBe(before);
  });

  it('a run watched only through its snapshots (observer) and steps (watchSteps) is driven by the resolved actor; with XState inspection by the live one, whose steps the watcher then gets once each', async () => {
    const run = async (inspect: boolean) => {
      const snapshots: LoopSnapshot[] = [];
      const steps: StepInspectionEvent[] = [];
      let inspected = 0;
      const result = await runLoop({
        engine: new NoWorkEngine(),
        table: new HookTable([]),
        ctx: newTrainContext({} as never, 2, 3),
        input: { nEpochs: 2, nTrainBatches: 3, nValidBatches: 1, validate: true },
        observer: { afterEvent: (snapshot) => void snapshots.push(snapshot) },
        watchSteps: (e) => void steps.push(e),
        ...(inspect ? { inspect: () => void (inspected += 1) } : {}),
      });
      expect(result.status).toBe('completed');
      return { snapshots, steps, inspected };
    };
    const watched = await run(false);
    const inspected = await run(true);
    // XState's snapshots carry its methods (matches, can); the resolved actor's only what a watcher reads.
    const isXStates = (s: LoopSnapshot) => typeof (s as unknown as { matches?: unknown }).matches === 'function';
    expect(watched.snapshots.length).toBeGreaterThan(0);
    expect(watched.steps.length).toBeGreaterThan(0);
    expect(watched.snapshots.some(isXStates)).toBe(false);
    expect(inspected.snapshots.every(isXStates)).toBe(true);
    // The whole stream went to the inspector (more than the steps: actions and events too).
    expect(inspected.inspected).toBeGreaterThan(inspected.steps.length);
    expect(watched.steps.map(stepView)).toEqual(inspected.steps.map(stepView));
  });

  it('a step watcher that throws cannot fail the run: warned once, not called again, on either actor', async () => {
    for (const liveActor of [false, true]) {
      let calls = 0;
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(w.message);
      process.on('warning', onWarning);
      try {
        const result = await runLoop({
          engine: new NoWorkEngine(),
          table: new HookTable([]),
          ctx: newTrainContext({} as never, 1, 2),
          input: { nEpochs: 1, nTrainBatches: 2, nValidBatches: 0, validate: false },
          watchSteps: () => {
            calls += 1;
            if (calls === 3) throw new Error('watcher broke');
          },
          liveActor,
        });
        // Warnings are emitted on the next tick.
        await new Promise((r) => setImmediate(r));
        expect({ liveActor, status: result.status, calls, warnings }).toEqual({
          liveActor,
          status: 'completed',
          calls: 3,
          warnings: [expect.stringMatching(/step watcher \(watchSteps\) threw \(watcher broke\)/)],
        });
      } finally {
        process.off('warning', onWarning);
      }
    }
  });

  it('through the driver, a custom machine whose first state runs hooks (as the actor is made) runs alike on both', async () => {
    const machine = trainLoopSetup.createMachine({
      id: 'startsInTrainBegin',
      context: ({ input }) => ({ ...input, epoch: 0, iteration: 0, batchIndex: 0, train: true, controls: noControls(), jumpTo: null, resume: null, failure: null }),
      initial: 'trainBegin',
      on: { FAIL: { target: '.trainEnd', actions: ['recordFailure'] } },
      states: {
        trainBegin: { meta: { stage: 'trainBegin' }, entry: [{ type: 'runHooks', params: { stage: 'trainBegin' } }], on: { NEXT: 'trainEnd' } },
        trainEnd: {
          meta: { stage: 'trainEnd' },
          entry: [{ type: 'runHooks', params: { stage: 'trainEnd' } }, 'releaseRun'],
          on: { NEXT: [{ guard: 'failed', target: 'failed' }, { target: 'completed' }] },
        },
        completed: { type: 'final' },
        failed: { type: 'final' },
      },
    });
    for (const liveActor of [false, true]) {
      const seen: string[] = [];
      class Records extends Callback {
        onTrainBegin() {
          seen.push('trainBegin');
        }
        onTrainEnd() {
          seen.push('trainEnd');
        }
      }
      const result = await runLoop({
        engine: new NoWorkEngine(),
        table: new HookTable([new Records()]),
        ctx: newTrainContext({} as never, 1, 0),
        input: { nEpochs: 1, nTrainBatches: 0, nValidBatches: 0, validate: false },
        machine: machine as unknown as typeof trainLoopMachine,
        liveActor,
      });
      expect({ liveActor, status: result.status, seen }).toEqual({ liveActor, status: 'completed', seen: ['trainBegin', 'trainEnd'] });
    }
  });
});
