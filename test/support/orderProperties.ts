/**
 * The event-order property, shared by the property suite and the mutant suite: a random
 * scenario (plain data, so a counterexample prints readably) is run through the real driver
 * (`runLoop`) on the fake engine, with the real machine or a mutant of it, and the trace is
 * judged by the contract's oracle (`traceChecker.ts`).
 */
import fc from 'fast-check';
import { STAGES, hookNameOf, type Stage } from '../../machines/stages.js';
import type { trainLoopMachine } from '../../machines/trainLoop.js';
import { Callback, type HookResult } from '../../src/loop/callback.js';
import { newTrainContext, type TrainContext } from '../../src/loop/context.js';
import { HookTable } from '../../src/loop/hookTable.js';
import { runLoop, type DriverPolicy } from '../../src/loop/runLoop.js';
import type { QuietPoint } from '../../src/loop/quietPoint.js';
import type { StepWatcher } from '../../src/loop/stepInspection.js';
import { FAKE_LR, FAULTABLE, FakeEngine, fakeGradient, type EngineFaultPlan } from './fakeEngine.js';
import {
  CONTRACT_CONTROLS,
  checkTrace,
  mayComeFrom,
  type CheckResult,
  type GuardCall,
  type HookCall,
  type Position,
  type QuietCall,
  type ResumeConfig,
  type RunConfig,
  type TraceStage,
} from './traceChecker.js';

/** Where an act or a guard applies; `null` matches any epoch / batch index. */
export interface Point {
  stage: TraceStage;
  epoch: number | null;
  batchIndex: number | null;
  train: boolean;
}

/** A hook returns a value, throws, or asks the learner to stop (`learn.stop()`, as a signal or Ctrl-C would). */
export type Act = { at: Point; returns: unknown } | { at: Point; throws: true } | { at: Point; stops: true };

export interface CallbackSpec {
  name: string;
  order: number;
  /** The first act whose point matches a hook call decides what that hook does. */
  acts: Act[];
  guards: { control: string; at: Point }[];
}

export interface Scenario {
  nEpochs: number;
  nTrain: number;
  nValid: number;
  validate: boolean;
  callbacks: CallbackSpec[];
  engineFault: EngineFaultPlan | null;
  /** Resumed from a checkpoint at this point (§6), or a run from its start. */
  resume?: ResumeConfig | null;
}

export function matches(p: Point, at: { stage: TraceStage; epoch: number; batchIndex: number; train: boolean }): boolean {
  return (
    p.stage === at.stage &&
    p.train === at.train &&
    (p.epoch === null || p.epoch === at.epoch) &&
    (p.batchIndex === null || p.batchIndex === at.batchIndex)
  );
}

// ---------------------------------------------------------------------------------------
// Generators.

const VALID_ONLY: ReadonlySet<Stage> = new Set(['validateBegin', 'validateEnd']);
const BOTH: ReadonlySet<Stage> = new Set(['batchBegin', 'lossBegin', 'batchEnd']);
/** Stages outside any batch, where ctx.batchIndex means little: points there match any. */
const TRAIN_FREE: ReadonlySet<Stage> = new Set(['trainBegin', 'epochBegin', 'validateBegin', 'validateEnd', 'epochEnd', 'trainEnd']);

const pointArb = (stages: readonly TraceStage[]): fc.Arbitrary<Point> =>
  fc
    .record({
      stage: fc.constantFrom(...stages),
      // Half the points match any epoch / batch, so an act fires whatever the run's size.
      epoch: fc.option(fc.integer({ min: 0, max: 3 }), { nil: null, freq: 2 }),
      batchIndex: fc.option(fc.integer({ min: 0, max: 5 }), { nil: null, freq: 2 }),
      validation: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
    })
    .map(({ stage, epoch, batchIndex, validation }) => ({
      stage,
      epoch,
      // Outside a batch ctx.batchIndex means little; match any.
      batchIndex: TRAIN_FREE.has(stage as Stage) || stage === 'jumpToEpoch' ? null : batchIndex,
      train: VALID_ONLY.has(stage as Stage) ? false : BOTH.has(stage as Stage) ? !validation : true,
    }));

const UNKNOWN_KEYS = ['stopEpok', 'cancel', 'toString', 'skip_step', 'Epoch', 'constructor'];
const EPOCH_VALUES = [0, 1, 2, 3, 5, -1, 1.5, Number.NaN, '2'];
const JUNK = [42, 'stopTraining', [], true];

/** Every stage a control may come from (in a train or a validation pass). */
const stagesFor = (control: string) => STAGES.filter((st) => mayComeFrom(control, st, true) || mayComeFrom(control, st, false));

