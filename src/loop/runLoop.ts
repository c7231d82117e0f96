import {
  assign,
  createActor,
  type Actor,
  type InspectionEvent,
  type Observer,
  type Snapshot,
} from 'xstate';
import type { ControlFlags, ControlName } from '../../machines/controls.js';
import { describeMachine, workKey, workStages, type MachineDescription } from '../../machines/describe.js';
import { STAGES, type Stage } from '../../machines/stages.js';
import { resumePointOf, type PersistedLoopSnapshot } from '../../machines/resume.js';
import {
  NEXT_EVENT,
  QUIET,
  TAPE_CLOSES,
  TAPE_OPENS,
  trainLoopMachine,
  type FinalStatus,
  type HookParams,
  type LoopContext,
  type LoopEvent,
  type LoopInput,
} from '../../machines/trainLoop.js';
import { workPhase } from '../../machines/work.js';
import type { Callback } from './callback.js';
import { ConfigError, ControlError, StageError, TrainchartError } from '../errors.js';
import { setLossSource, type LossSource, type TrainContext } from './context.js';
import type { LoopEngine } from './engine.js';
import type { QuietPoint } from './quietPoint.js';
import { HookTable, mergeHookResult, type BoundGuard, type BoundHook, type Requested } from './hookTable.js';
import { combineInspect, type LoopObserver, type LoopSnapshot } from './observer.js';
import { ResolvedActor, unsupportedByResolvedActor } from './resolvedActor.js';
import { SmoothLoss, type SmoothLossState } from './smoothLoss.js';
import { LossLog, UnreadLosses } from './lossLog.js';
import { stepEventsOf, type StepWatcher } from './stepInspection.js';

export type LoopActor = Actor<typeof trainLoopMachine>;

/** What the driver needs of an actor: the live XState actor and the resolved one both give it. */
interface DrivenActor {
  send(event: LoopEvent): void;
  getSnapshot(): {
    status: string;
    value: unknown;
    context: LoopContext;
    error?: unknown;
    hasTag(tag: string): boolean;
  };
  getPersistedSnapshot(): unknown;
}

export interface RunLoopOptions {
  engine: LoopEngine;
  table: HookTable;
  ctx: TrainContext;
  input: LoopInput;
  /** Hand control back to the event loop at least this often (ms), so a UI or server stays live. */
  yieldEveryMs?: number;
  /** XState inspection, the whole stream (an external inspector): runs the live actor. */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /**
   * The loop's steps only, in XState's inspection shape (src/loop/stepInspection.ts): what the
   * visualizer's event log reads. Either actor gives them, so this alone keeps the resolved one.
   */
  watchSteps?: StepWatcher;
  /** Continue from a persisted snapshot instead of starting at `ready`. */
  snapshot?: Snapshot<unknown>;
  /** The smoothed loss to continue (resume): a state, or a live SmoothLoss the caller keeps reading. */
  smoothLoss?: SmoothLossState | SmoothLoss;
  /**
   * Callback states to restore when the run jumps to its start epoch (resume): applied with
   * `setState` after every onTrainBegin and before any jumpToEpoch, so a reset in onTrainBegin
   * cannot wipe them and jumpToEpoch sees the restored state.
   */
  callbackStates?: ReadonlyMap<Callback, Record<string, unknown>>;
  /** Called once the actor exists (checkpointing reads its persisted snapshot). */
  onActor?: (actor: LoopActor) => void;
  /** The loop machine to drive instead of `trainLoopMachine`: for tests of mutants and for custom loops. */
  machine?: typeof trainLoopMachine;
  /**
   * @internal For the mutant suite only (test/loop-mutants.test.ts): replaces a rule of the
   * driver with a broken one, to show the property tests catch it. Never set in real use.
   */
  policy?: Partial<DriverPolicy>;
  /**
   * @internal Run the machine on a live XState actor even where the resolved actor
   * (src/loop/resolvedActor.ts) could: the equivalence tests compare the two.
   */
  liveActor?: boolean;
  /**
   * Looks at the loop after every event sent has settled (the state entered has run its hooks,
   * its way out is not taken yet). Synchronous and may block: the visualizer's breakpoints wait
   * there, inside the tape too. Generic: the loop does not know who watches (src/loop/observer.ts).
   */
  observer?: LoopObserver;
  /**
   * Resume from a checkpoint (with `input.resume`, the point): `restore` puts the run's state
   * back; the machine calls it in its `resume` state, after every onTrainBegin and before the
   * callbacks' states (`callbackStates`) and jumpToEpoch.
   */
  resume?: { restore: () => void };
  /**
   * Polled between stages: once it returns true the driver sends the machine STOP, which sets
   * stopTraining — the run ends after the current batch through the machine's own path.
   */
  stopRequested?: () => boolean;
  /** What `QuietPoint.capture()` returns (the Learner's snapshot of the whole run). */
  capture?: (point: QuietPoint) => unknown;
  /**
   * At the run's end, when no callback waits for them, leave the train losses nobody read on
   * the device and return them (`LoopResult.unread`) instead of reading them: the caller owns
   * them and reads them when asked (the Learner: a fit's smoothed loss, src/loop/unreadLosses.ts).
   */
  holdUnreadLosses?: boolean;
}