/**
 * A control returned where it has a meaning: the control is chosen first (the ones that keep
 * a run going weigh more, so runs stay long enough to show their effects), then a stage it may
 * come from, so each control gets its share whatever the number of stages it is allowed at.
 */
const meaningfulAct: fc.Arbitrary<Act> = fc
  .tuple(
    fc.constantFrom(
      ...(['cancelBatch', 'skipBackward', 'skipStep', 'skipZero', 'skipZero', 'skipZero'] as const).flatMap((c) => [c, c]),
      'skipValidate',
      'skipValidate',
      'stopEpoch',
      'stopTraining',
      'epoch',
    ),
    fc.nat(60),
    pointArb(STAGES),
  )
  .map(([control, pick, p]): Act => {
    if (control === 'epoch') return { at: { ...p, stage: 'trainBegin', batchIndex: null, train: true }, returns: { epoch: EPOCH_VALUES[pick % 4] } };
    const stages = stagesFor(control);
    const stage = stages[pick % stages.length]!;
    // Only batchBegin, lossBegin and batchEnd run in both passes; elsewhere the pass is fixed.
    const train = VALID_ONLY.has(stage) ? false : BOTH.has(stage) ? mayComeFrom(control, stage, true) && (p.train || !mayComeFrom(control, stage, false)) : true;
    const batch = !TRAIN_FREE.has(stage);
    return { at: { stage, epoch: p.epoch, batchIndex: batch ? p.batchIndex : null, train }, returns: { [control]: true } };
  });

type Odd = 'anyControl' | 'epoch' | 'unknownKey' | 'junk' | 'noop';

/** Anything else a hook might return: misplaced controls, bad epochs, unknown keys, junk, no-ops. */
function oddValue(at: Point, kind: Odd, pick: number): unknown {
  const allowed = CONTRACT_CONTROLS.filter((c) => at.stage !== 'jumpToEpoch' && mayComeFrom(c, at.stage, at.train));
  switch (kind) {
    case 'anyControl':
      return { [CONTRACT_CONTROLS[pick % CONTRACT_CONTROLS.length]!]: true };
    case 'epoch':
      return { epoch: EPOCH_VALUES[pick % EPOCH_VALUES.length], ...(pick % 4 === 1 ? { stopTraining: true } : {}) };
    case 'unknownKey':
      return { [UNKNOWN_KEYS[pick % UNKNOWN_KEYS.length]!]: true };
    case 'junk':
      return JUNK[pick % JUNK.length];
    case 'noop':
      return pick % 2 ? {} : allowed.length ? { [allowed[pick % allowed.length]!]: false } : null;
  }
}

const oddAct: fc.Arbitrary<Act> = fc
  .tuple(pointArb(STAGES), fc.constantFrom<Odd>('anyControl', 'epoch', 'epoch', 'epoch', 'unknownKey', 'junk', 'noop', 'noop'), fc.nat(60))
  .map(([at, kind, pick]): Act => {
    // Bad epochs mostly from trainBegin, where only the value is wrong; now and then from elsewhere.
    const where: Point = kind === 'epoch' && pick % 3 !== 0 ? { ...at, stage: 'trainBegin', batchIndex: null, train: true } : at;
    return { at: where, returns: oddValue(where, kind, pick) };
  });

const actArb: fc.Arbitrary<Act> = fc.oneof(
  { weight: 24, arbitrary: meaningfulAct },
  { weight: 2, arbitrary: oddAct },
  { weight: 1, arbitrary: pointArb([...STAGES, 'jumpToEpoch']).map((at): Act => ({ at, throws: true })) },
);

/** With stop requests too: a hook calls learn.stop() now and then, at any stage. */
const actWithStopsArb: fc.Arbitrary<Act> = fc.oneof(
  { weight: 8, arbitrary: actArb },
  { weight: 1, arbitrary: pointArb([...STAGES, 'jumpToEpoch']).map((at): Act => ({ at, stops: true })) },
);

const guardArb = fc.record({ control: fc.constantFrom(...CONTRACT_CONTROLS), at: pointArb(STAGES) });

const callbacksArb = (max: number, stops = false) =>
  fc
    .array(
      fc.record({
        order: fc.constantFrom(-1, 0, 0, 1, 2.5, 10),
        acts: fc.array(stops ? actWithStopsArb : actArb, { maxLength: 4 }),
        guards: fc.array(guardArb, { maxLength: 2 }),
      }),
      { maxLength: max },
    )
    .map((list) => list.map((c, i): CallbackSpec => ({ name: `cb${i}`, ...c })));

export interface ScenarioLimits {
  epochs: [number, number];
  trainBatches: [number, number];
  validBatches: [number, number];
  maxCallbacks: number;
  /** Make the work throw now and then (only the fake engine can). */
  workFaults: boolean;
  /** Hooks also ask the learner to stop (learn.stop()) now and then. */
  stops?: boolean;
  /** Most runs resume from a checkpoint at a random quiet point (§6); only the fake engine can. */
  resume?: boolean;
}

/** A checkpoint's point in a run of this size: mid-epoch (after a train batch) or an epoch's start. */
const resumeArb = fc.option(
  fc.record({ e: fc.nat(20), b: fc.nat(20), iteration: fc.nat(30), stopEpoch: fc.nat(5), skipValidate: fc.nat(5), carried: fc.boolean() }),
  { nil: null, freq: 6 },
);

function resumeOf(
  raw: { e: number; b: number; iteration: number; stopEpoch: number; skipValidate: number; carried: boolean } | null,
  nEpochs: number,
  nTrain: number,
): ResumeConfig | null {
  if (!raw) return null;
  const epoch = raw.e % (nEpochs + 1);
  // At the run's end only an epoch start is possible; mid-epoch a batch 1 … nTrain was the last done.
  const batchIndex = epoch === nEpochs || nTrain === 0 ? 0 : raw.b % (nTrain + 1);
  const mid = batchIndex > 0;
  return {
    epoch,
    batchIndex,
    iteration: raw.iteration,
    stopEpoch: mid && raw.stopEpoch === 0,
    skipValidate: mid && raw.skipValidate === 0,
    // Gradients kept by skipZero before the checkpoint: the previous batch's.
    carried: mid && raw.carried ? [`e${epoch}b${batchIndex - 1}`] : [],
  };
}

export function scenarioArbitrary(l: ScenarioLimits): fc.Arbitrary<Scenario> {
  const range = ([min, max]: [number, number]) => fc.integer({ min, max });
  const base = {
    nEpochs: range(l.epochs),
    nTrain: range(l.trainBatches),
    nValid: range(l.validBatches),
    validate: fc.boolean(),
    callbacks: callbacksArb(l.maxCallbacks, l.stops ?? false),
    engineFault: l.workFaults
      ? fc.option(fc.record({ method: fc.constantFrom(...FAULTABLE), call: fc.integer({ min: 1, max: 12 }) }), { nil: null, freq: 10 })
      : fc.constant(null),
  };
  // Added only when asked for, so the scenarios of the other suites (and their seeds) stay as they were.
  if (!l.resume) return fc.record(base);
  return fc.record({ ...base, resumeRaw: resumeArb }).map(({ resumeRaw, ...s }) => ({ ...s, resume: resumeOf(resumeRaw, s.nEpochs, s.nTrain) }));
}

/** The ranges: 0–4 epochs, 0–6 train and 0–3 validation batches, 0–6 callbacks. */
export const scenarioArb = scenarioArbitrary({ epochs: [0, 4], trainBatches: [0, 6], validBatches: [0, 3], maxCallbacks: 6, workFaults: true });

/** The same, with stop requests, and most runs resumed from a checkpoint (contract §6). */
export const resumedScenarioArb = scenarioArbitrary({
  epochs: [0, 4],
  trainBatches: [0, 6],
  validBatches: [0, 3],
  maxCallbacks: 6,
  workFaults: true,
  stops: true,
  resume: true,
});

// ---------------------------------------------------------------------------------------
// The harness.

/** A callback that does what its spec says and records every hook call and guard read. */
export class ScenarioCallback extends Callback {
  constructor(
    readonly spec: CallbackSpec,
    readonly trace: HookCall[],
    readonly guardCalls: (GuardCall & { fired: boolean })[],
    /** Where a stop request goes when there is no Learner (the fake-engine harness); else learn.stop(). */
    readonly stopFlag: { requested: boolean } | null = null,
  ) {
    super();
    this.order = spec.order;
    for (const stage of STAGES) {
      (this as unknown as Record<string, unknown>)[hookNameOf(stage)] = (ctx: TrainContext) => this.hook(stage, ctx);
    }
    for (const g of spec.guards) {
      if (this.guards[g.control as 'stopTraining']) continue;
      this.guards[g.control as 'stopTraining'] = (ctx) => {
        const at = { stage: ctx.stage, epoch: ctx.epoch, batchIndex: ctx.batchIndex, train: ctx.train };
        const fired = this.spec.guards.some((x) => x.control === g.control && matches(x.at, at));
        this.guardCalls.push({ callback: spec.name, control: g.control, ...at, traceLength: this.trace.length, fired });
        return fired;
      };
    }
  }