/**
 * The driver's own rules about a stage's controls, as two small functions so a test can break
 * one at a time (a driver mutant) without copying the driver. The defaults are the contract.
 */
export interface DriverPolicy {
  /**
   * Runs one stage's parts: its hooks (in run order), then — once they have all run — its
   * guards (§3: a guard is read as the stage is left). Each part does nothing once the stage failed.
   */
  stageOrder(runHooks: () => void, readGuards: () => void): void;
  /** The flags the machine goes on with: those in force plus what this stage's hooks and guards asked for. */
  applyControls(
    inForce: Readonly<ControlFlags>,
    asked: Readonly<Partial<Record<ControlName, true>>>,
    where: { stage: Stage; train: boolean },
  ): ControlFlags;
}

export const DRIVER_POLICY: Readonly<DriverPolicy> = Object.freeze({
  stageOrder(runHooks: () => void, readGuards: () => void) {
    runHooks();
    readGuards();
  },
  applyControls: (inForce: Readonly<ControlFlags>, asked: Readonly<Partial<Record<ControlName, true>>>) => ({ ...inForce, ...asked }),
});

export interface LoopResult {
  status: FinalStatus;
  /** What `fit` rejects with when the status is `failed`. */
  error: Error | null;
  context: LoopContext;
  /** The smoothed loss after every loss read (with `unread`: once those are settled too). */
  smoothLoss: SmoothLossState;
  /** The losses left unread on the device (option `holdUnreadLosses`), null when every one was read. */
  unread: UnreadLosses | null;
  /** Epochs of this run that reached epochEnd. */
  epochsDone: number;
  /**
   * Train batches this run went through (cancelled ones too). Unlike `context.iteration` (the
   * whole run's count, epochs started past by a jump included), it counts only batches that ran.
   */
  trainBatches: number;
  /** Host reads of the train losses by the run's own log (the loss is kept on the device until someone asks; `unread`'s read is the caller's). */
  lossReads: number;
}

/** A machine's description and where each of its actions runs, read once per machine. */
const described = new WeakMap<
  object,
  { description: MachineDescription; places: Map<string, Stage | null>; resolvable: boolean }
>();
function describeOnce(machine: typeof trainLoopMachine) {
  let d = described.get(machine);
  if (!d) {
    const description = describeMachine(machine);
    d = { description, places: workStages(description), resolvable: unsupportedByResolvedActor(machine) === null };
    described.set(machine, d);
  }
  return d;
}

/** The dotted path of the innermost active state: `{ epoch: { train: 'lossBegin' } }` → `epoch.train.lossBegin`. */
function leafPath(value: unknown): string {
  if (typeof value === 'string') return value;
  const [key, child] = Object.entries(value as Record<string, unknown>)[0] ?? ['?', ''];
  return child === '' ? key : `${key}.${leafPath(child)}`;
}

const TAPE_RULE =
  `the driver records gradients from leaving a state tagged "${TAPE_OPENS}" until it reaches one tagged "${TAPE_CLOSES}", ` +
  'so every path from the first must reach the second before any final state or another opening (runLoop option `machine`)';

function describeValue(v: unknown): string {
  if (typeof v === 'function') return 'a function';
  if (typeof (v as { then?: unknown } | null)?.then === 'function') return 'a Promise';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function hasNew(current: Readonly<Record<string, boolean>>, requested: Partial<Record<string, true>>) {
  for (const k in requested) if (!current[k]) return true;
  return false;
}

/** What a stage with nothing to ask for gives the machine (shared: the machine only reads it). */
const NO_CHANGE: Partial<LoopContext> = Object.freeze({});

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * A step watcher that cannot fail the run: its first exception is reported as a warning and the
 * watcher is not called again. (It is called inside the actor's step, perhaps inside the gradient
 * tape, where a throw would leave the step half done on one actor and end the other in error.)
 */
function neverFailing(watch: StepWatcher): StepWatcher {
  let broken = false;
  return (event) => {
    if (broken) return;
    try {
      watch(event);
    } catch (e) {
      broken = true;
      let what = 'a value that cannot be shown';
      try {
        what = e instanceof Error ? e.message : String(e);
      } catch {
        // An object without a prototype: String() throws; the warning still goes.
      }
      process.emitWarning(`trainchart: a step watcher (watchSteps) threw (${what}); it is not called again in this run`);
    }
  };
}

/** What one run does for the machine's named actions: its hooks (an assign) and its work. */
interface RunActions {
  runHooks: (context: LoopContext, params: HookParams) => Partial<LoopContext>;
  work: Record<string, (args: { context: LoopContext }) => void>;
}

/**
 * The run each live actor drives, found by the `self` XState passes every action (a resolved
 * actor is given its run's actions as its own and never calls the stand-ins).
 */
const RUNS = new WeakMap<object, RunActions>();
/**
 * The run whose actor is being made: XState applies the initial state's assigns (runHooks is
 * one) while `createActor` runs, before the actor can be registered. Saved and restored around
 * the making, so a run made from inside another's making cannot take its place.
 */
let constructing: RunActions | null = null;
function runOf(self: unknown): RunActions {
  const run = RUNS.get(self as object) ?? constructing;
  if (!run) throw new Error('internal: a loop action ran on an actor no run registered');
  return run;
}
/** Makes an actor for `run`, registered before anything it does later (start, events). */
function makeActor<A extends object>(run: RunActions, make: () => A): A {
  const outer = constructing;
  constructing = run;
  try {
    const actor = make();
    RUNS.set(actor, run);
    return actor;
  } finally {
    constructing = outer;
  }
}

/**
 * Each loop machine provided once, with stand-ins for the actions a run implements: one
 * machine object for every fit, so XState builds its state nodes once and the resolved
 * actor's steps (src/loop/resolvedActor.ts) are resolved once per process, not once per fit.
 */
const PROVIDED = new WeakMap<typeof trainLoopMachine, { names: string; machine: typeof trainLoopMachine }>();
function providedOnce(base: typeof trainLoopMachine, workNames: readonly string[]): typeof trainLoopMachine {
  const names = workNames.join();
  const known = PROVIDED.get(base);
  if (known && known.names === names) return known.machine;
  const actions: Record<string, unknown> = {
    runHooks: assign((args: { context: LoopContext; self: unknown }, params: HookParams) => runOf(args.self).runHooks(args.context, params)),
  };
  for (const name of workNames) {
    actions[name] = (args: { context: LoopContext; self: unknown }) => runOf(args.self).work[name]!(args);
  }
  const machine = base.provide({ actions } as Parameters<typeof base.provide>[0]);
  PROVIDED.set(base, { names, machine });
  return machine;
}

/**
 * Runs one fit: creates the actor of the loop machine with the learner's work and hooks
 * provided, then sends NEXT until it is done. This driver never chooses a stage; it only
 * (a) pumps NEXT, (b) records gradients between the states the machine tags as opening and
 * closing the tape, (c) turns an exception into a FAIL event, and (d) yields to the event loop.
 */
export async function runLoop(opts: RunLoopOptions): Promise<LoopResult> {
  const { engine, table, ctx } = opts;
  const policy: DriverPolicy = { ...DRIVER_POLICY, ...opts.policy };
  /** The driver's own rules (no mutant policy): stages without hooks or guards may take the short way. */
  const defaultOrder = opts.policy === undefined;
  const baseMachine = opts.machine ?? trainLoopMachine;
  const { description, places, resolvable } = describeOnce(baseMachine);
  const tagged = (tag: string) => description.states.filter((st) => st.tags.includes(tag)).map((st) => st.path);
  if (tagged(TAPE_OPENS).length && !tagged(TAPE_CLOSES).length) {
    throw new ConfigError(
      `the loop machine "${description.id}" has states tagged "${TAPE_OPENS}" (${tagged(TAPE_OPENS).join(', ')}) but no state is tagged "${TAPE_CLOSES}"; ${TAPE_RULE}`,
    );
  }
  const smooth = opts.smoothLoss instanceof SmoothLoss ? opts.smoothLoss : new SmoothLoss(opts.smoothLoss);
  const losses = new LossLog(engine, smooth);
  let unread: UnreadLosses | null = null;
  let pending: TrainchartError | null = null;
  let firstError: TrainchartError | null = null;
  let epochsDone = 0;
  let trainBatches = 0;
  /** The batch's loss tensor exists but is not final yet (a hook may still replace it). */
  let lossPending = false;
  /** Whose loss `ctx.lastLossValue` is: none yet in this batch, the train log's latest, or the validation batch's. */
  let lossOf: 'none' | 'train' | 'valid' = 'none';
  // The loss and the smoothed loss are read from the device when asked for (src/loop/lossLog.ts).
  const lossSource: LossSource = {
    lastLossValue: () => (lossOf === 'none' ? null : lossOf === 'train' ? losses.latest() : engine.readLoss()),
    smoothLoss: () => losses.smoothed(),
    readLossLater: (fn) => {
      if (ctx.train) losses.later(lossOf === 'train', fn);
      else fn(lossSource.lastLossValue(), lossSource.smoothLoss());
    },
  };
  if (!setLossSource(ctx, lossSource)) {
    // A context not made by newTrainContext (a test's own object): the same fields, defined here.
    Object.defineProperties(ctx, {
      lastLossValue: { configurable: true, enumerable: true, get: lossSource.lastLossValue },
      smoothLoss: { configurable: true, enumerable: true, get: lossSource.smoothLoss },
    });
    ctx.readLossLater = lossSource.readLossLater;
  }

  const failWith = (error: TrainchartError) => {
    if (firstError === null) firstError = error;
    pending ??= error;
  };
  const fail = (stage: Stage, callback: string | null, phase: string, cause: unknown) =>
    failWith(cause instanceof ControlError ? cause : new StageError(stage, callback, phase, cause));

  /** The stage an action runs at, read from the machine; the last stage whose hooks ran when the machine cannot tell. */
  const stageOf = (action: string, train: boolean): Stage => places.get(workKey(action, train)) ?? ctx.stage;

  /** Work skips once anything failed in this step: after an exception no further stage runs but trainEnd. */
  const doWork =
    (name: string, fn: (context: LoopContext) => void) =>
    ({ context }: { context: LoopContext }) => {
      if (pending) return;
      try {
        fn(context);
      } catch (e) {
        fail(stageOf(name, context.train), null, workPhase(name), e);
      }
    };

  /**
   * The batch's loss is final: after the hooks of the stage that computed it (a backwardBegin
   * hook may replace it), or earlier when work needs it first (validation metrics). Kept on the
   * device; read when someone asks (src/loop/lossLog.ts).
   */
  const settleLoss = (context: LoopContext): boolean => {
    lossPending = false;
    try {
      if (context.train) losses.keep();
      else engine.keepLoss(false);
      lossOf = context.train ? 'train' : 'valid';
      return true;
    } catch (e) {
      fail(stageOf('computeLoss', context.train), null, workPhase('computeLoss'), e);
      return false;
    }
  };

  /** Reads the kept train losses for the callbacks waiting for them (readLossLater). */
  const readWantedLosses = (stage: Stage) => {
    if (!losses.wanted) return;
    try {
      losses.flush();
    } catch (e) {
      fail(stage, null, 'reading the losses', e);
    }
  };

  const syncContext = (context: LoopContext, stage: Stage) => {
    ctx.stage = stage;
    ctx.epoch = context.epoch;
    ctx.iteration = context.iteration;
    ctx.batchIndex = context.batchIndex;
    ctx.train = context.train;
    ctx.nBatches = context.train ? context.nTrainBatches : context.nValidBatches;
    // Frozen: a hook sets a control by returning it, never by writing here. The machine makes a
    // new controls object whenever one changes and never mutates an old one, so freezing it in
    // place is safe and costs no copy per stage.
    ctx.controls = Object.isFrozen(context.controls) ? context.controls : Object.freeze(context.controls);
  };

  /**
   * Each stage's hooks and guards, looked up once per fit. A stage with neither (most stages of
   * a batch with the default callbacks) is `bare`: its whole part is settling the loss.
   */
  interface StagePlan {
    hooks: readonly BoundHook[];
    guards: readonly BoundGuard[];
    bare: boolean;
  }
  const stagePlans = new Map<Stage, { train: StagePlan; valid: StagePlan }>();
  for (const stage of STAGES) {
    const planFor = (train: boolean): StagePlan => {
      const hooks = table.hooksAt(stage);
      const guards = table.guardsAt(stage, train);
      // A mutant policy (tests) always takes the general path, which is what it changes.
      return { hooks, guards, bare: defaultOrder && hooks.length === 0 && guards.length === 0 };
    };
    stagePlans.set(stage, { train: planFor(true), valid: planFor(false) });
  }

  /** What one stage's hooks and guards asked for; reused: one stage runs at a time. */
  const requested: Requested = { controls: null, jumpTo: null };

  /** The stage's hooks, in run order; false once one failed. */
  const callHooks = (context: LoopContext, stage: Stage, plan: StagePlan): boolean => {
    const train = context.train;
    for (const { callback, hook } of plan.hooks) {
      try {
        mergeHookResult(hook.call(callback, ctx), callback, stage, train, requested);
        if (requested.jumpTo !== null && opts.input.firstEpoch !== undefined) {
          // Two sources for where the run starts would leave the restored callback states wrong.
          throw new ControlError(
            `${callback.name}.onTrainBegin returned { epoch: ${requested.jumpTo} }, but this fit resumes at startEpoch ${opts.input.firstEpoch}; drop one of the two`,
            callback.name,
            stage,
            'epoch',
          );
        }
        if (requested.jumpTo !== null && opts.input.resume) {
          throw new ControlError(
            `${callback.name}.onTrainBegin returned { epoch: ${requested.jumpTo} }, but this fit resumes from a checkpoint (epoch ${opts.input.resume.epoch}); drop the epoch control`,
            callback.name,
            stage,
            'epoch',
          );
        }
        // Later hooks of this stage see what earlier ones asked for.
        if (requested.controls && hasNew(ctx.controls, requested.controls)) {
          ctx.controls = Object.freeze(policy.applyControls(context.controls, requested.controls, { stage, train }));
        }
      } catch (e) {
        fail(stage, callback.name, 'hook', e);
        return false;
      }
    }
    return lossPending ? settleLoss(context) : true;
  };

  /** The stage's guards (§3: read as the stage is left); false once one failed. */
  const readGuards = (context: LoopContext, stage: Stage, plan: StagePlan): boolean => {
    const train = context.train;
    for (const { callback, control, guard } of plan.guards) {
      if (requested.controls?.[control]) continue;
      let fired: unknown;
      try {
        fired = guard.call(callback, ctx);
      } catch (e) {
        fail(stage, callback.name, `guard ${control}`, e);
        return false;
      }
      if (typeof fired !== 'boolean') {
        // A Promise's own rejection, if any, must not crash the process as well.
        if (typeof (fired as { then?: unknown } | null)?.then === 'function') (fired as PromiseLike<unknown>).then(undefined, () => {});
        failWith(
          new ControlError(
            `guard ${control} of callback ${callback.name} (read at ${stage}${train ? '' : ' during validation'}) returned ${describeValue(fired)}; ` +
              'a guard returns true or false (wrap a test that may give another value in Boolean(…))',
            callback.name,
            stage,
            control,
          ),
        );
        return false;
      }
      if (fired) (requested.controls ??= {})[control] = true;
    }
    return true;
  };

  const runHooks = (context: LoopContext, stage: Stage): Partial<LoopContext> => {
    // trainEnd runs after an error, even when cleanup on the way there (releaseBatch on
    // leaving batchEnd) threw again: that error is still pending as trainEnd is entered.
    if (pending && stage !== 'trainEnd') return NO_CHANGE;
    syncContext(context, stage);
    const train = context.train;
    const plans = stagePlans.get(stage)!;
    const plan = train ? plans.train : plans.valid;
    if (stage === 'epochEnd' || stage === 'trainEnd') {
      // The epoch's (and the run's) records are complete before their end hooks read them.
      readWantedLosses(stage);
      if (pending && stage !== 'trainEnd') return NO_CHANGE;
      if (stage === 'epochEnd') epochsDone += 1;
      else ctx.error = firstError;
    } else if (stage === 'batchEnd' && train) trainBatches += 1;
    if (plan.bare) {
      if (lossPending) settleLoss(context);
      return NO_CHANGE;
    }
    requested.controls = null;
    requested.jumpTo = null;
    let ok = true;
    if (defaultOrder) {
      ok = callHooks(context, stage, plan) && readGuards(context, stage, plan);
    } else {
      policy.stageOrder(
        () => {
          if (ok) ok = callHooks(context, stage, plan);
        },
        () => {
          if (ok) ok = readGuards(context, stage, plan);
        },
      );
    }
    if (!ok || (requested.controls === null && requested.jumpTo === null)) return NO_CHANGE;
    const patch: Partial<LoopContext> = {};
    if (requested.controls) patch.controls = policy.applyControls(context.controls, requested.controls, { stage, train });
    if (requested.jumpTo !== null) patch.jumpTo = requested.jumpTo;
    return patch;
  };

  // This run's implementations of the machine's named actions. The machine itself is provided
  // once per definition with stand-ins that find the run by the live actor running them
  // (`self`); the resolved actor takes these as actions of its own.
  const runActions: RunActions = {
    runHooks: (context: LoopContext, params: HookParams) => runHooks(context, params.stage),
    work: {
      restoreRun: () => {
        if (pending) return;
        try {
          opts.resume?.restore();
        } catch (e) {
          fail('trainBegin', null, 'resume from checkpoint', e);
        }
      },
      runJumpToEpoch: ({ context }) => {
        if (pending) return;
        // An exception here names trainBegin: the jump belongs to it (contract §1).
        // A resumed run jumps to the checkpoint's epoch (also 0); a plain jump to `epoch: N`.
        const epoch = context.resume ? context.resume.epoch : context.jumpTo!;
        const at = { epoch, batchIndex: context.batchIndex, iteration: context.iteration, fromCheckpoint: context.resume !== null };
        ctx.epoch = epoch;
        ctx.batchIndex = at.batchIndex;
        ctx.iteration = at.iteration;
        for (const [cb, state] of opts.callbackStates ?? []) {
          try {
            cb.setState(structuredClone(state));
          } catch (e) {
            fail('trainBegin', cb.name, 'setState', e);
            return;
          }
        }
        for (const cb of table.jumpers) {
          try {
            cb.jumpToEpoch!(epoch, { ...at });
          } catch (e) {
            fail('trainBegin', cb.name, 'jumpToEpoch', e);
            return;
          }
        }
      },
      orderBatches: doWork('orderBatches', (c) => engine.orderEpoch(c.epoch)),
      loadBatch: doWork('loadBatch', (c) => {
        lossOf = 'none';
        lossPending = false;
        engine.loadBatch(c.train, c.batchIndex, c.epoch);
      }),
      forward: doWork('forward', (c) => engine.forward(c.train)),
      computeLoss: doWork('computeLoss', (c) => {
        engine.computeLoss(c.train);
        lossPending = true;
      }),
      markLossForBackward: doWork('markLossForBackward', () => engine.markLossForBackward()),
      accumulateGradients: doWork('accumulateGradients', () => engine.accumulateGradients()),
      dropGradients: doWork('dropGradients', () => engine.dropGradients()),
      step: doWork('step', () => engine.step()),
      keepGradients: doWork('keepGradients', () => engine.keepGradients()),
      zeroGradients: doWork('zeroGradients', () => engine.zeroGradients()),
      startValidation: doWork('startValidation', () => engine.startValidation()),
      accumulateMetrics: doWork('accumulateMetrics', (c) => {
        if (lossPending && !settleLoss(c)) return;
        engine.accumulateMetrics();
      }),
      finalizeMetrics: doWork('finalizeMetrics', () => {
        ctx.lastMetrics = engine.finalizeMetrics();
      }),
      // Cleanup runs even after a failure: tensors are disposed on every path.
      releaseBatch: ({ context }) => {
        try {
          engine.releaseBatch();
        } catch (e) {
          fail(stageOf('releaseBatch', context.train), null, workPhase('releaseBatch'), e);
        }
      },
      releaseRun: ({ context }) => {
        try {
          // Last use of the device's losses: read now, or (nobody waiting, no failure) handed to
          // the caller unread, to be read when someone asks for this run's smoothed loss.
          if (opts.holdUnreadLosses && firstError === null && !pending) unread = losses.hold();
          if (unread === null) losses.flush();
        } catch (e) {
          fail(stageOf('releaseRun', context.train), null, 'reading the losses', e);
        }
        try {
          engine.releaseRun();
        } catch (e) {
          fail(stageOf('releaseRun', context.train), null, workPhase('releaseRun'), e);
        }
      },
    },
  };
  const machine = providedOnce(baseMachine, Object.keys(runActions.work));

  // Anyone watching the actor itself gets XState's live actor; the loop alone, or watched only
  // through its snapshots (observer) and steps (watchSteps), runs the same machine resolved once
  // per step (src/loop/resolvedActor.ts), ~10× cheaper per event.
  const live = opts.liveActor || !resolvable || opts.inspect || opts.snapshot || opts.onActor;
  const watcher = opts.watchSteps ? neverFailing(opts.watchSteps) : null;
  let actor: DrivenActor;
  if (live) {
    const watchSteps = watcher ? stepEventsOf(watcher) : undefined;
    const inspect = combineInspect(opts.inspect, watchSteps);
    const liveActor = makeActor(runActions, () =>
      createActor(machine, {
        input: opts.input,
        ...(opts.snapshot ? { snapshot: opts.snapshot } : {}),
        ...(inspect ? { inspect } : {}),
      }),
    );
    // An error inside XState itself (not in our work, which is caught above) ends the actor
    // with status 'error'; observing it keeps XState from rethrowing it asynchronously.
    liveActor.subscribe({ error: () => {} });
    liveActor.start();
    opts.onActor?.(liveActor);
    actor = liveActor;
  } else {
    // The resolved actor takes this run's implementations as its own: called directly, not
    // through the machine's stand-ins and their lookup of the run (a few µs a batch in place,
    // where every call between two kernels finds the loop's code and data out of the caches).
    const own = {
      runHooks: assign(({ context }: { context: LoopContext }, params: HookParams) => runHooks(context, params.stage)),
      ...runActions.work,
    };
    actor = new ResolvedActor<LoopContext>(machine, opts.input, own, watcher).start();
  }

  const yieldEveryMs = opts.yieldEveryMs ?? 25;
  let lastYield = performance.now();
  const observer = opts.observer;
  const sendNext = () => {
    actor.send(NEXT_EVENT);
    observer?.afterEvent(actor.getSnapshot() as LoopSnapshot, ctx);
  };
  // A path from an opening to a closing visits no state twice: more steps than states is a cycle.
  const maxTapeSteps = description.states.length;
  /** What went wrong with the tape of a custom machine (the real one always closes it). */
  let tapeProblem: string | null = null;
  const untilTapeCloses = () => {
    for (let steps = 1; ; steps++) {
      sendNext();
      const snap = actor.getSnapshot();
      if (pending !== null || snap.hasTag(TAPE_CLOSES)) return;
      if (snap.status !== 'active') {
        tapeProblem = `ended in state "${leafPath(snap.value)}" while the gradient tape was open`;
        return;
      }
      if (snap.hasTag(TAPE_OPENS)) {
        tapeProblem = `reached "${leafPath(snap.value)}", tagged "${TAPE_OPENS}", again before any state tagged "${TAPE_CLOSES}"`;
        return;
      }
      if (steps >= maxTapeSteps) {
        tapeProblem = `kept the gradient tape open for ${steps} steps (it has ${maxTapeSteps} states) and did not reach a state tagged "${TAPE_CLOSES}"`;
        return;
      }
    }
  };

  // STOP from outside (learn.stop(), a signal): delivered between stages, never inside the tape.
  let stopSent = false;
  const deliverStop = (): boolean => {
    if (stopSent || !opts.stopRequested?.() || actor.getSnapshot().status !== 'active') return false;
    stopSent = true;
    actor.send({ type: 'STOP' });
    return true;
  };

  // A quiet point: the machine rests in a state tagged quiet, all of the stage's hooks and guards done.
  const atQuietPoint = () => {
    const observers = table.quietObservers;
    const snap = actor.getSnapshot();
    if (pending || observers.length === 0 || snap.status !== 'active' || !snap.hasTag(QUIET)) return;
    const persisted = actor.getPersistedSnapshot() as unknown as PersistedLoopSnapshot;
    const resume = resumePointOf(opts.machine ?? trainLoopMachine, persisted);
    if (!resume) return;
    // After a train batch the next position is a batch (index ≥ 1); after epochEnd, an epoch's start.
    const stage: QuietPoint['stage'] = resume.batchIndex > 0 ? 'batchEnd' : 'epochEnd';
    ctx.controls = Object.freeze({ ...snap.context.controls });
    const point: QuietPoint = {
      stage,
      resume,
      nEpochs: snap.context.nEpochs,
      stopping: snap.context.controls.stopTraining,
      snapshot: structuredClone(persisted),
      capture: () => {
        if (!opts.capture) throw new TrainchartError('CONFIG', 'this run was started without a way to capture its state (runLoop option `capture`)');
        // The state includes the smoothed loss and the callbacks' records of every batch so far.
        losses.flush();
        return opts.capture(point);
      },
    };
    for (const cb of observers) {
      try {
        cb.atQuietPoint!(point, ctx);
      } catch (e) {
        fail(stage, cb.name, 'atQuietPoint', e);
        return;
      }
    }
  };

  /** The state in which the machine ignored NEXT once (see below): a second time there, the driver gives up. */
  let ignoredNext: string | null = null;
  /**
   * Drives the machine until it ends (false) or the event loop is due a turn (true). A plain
   * function, not part of the async runLoop: V8 does not compile a loop inside an async function
   * on its own (no on-stack replacement there), only with the whole function, and runLoop runs
   * once per fit (Turbofan took it after ~160 fits of 20 batches); this one is called at every
   * yield. Measured with the tensor-free engine: the loop's cost per batch reaches its steady
   * ~3 µs after ~100 such fits instead of ~180 (~10 µs at the first 20).
   */
  const driveUntilYieldDue = (): boolean => {
    while (actor.getSnapshot().status === 'active') {
      // A stop asked for while the loop yielded: if the machine rests at a quiet point, it is
      // that point where the stop takes effect, so observers see it again, now stopping.
      if (deliverStop()) atQuietPoint();
      if (actor.getSnapshot().hasTag(TAPE_OPENS)) {
        try {
          engine.underTape(untilTapeCloses);
        } catch (e) {
          // Taking the gradients failed: the last stage whose hooks ran is where (backwardBegin when a loss was marked).
          fail(ctx.stage, null, 'gradients (backward pass)', e);
        }
        if (tapeProblem !== null) {
          const error = new ConfigError(`the loop machine "${description.id}" ${tapeProblem}; ${TAPE_RULE}`);
          tapeProblem = null;
          if (actor.getSnapshot().status !== 'active') {
            // Nothing left to run trainEnd: release what the run made and say what is wrong.
            engine.releaseRun();
            throw error;
          }
          failWith(error);
        }
      } else {
        const before = actor.getSnapshot();
        sendNext();
        // XState keeps the very same snapshot when no transition takes an event: a custom machine
        // whose active state has no NEXT would be pumped forever. Fail the run (its FAIL path runs
        // trainEnd); if the machine ignores that too, release what the run made and reject.
        if (pending === null && actor.getSnapshot() === before && before.status === 'active') {
          const where = leafPath(before.value);
          const error = new ConfigError(
            `the loop machine "${description.id}" takes no NEXT in state "${where}", so the loop cannot go on; ` +
              'every state the driver rests in must have a NEXT transition (runLoop option `machine`)',
          );
          if (ignoredNext === where) {
            engine.releaseRun();
            throw error;
          }
          ignoredNext = where;
          failWith(error);
        }
      }
      deliverStop();
      atQuietPoint();
      // `while`: a trainEnd hook may throw while the FAIL itself is handled; that one must
      // take trainEnd's own FAIL (→ failed) too, not wait for a NEXT sent past the error.
      while (pending) {
        const error: TrainchartError = pending;
        pending = null;
        const stage = error instanceof StageError || error instanceof ControlError ? (error.stage as Stage) : ctx.stage;
        const callback = error instanceof StageError ? error.callback : error instanceof ControlError ? error.callback : null;
        actor.send({ type: 'FAIL', failure: { stage, callback, message: error.message } });
        observer?.afterEvent(actor.getSnapshot() as LoopSnapshot, ctx);
      }
      if (performance.now() - lastYield >= yieldEveryMs) return true;
    }
    return false;
  };
  try {
    while (driveUntilYieldDue()) {
      await yieldToEventLoop();
      lastYield = performance.now();
    }
    const ended = actor.getSnapshot();
    if (ended.status === 'error') {
      // A defect in the machine or the driver, not in user code: say so plainly.
      engine.releaseRun();
      throw new TrainchartError('STAGE', `the training loop machine stopped with an internal error: ${String(ended.error)}`, {
        cause: ended.error,
      });
    }
  } catch (e) {
    // The driver gave up, or an observer threw, past releaseRun: the losses it held go too.
    (unread as UnreadLosses | null)?.release();
    throw e;
  }
  const snapshot = actor.getSnapshot();
  const status = (typeof snapshot.value === 'string' ? snapshot.value : 'failed') as FinalStatus;
  return {
    status,
    error: firstError,
    context: snapshot.context,
    // With `unread`, read when asked: its losses join the state once they are settled.
    ...(unread
      ? {
          get smoothLoss() {
            return smooth.getState();
          },
        }
      : { smoothLoss: smooth.getState() }),
    unread,
    epochsDone,
    trainBatches,
    get lossReads() {
      return losses.reads;
    },
  };
}

export { HookTable };