  override get name() {
    return this.spec.name;
  }

  private act(call: HookCall): HookResult {
    const act = this.spec.acts.find((a) => matches(a.at, call));
    if (act && 'throws' in act) {
      const error = new Error(`${this.spec.name} throws at ${call.stage}`);
      call.threw = error;
      throw error;
    }
    if (act && 'stops' in act) {
      call.stopped = true;
      if (this.stopFlag) this.stopFlag.requested = true;
      else this.learn.stop();
      return undefined;
    }
    if (act) {
      call.returned = act.returns;
      return act.returns as HookResult;
    }
    return undefined;
  }

  private hook(stage: Stage, ctx: TrainContext): HookResult {
    const call: HookCall = {
      stage,
      callback: this.spec.name,
      epoch: ctx.epoch,
      batchIndex: ctx.batchIndex,
      train: ctx.train,
      iteration: ctx.iteration,
      ...(stage === 'trainEnd' ? { error: ctx.error } : {}),
    };
    this.trace.push(call);
    return this.act(call);
  }

  jumpToEpoch(epoch: number): void {
    const call: HookCall = { stage: 'jumpToEpoch', callback: this.spec.name, epoch, batchIndex: -1, train: true, iteration: -1 };
    this.trace.push(call);
    this.act(call);
  }
}

/** A TrainContext for runs without a Learner: hooks here never touch `ctx.learn`. */
export function bareContext(nEpochs: number, nBatches: number): TrainContext {
  return newTrainContext({} as TrainContext['learn'], nEpochs, nBatches);
}

export function configOf(s: Scenario): RunConfig {
  return {
    nEpochs: s.nEpochs,
    nTrain: s.nTrain,
    nValid: s.nValid,
    validate: s.validate,
    resume: s.resume ?? null,
    callbacks: s.callbacks.map((c) => ({
      name: c.name,
      order: c.order,
      guards: c.guards.map((g) => ({ control: g.control, fires: (at: Position) => matches(g.at, at) })),
    })),
  };
}

export interface Variant {
  /** A machine to drive instead of the real one (mutants). */
  machine?: typeof trainLoopMachine;
  /** The hook table to use instead of the real one (mutants of the run order). */
  table?: (callbacks: Callback[]) => HookTable;
  /** Rules of the driver to break (driver mutants); a factory, so a rule with memory starts fresh each run. */
  policy?: () => Partial<DriverPolicy>;
  /** Drive a live XState actor instead of the resolved one (src/loop/resolvedActor.ts): the equivalence tests compare them. */
  live?: boolean;
  /** Told the loop's steps (runLoop option `watchSteps`). */
  watchSteps?: StepWatcher;
}

export interface ScenarioReport extends CheckResult {
  status: string;
  error: unknown;
  trace: HookCall[];
  /** Guard reads, with what each returned. */
  guardCalls: (GuardCall & { fired: boolean })[];
  /** Quiet points, as an observer saw them. */
  quietCalls: QuietCall[];
}

/** Records every quiet point (it has no hooks, so it adds nothing to the trace). */
class QuietWatcher extends Callback {
  constructor(
    readonly trace: HookCall[],
    readonly calls: QuietCall[],
  ) {
    super();
  }
  atQuietPoint(point: QuietPoint): void {
    this.calls.push({ traceLength: this.trace.length, stage: point.stage, resume: { ...point.resume }, stopping: point.stopping });
  }
}

/** Runs one scenario on the fake engine and returns every way it breaks the contract. */
export async function checkScenario(s: Scenario, variant: Variant = {}): Promise<ScenarioReport> {
  const trace: HookCall[] = [];
  const guardCalls: (GuardCall & { fired: boolean })[] = [];
  const stop = { requested: false };
  const quietCalls: QuietCall[] = [];
  const callbacks: Callback[] = s.callbacks.map((spec) => new ScenarioCallback(spec, trace, guardCalls, stop));
  callbacks.push(new QuietWatcher(trace, quietCalls));
  const engine = new FakeEngine(s.engineFault, () => trace.length);
  const resume = s.resume ?? null;
  let outcome: { status: string; error: unknown };
  let epochsDone = -1;
  let iterations = -1;
  let trainBatches = -1;
  try {
    const result = await runLoop({
      engine,
      table: variant.table ? variant.table(callbacks) : new HookTable(callbacks),
      ctx: bareContext(s.nEpochs, s.nTrain),
      input: {
        nEpochs: s.nEpochs,
        nTrainBatches: s.nTrain,
        nValidBatches: s.nValid,
        validate: s.validate,
        ...(resume ? { resume: { epoch: resume.epoch, batchIndex: resume.batchIndex, iteration: resume.iteration, stopEpoch: resume.stopEpoch, skipValidate: resume.skipValidate } } : {}),
      },
      ...(resume ? { resume: { restore: () => engine.restoreCarried(resume.carried) } } : {}),
      stopRequested: () => stop.requested,
      ...(variant.machine ? { machine: variant.machine } : {}),
      ...(variant.policy ? { policy: variant.policy() } : {}),
      ...(variant.live ? { liveActor: true } : {}),
      ...(variant.watchSteps ? { watchSteps: variant.watchSteps } : {}),
    });
    outcome = { status: result.status, error: result.error };
    epochsDone = result.epochsDone;
    iterations = result.context.iteration;
    trainBatches = result.trainBatches;
  } catch (e) {
    outcome = { status: `crashed (${e instanceof Error ? e.message : String(e)})`, error: e };
  }
  const report = checkTrace({
    trace,
    config: configOf(s),
    outcome,
    guardCalls,
    workFault: engine.fault,
    steps: engine.steps,
    quietCalls,
  });
  const v = report.violations;
  v.push(...engine.leftovers().map((m) => `§4 release: ${m}`));
  // The numbers agree with the batches a step claims to have used (lr · Σ gradients).
  for (const st of engine.steps) {
    if (!st.contributors || !st.after) continue;
    const sum = st.before.map(() => 0);
    for (const key of st.contributors) {
      const [e, b] = key.slice(1).split('b').map(Number) as [number, number];
      fakeGradient(e, b).forEach((g, i) => (sum[i]! += g));
    }
    if (st.after.some((w, i) => w !== st.before[i]! - FAKE_LR * sum[i]!)) {
      v.push(`the weights after e${st.epoch} b${st.batchIndex} are not before − lr·Σ of the gradients of [${st.contributors.join(', ')}]`);
    }
  }
  if (outcome.status === 'completed' || outcome.status === 'stopped') {
    const epochEnds = new Set(trace.filter((c) => c.stage === 'epochEnd').map((c) => c.epoch)).size;
    if (s.callbacks.length && epochsDone !== epochEnds) v.push(`the loop reports ${epochsDone} epochs done, the trace shows ${epochEnds}`);
    // Epochs jumped over by `epoch: N` count as done (§5: iteration is over the whole run).
    // The last `epoch: N` returned at trainBegin, in run order, is where the run started.
    const epochReturns = trace
      .filter((c) => c.stage === 'trainBegin')
      .map((c) => (c.returned as { epoch?: unknown } | undefined)?.epoch)
      .filter((e): e is number => typeof e === 'number');
    const jumpedTo = epochReturns.at(-1) ?? 0;
    // Resumed: the checkpoint's iteration is where the count goes on from.
    const skipped = resume ? resume.iteration : Math.min(jumpedTo, s.nEpochs) * s.nTrain;
    if (iterations !== skipped + report.batches.length) {
      v.push(`the loop ends at iteration ${iterations}, but ${skipped} batches were jumped over and ${report.batches.length} train batches ran`);
    }
    // What fit reports as its iterations: the batches that ran, the jumped-over epochs not counted.
    if (trainBatches !== report.batches.length) v.push(`the loop reports ${trainBatches} train batches run, the rules say ${report.batches.length}`);
  }
  return { ...report, status: outcome.status, error: outcome.error, trace, guardCalls, quietCalls };
}

/** The property: every scenario's run keeps the contract. Throws the violations, so fast-check prints them. */
export function orderProperty(variant: Variant = {}, scenarios: fc.Arbitrary<Scenario> = scenarioArb) {
  return fc.asyncProperty(scenarios, async (s) => {
    const { violations } = await checkScenario(s, variant);
    if (violations.length) throw new Error(`${violations.length} violation(s):\n  - ${violations.join('\n  - ')}`);
  });
}

/** fast-check parameters, with a failing case replayable through FC_SEED / FC_PATH (see README). */
export function fcParameters<T = [Scenario]>(numRuns: number): fc.Parameters<T> {
  const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
  const path = process.env.FC_PATH;
  return {
    numRuns: process.env.FC_NUM_RUNS ? Number(process.env.FC_NUM_RUNS) : numRuns,
    ...(seed !== undefined ? { seed } : {}),
    ...(path ? { path } : {}),
  };
}
