/**
 * An oracle for the loop's event order, written from the contract (`../shared/spec/loop.md`
 * §1–§4, and §6 for a run resumed from a checkpoint) and the choices `docs/loop.md` writes down — deliberately NOT from the machine: the
 * only things imported are the stage names. The tables of what a control may come from and
 * what it does are restated here on purpose, so that a mistake in `machines/controls.ts` or
 * in the machine shows up as a disagreement instead of being copied into the oracle.
 *
 * Two layers, as the contract has them:
 *  1. §2, the grammar: a small automaton over the stage instances of the trace. It knows
 *     nothing of controls; it only says whether the sequence is a word of the grammar (with
 *     the cuts flow control and errors may make, never a reordering).
 *  2. §3–§4, the rules: a predictive walk that, from what the run was configured with and
 *     what each hook returned or threw (and the guards, evaluated by the oracle itself),
 *     says which stage instance must come next, with which ctx fields, and what each train
 *     batch's optimizer step must have used; then the outcome (status, error).
 */
import type { Stage } from '../../machines/stages.js';

export type TraceStage = Stage | 'jumpToEpoch';

/** One hook call, as a callback saw it. */
export interface HookCall {
  stage: TraceStage;
  callback: string;
  epoch: number;
  batchIndex: number;
  train: boolean;
  iteration: number;
  /** What the hook returned (absent or undefined: nothing). */
  returned?: unknown;
  /** Set when the hook threw; the value is what it threw. */
  threw?: unknown;
  /** trainEnd only: `ctx.error` as the hook saw it. */
  error?: unknown;
  /** The hook asked the learner to stop (learn.stop(), as a signal or Ctrl-C would): it takes effect as the stage is left. */
  stopped?: boolean;
}

/** Where a stage is left, as a guard sees it. */
export interface Position {
  stage: Stage;
  epoch: number;
  batchIndex: number;
  train: boolean;
  iteration: number;
}

export interface GuardConfig {
  control: string;
  /** The guard's predicate, as plain data the oracle can evaluate on its own. */
  fires: (at: Position) => boolean;
}

export interface CallbackConfig {
  name: string;
  order: number;
  guards?: readonly GuardConfig[];
  /** Does it implement jumpToEpoch? (default true) */
  jumps?: boolean;
}

/**
 * A run resumed from a checkpoint (§6): the next train batch `batchIndex` of `epoch` (> 0:
 * mid-epoch, its epochBegin ran before the checkpoint), or the start of `epoch` (0);
 * `iteration` train batches done; the epoch flags of a half-done epoch; gradients kept by
 * skipZero before the checkpoint (batch keys, `e0b1`).
 */
export interface ResumeConfig {
  epoch: number;
  batchIndex: number;
  iteration: number;
  stopEpoch: boolean;
  skipValidate: boolean;
  carried: readonly string[];
}

/** What the run was configured with. Every callback listed records every hook it runs. */
export interface RunConfig {
  callbacks: readonly CallbackConfig[];
  nEpochs: number;
  nTrain: number;
  nValid: number;
  validate: boolean;
  resume?: ResumeConfig | null;
}

/**
 * A quiet point as an observer saw it (§6: after a train batch's batchEnd or after epochEnd,
 * all hooks of that stage run): `traceLength` hook calls were made before it.
 */
export interface QuietCall {
  traceLength: number;
  stage: string;
  /** Where a run resumed from here would continue. */
  resume: { epoch: number; batchIndex: number; iteration: number; stopEpoch: boolean; skipValidate: boolean };
  stopping: boolean;
}

/** A guard evaluation as it happened; `traceLength` is the number of hook calls made before it. */
export interface GuardCall {
  callback: string;
  control: string;
  stage: Stage;
  epoch: number;
  batchIndex: number;
  train: boolean;
  traceLength: number;
}

/** An exception from the work (data, model, loss, gradients, optimizer), not from a hook. */
export interface WorkFault {
  /** Hook calls made before it was thrown. */
  afterCalls: number;
  error: unknown;
}

/** What one train batch did to the weights (from an engine that can tell). */
export interface BatchStep {
  epoch: number;
  batchIndex: number;
  before: readonly number[];
  after: readonly number[] | null;
  /** The batches whose gradients the optimizer step used (`null`: no step was applied). */
  contributors: readonly string[] | null;
}

export interface Outcome {
  status: string;
  /** What fit rejected with / the loop reported; leave the key out to skip the error checks. */
  error?: unknown;
}

export interface CheckInput {
  trace: readonly HookCall[];
  config: RunConfig;
  outcome: Outcome;
  guardCalls?: readonly GuardCall[];
  workFault?: WorkFault | null;
  steps?: readonly BatchStep[];
  /** Quiet points seen by an observer; leave out to skip the quiet-point checks. */
  quietCalls?: readonly QuietCall[];
}

/** What the rules say one train batch's step must have been. */
export interface BatchVerdict {
  epoch: number;
  batchIndex: number;
  /** Gradients of these batches were stepped with; `null`: the weights must not change. */
  stepWith: string[] | null;
}

export interface CheckResult {
  violations: string[];
  batches: BatchVerdict[];
}

// ---------------------------------------------------------------------------------------
// The contract's tables, restated (§1, §3; docs/loop.md for train-only cancelBatch).

const BATCH: ReadonlySet<string> = new Set(['batchBegin', 'lossBegin', 'backwardBegin', 'backwardEnd', 'stepEnd', 'batchEnd']);
const CANCEL_FROM: ReadonlySet<string> = new Set(['batchBegin', 'lossBegin', 'backwardBegin', 'backwardEnd']);

/** May `control` come from `stage` in a train (`train`) or validation pass? */
export function mayComeFrom(control: string, stage: Stage, train: boolean): boolean {
  switch (control) {
    case 'cancelBatch':
      return train && CANCEL_FROM.has(stage);
    case 'skipBackward':
      return stage === 'backwardBegin';
    case 'skipStep':
      return stage === 'backwardEnd';
    case 'skipZero':
      return stage === 'stepEnd';
    case 'stopEpoch':
    case 'skipValidate':
      return stage === 'epochBegin' || (train && BATCH.has(stage));
    case 'stopTraining':
      return stage !== 'trainEnd';
    default:
      return false;
  }
}

export const CONTRACT_CONTROLS = [
  'cancelBatch',
  'skipBackward',
  'skipStep',
  'skipZero',
  'stopEpoch',
  'skipValidate',
  'stopTraining',
] as const;

type Flag = (typeof CONTRACT_CONTROLS)[number];

/** How the oracle reads a hook's return value at a stage. */
export type Reading =
  | { ok: true; controls: Flag[]; epoch: number | null }
  | { ok: false; key: string | null; why: string };

export function readReturn(value: unknown, stage: TraceStage, train: boolean, resuming = false): Reading {
  if (value === undefined || value === null) return { ok: true, controls: [], epoch: null };
  if (typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, key: null, why: `returned ${describe(value)}, not a control object` };
  }
  const controls: Flag[] = [];
  let epoch: number | null = null;
  for (const [key, v] of Object.entries(value)) {
    if (key === 'epoch') {
      if (stage !== 'trainBegin') return { ok: false, key, why: `epoch: N may only come from trainBegin` };
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) return { ok: false, key, why: `epoch: ${describe(v)} is not an integer ≥ 0` };
      // A resumed run starts where its checkpoint was: a second source for the start is an error.
      if (resuming) return { ok: false, key, why: `epoch: ${v} in a run resumed from a checkpoint` };
      epoch = v;
      continue;
    }
    if (!(CONTRACT_CONTROLS as readonly string[]).includes(key)) return { ok: false, key, why: `unknown control "${key}"` };
    if (typeof v !== 'boolean') return { ok: false, key, why: `${key}: ${describe(v)} is not true or false` };
    if (stage === 'jumpToEpoch' || !mayComeFrom(key, stage, train)) {
      return { ok: false, key, why: `${key} has no meaning at ${stage}${train ? '' : ' (validation)'}` };
    }
    if (v) controls.push(key as Flag);
  }
  return { ok: true, controls, epoch };
}

function describe(v: unknown): string {
  if (typeof v === 'number' || v === undefined) return String(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

// ---------------------------------------------------------------------------------------
// Stage instances: consecutive hook calls of one stage at one point of the run.

interface Token {
  stage: TraceStage;
  epoch: number;
  batchIndex: number;
  train: boolean;
  iteration: number;
  calls: HookCall[];
  /** Index of its first and one past its last hook call in the trace. */
  start: number;
  end: number;
}

function tokenize(trace: readonly HookCall[]): Token[] {
  const tokens: Token[] = [];
  trace.forEach((call, i) => {
    const last = tokens.at(-1);
    if (
      last &&
      last.stage === call.stage &&
      last.epoch === call.epoch &&
      last.train === call.train &&
      (call.stage === 'jumpToEpoch' || (last.batchIndex === call.batchIndex && last.iteration === call.iteration))
    ) {
      last.calls.push(call);
      last.end = i + 1;
    } else {
      tokens.push({ ...call, calls: [call], start: i, end: i + 1 });
    }
  });
  return tokens;
}

function show(t: { stage: TraceStage; epoch: number; batchIndex: number; train: boolean }): string {
  if (t.stage === 'jumpToEpoch') return `jumpToEpoch(${t.epoch})`;
  const where = BATCH.has(t.stage) ? ` e${t.epoch} b${t.batchIndex}` : t.stage === 'trainBegin' || t.stage === 'trainEnd' ? '' : ` e${t.epoch}`;
  return `${t.stage}${t.train ? '' : '(valid)'}${where}`;
}

// ---------------------------------------------------------------------------------------
// Layer 1: the grammar of §2, as an automaton over (stage, train) letters.
//   run        := trainBegin jump? epoch* trainEnd
//   epoch      := epochBegin trainBatch* validation? epochEnd
//   trainBatch := batchBegin lossBegin backwardBegin backwardEnd stepEnd batchEnd   (train)
//   validation := validateBegin validBatch* validateEnd                             (valid)
//   validBatch := batchBegin lossBegin batchEnd                                     (valid)
// A train batch may be cut short before batchEnd (cancelBatch); any production may be cut
// by trainEnd after an error. Neither reorders anything.

type G =
  | 'start'
  | 'afterTrainBegin'
  | 'afterJump'
  | 'resumeTrainBegin'
  | 'resumeMidEpoch'
  | 'inEpoch'
  | 'b:batchBegin'
  | 'b:lossBegin'
  | 'b:backwardBegin'
  | 'b:backwardEnd'
  | 'b:stepEnd'
  | 'inValidation'
  | 'v:batchBegin'
  | 'v:lossBegin'
  | 'afterValidation'
  | 'afterEpoch'
  | 'end';

/** The letters that may follow each grammar position; trainEnd is handled separately. */
const FOLLOW: Record<G, Record<string, G>> = {
  start: { trainBegin: 'afterTrainBegin' },
  afterTrainBegin: { jumpToEpoch: 'afterJump', epochBegin: 'inEpoch' },
  afterJump: { epochBegin: 'inEpoch' },
  // §6: resumed := trainBegin jump rest trainEnd; rest := partialEpoch epoch* | epoch*;
  //     partialEpoch := trainBatch* validation? epochEnd (no epochBegin).
  resumeTrainBegin: { jumpToEpoch: 'afterJump' },
  resumeMidEpoch: { batchBegin: 'b:batchBegin', 'validateBegin(valid)': 'inValidation', epochEnd: 'afterEpoch' },
  inEpoch: { batchBegin: 'b:batchBegin', 'validateBegin(valid)': 'inValidation', epochEnd: 'afterEpoch' },
  // cancelBatch may cut a train batch to batchEnd from any of its stages up to backwardEnd.
  'b:batchBegin': { lossBegin: 'b:lossBegin', batchEnd: 'inEpoch' },
  'b:lossBegin': { backwardBegin: 'b:backwardBegin', batchEnd: 'inEpoch' },
  'b:backwardBegin': { backwardEnd: 'b:backwardEnd', batchEnd: 'inEpoch' },
  'b:backwardEnd': { stepEnd: 'b:stepEnd', batchEnd: 'inEpoch' },
  'b:stepEnd': { batchEnd: 'inEpoch' },
  inValidation: { 'batchBegin(valid)': 'v:batchBegin', 'validateEnd(valid)': 'afterValidation' },
  'v:batchBegin': { 'lossBegin(valid)': 'v:lossBegin' },
  'v:lossBegin': { 'batchEnd(valid)': 'inValidation' },
  afterValidation: { epochEnd: 'afterEpoch' },
  afterEpoch: { epochBegin: 'inEpoch' },
  end: {},
};

/** Positions where trainEnd completes a production (no cut). */
const MAY_END: ReadonlySet<G> = new Set(['afterTrainBegin', 'afterJump', 'afterEpoch']);

function letter(t: Token): string {
  if (t.stage === 'jumpToEpoch') return t.stage;
  // ctx.train is false exactly from validateBegin to validateEnd (docs/loop.md).
  return t.train ? t.stage : `${t.stage}(valid)`;
}

function checkGrammar(tokens: readonly Token[], failed: boolean, resume: ResumeConfig | null): string[] {
  let g: G = 'start';
  for (const [i, t] of tokens.entries()) {
    const l = letter(t);
    // A resumed run: jump is not optional, and a mid-epoch checkpoint continues inside its epoch.
    if (resume && g === 'afterTrainBegin') g = 'resumeTrainBegin';
    if (resume && resume.batchIndex > 0 && g === 'afterJump' && i > 0 && tokens[i - 1]!.stage === 'jumpToEpoch') g = 'resumeMidEpoch';
    if (l === 'trainEnd') {
      if (g === 'start') return [`grammar §2: the run must begin with trainBegin, got trainEnd first`];
      if (g === 'end') return [`grammar §2: trainEnd ran twice (token ${i})`];
      if ((!MAY_END.has(g) || (resume && g === 'afterTrainBegin') || (resume && resume.batchIndex > 0 && g === 'afterJump')) && !failed) {
        return [`grammar §2: trainEnd cut a production short at ${show(tokens[i - 1]!)} although no error ended the run`];
      }
      g = 'end';
      continue;
    }
    const next: G | undefined = FOLLOW[g][l];
    if (!next) {
      if (g === 'resumeTrainBegin') return [`grammar §6: a resumed run calls jumpToEpoch right after trainBegin, got ${show(t)}`];
      if (g === 'resumeMidEpoch') return [`grammar §6: a run resumed mid-epoch goes on with that epoch (no epochBegin), got ${show(t)}`];
      const prev = i === 0 ? 'the start' : show(tokens[i - 1]!);
      const allowed = [...Object.keys(FOLLOW[g]), ...(g === 'start' || g === 'end' ? [] : ['trainEnd'])];
      return [`grammar §2: ${show(t)} cannot follow ${prev}; allowed there: ${allowed.join(', ') || 'nothing'}`];
    }
    g = next;
  }
  if (g !== 'end') return [`grammar §2: the run does not end with trainEnd (last: ${tokens.length ? show(tokens.at(-1)!) : 'nothing'})`];
  return [];
}

// ---------------------------------------------------------------------------------------
// Layer 2: the rules of §3–§4.

/** Ends the predictive walk (the trace diverged, or an error cut the run). */
class Stop extends Error {}

interface Fault {
  /** Hook calls made before it (a hook's own call included). */
  at: number;
  kind: 'hook' | 'control' | 'work';
  call?: HookCall;
  reading?: Extract<Reading, { ok: false }>;
  error?: unknown;
}

interface Want {
  epoch: number;
  /** Checked in batch stages only (elsewhere the contract leaves ctx.batchIndex open). */
  batchIndex?: number;
  train: boolean;
}

/** The first error of the run: a hook that threw, a hook that returned what §3 rejects, or the work. */
function firstFaultOf(trace: readonly HookCall[], work: WorkFault | null, resuming: boolean): Fault | null {
  let fault: Fault | null = null;
  for (const [i, call] of trace.entries()) {
    if ('threw' in call) {
      fault = { at: i + 1, kind: 'hook', call, error: call.threw };
      break;
    }
    const reading = readReturn(call.returned, call.stage, call.train, resuming);
    if (!reading.ok) {
      fault = { at: i + 1, kind: 'control', call, reading };
      break;
    }
  }
  if (work && (fault === null || work.afterCalls < fault.at)) fault = { at: work.afterCalls, kind: 'work', error: work.error };
  return fault;
}

const faultyIn = (resuming: boolean) => (c: HookCall) => 'threw' in c || !readReturn(c.returned, c.stage, c.train, resuming).ok;

export function checkTrace(input: CheckInput): CheckResult {
  const { trace, config, outcome } = input;
  const violations: string[] = [];
  const batches: BatchVerdict[] = [];
  const v = (m: string) => violations.push(m);

  // §2: callbacks run by ascending order, ties in the order given (a stable sort).
  const runOrder = config.callbacks
    .map((c, i) => ({ c, i }))
    .sort((a, b) => a.c.order - b.c.order || a.i - b.i)
    .map((x) => x.c);
  const jumpers = runOrder.filter((c) => c.jumps !== false);
  // With no callbacks no hook runs, yet the rules still say what every train batch steps with.
  const silent = runOrder.length === 0;
  const tokens = tokenize(trace);
  const resume = config.resume ?? null;
  const faulty = faultyIn(resume !== null);
  const fault = firstFaultOf(trace, input.workFault ?? null, resume !== null);
  const failed = fault !== null;

  if (silent) {
    if (trace.length) v(`with no callbacks no hook may run, but ${trace.length} ran`);
  } else {
    violations.push(...checkGrammar(tokens, failed, resume));
  }

  // Each stage instance: every callback in run order or, where an error cut the stage,
  // the run order up to the callback that failed and no further.
  for (const t of tokens) {
    const expected = (t.stage === 'jumpToEpoch' ? jumpers : runOrder).map((c) => c.name);
    const got = t.calls.map((c) => c.callback);
    const cutAt = t.calls.findIndex(faulty);
    const want = cutAt >= 0 ? expected.slice(0, cutAt + 1) : expected;
    if (cutAt >= 0 && cutAt !== got.length - 1) {
      v(`§4 at ${show(t)}: ${got[cutAt]} failed, yet ${got.slice(cutAt + 1).join(', ')} still ran in that stage`);
    } else if (got.join() !== want.join()) {
      v(`§2 order within ${show(t)}: callbacks ran as [${got.join(', ')}], expected [${want.join(', ')}] (ascending order, ties as given)`);
    }
  }

  // The predictive walk: each stage instance the rules expect, in turn.
  let k = 0;
  let iteration = 0;
  let lastSeen = 'the start';
  let stopTraining: string | null = null;
  let epochFlags: Partial<Record<Flag, string>> = {};
  let batchFlags: Partial<Record<Flag, string>> = {};
  let kept: string[] = [];
  let requestedEpochs: { value: number; by: string }[] = [];

  const next = (stage: TraceStage, want: Want, why: string): Token => {
    const shown = show({ stage, batchIndex: -1, ...want });
    if (silent || (stage === 'jumpToEpoch' && jumpers.length === 0)) {
      return { stage, batchIndex: -1, ...want, iteration, calls: [], start: trace.length, end: trace.length };
    }
    const t = tokens[k];
    if (failed) {
      const trainEndNow = t?.stage === 'trainEnd' && stage !== 'trainEnd';
      if (trainEndNow && t.start < fault.at) v(`§3 after ${lastSeen}: expected ${shown} (${why}), got trainEnd before any error`);
      if (t === undefined || trainEndNow) throw new Stop();
      if (t.start >= fault.at && t.stage !== 'trainEnd') {
        v(`§4: after the error (hook call #${fault.at}) only trainEnd may run, got ${show(t)}`);
        throw new Stop();
      }
    }
    if (t === undefined) {
      v(`§3 after ${lastSeen}: expected ${shown} (${why}), but nothing more ran`);
      throw new Stop();
    }
    if (t.stage !== stage || t.train !== want.train) {
      v(`§3 after ${lastSeen}: expected ${shown} (${why}), got ${show(t)}`);
      throw new Stop();
    }
    if (stage !== 'trainEnd' && t.epoch !== want.epoch) v(`§5 ${show(t)}: ctx.epoch is ${t.epoch}, expected ${want.epoch}`);
    if (stage !== 'jumpToEpoch') {
      if (want.batchIndex !== undefined && t.batchIndex !== want.batchIndex) {
        v(`§5 ${show(t)}: ctx.batchIndex is ${t.batchIndex}, expected ${want.batchIndex}`);
      }
      if (t.iteration !== iteration) v(`§5 ${show(t)}: ctx.iteration is ${t.iteration}, expected ${iteration} (train batches done before it)`);
    }
    k++;
    lastSeen = show(t);
    return t;
  };

  /** What a stage instance asks for: its hooks' controls, then its callbacks' guards, read on leaving it. */
  const leave = (t: Token, at: Position): Map<Flag, string> => {
    const flags = new Map<Flag, string>();
    if (t.calls.some(faulty)) return flags;
    for (const call of t.calls) {
      const r = readReturn(call.returned, at.stage, at.train, resume !== null) as Extract<Reading, { ok: true }>;
      for (const c of r.controls) if (!flags.has(c)) flags.set(c, `${call.callback} at ${show(at)}`);
      if (r.epoch !== null) requestedEpochs.push({ value: r.epoch, by: call.callback });
      // A stop asked for from a hook reaches the machine once the stage is done: stopTraining from there.
      if (call.stopped && !flags.has('stopTraining')) flags.set('stopTraining', `learn.stop() by ${call.callback} at ${show(at)}`);
    }
    for (const cb of runOrder) {
      for (const guard of cb.guards ?? []) {
        const flag = guard.control as Flag;
        if (!flags.has(flag) && mayComeFrom(flag, at.stage, at.train) && guard.fires(at)) flags.set(flag, `guard of ${cb.name} at ${show(at)}`);
      }
    }
    // A stage at whose end the work failed never got to pass on its controls (the machine had them,
    // though, when it rested there: a quiet point's observer sees them).
    if (failed && t.start < fault.at && fault.at <= t.end && fault.kind === 'work') return flags;
    for (const [flag, by] of flags) {
      if (flag === 'stopTraining') stopTraining ??= by;
      else if (flag === 'stopEpoch' || flag === 'skipValidate') epochFlags[flag] ??= by;
      else batchFlags[flag] ??= by;
    }
    return flags;
  };

  // §6: at each quiet point (a train batchEnd, an epochEnd whose hooks all ran) exactly one
  // observer call, after the last of its hooks, saying where a resumed run would continue.
  const quiet = input.quietCalls;
  const checkQuiet = (t: Token, s: Stage, want: Want, own: Map<Flag, string>) => {
    if (!quiet || silent) return;
    const isQuiet = (s === 'batchEnd' && want.train) || s === 'epochEnd';
    if (!isQuiet) return;
    const complete = t.calls.length === runOrder.length && !t.calls.some(faulty);
    const here = quiet.filter((q) => q.traceLength === t.end);
    if (!complete) {
      if (here.length) v(`§6 ${show(t)} did not complete (an error), yet a quiet point was observed after it`);
      return;
    }
    if (here.length !== 1) {
      v(`§6 after ${show(t)} (all its hooks run) exactly one quiet point must be observed, got ${here.length}`);
      return;
    }
    const q = here[0]!;
    const expected =
      s === 'batchEnd'
        ? {
            epoch: want.epoch,
            batchIndex: want.batchIndex! + 1,
            iteration: iteration + 1,
            stopEpoch: !!epochFlags.stopEpoch || own.has('stopEpoch'),
            skipValidate: !!epochFlags.skipValidate || own.has('skipValidate'),
          }
        : { epoch: want.epoch + 1, batchIndex: 0, iteration, stopEpoch: false, skipValidate: false };
    if (JSON.stringify(q.resume) !== JSON.stringify(expected)) {
      v(`§6 the quiet point after ${show(t)} resumes at ${JSON.stringify(q.resume)}, expected ${JSON.stringify(expected)}`);
    }
    if (q.stage !== s) v(`§6 the quiet point after ${show(t)} says stage ${q.stage}`);
    const stopping = !!stopTraining || own.has('stopTraining');
    if (q.stopping !== stopping) v(`§6 the quiet point after ${show(t)} says stopping ${q.stopping}, expected ${stopping}`);
  };

  const stage = (s: Stage, want: Want, why: string) => {
    const t = next(s, want, why);
    const own = leave(t, { stage: s, epoch: want.epoch, batchIndex: want.batchIndex ?? t.batchIndex, train: want.train, iteration });
    checkQuiet(t, s, want, own);
  };

  const trainBatch = (epoch: number, b: number) => {
    batchFlags = {};
    const at = { epoch, batchIndex: b, train: true };
    const cancelled = () => batchFlags.cancelBatch;
    let stepWith: string[] | null = null;
    stage('batchBegin', at, `train batch ${b + 1} of ${config.nTrain}`);
    if (!cancelled()) stage('lossBegin', at, 'after batchBegin');
    if (!cancelled()) stage('backwardBegin', at, 'after lossBegin in a train batch');
    if (!cancelled()) stage('backwardEnd', at, batchFlags.skipBackward ? `skipBackward by ${batchFlags.skipBackward} still runs backwardEnd` : 'after backwardBegin');
    if (!cancelled()) {
      // docs/loop.md: the step uses the gradients kept by skipZero plus this batch's own (none after skipBackward).
      const grads = batchFlags.skipBackward ? [...kept] : [...kept, `e${epoch}b${b}`];
      stepWith = batchFlags.skipStep || grads.length === 0 ? null : grads;
      stage('stepEnd', at, batchFlags.skipStep ? `skipStep by ${batchFlags.skipStep} still runs stepEnd` : 'after backwardEnd');
      kept = batchFlags.skipZero ? grads : [];
    }
    const why = cancelled() ? `cancelBatch by ${cancelled()}: the rest of the batch is skipped, batchEnd still runs` : 'after stepEnd';
    stage('batchEnd', at, why);
    iteration++; // a cancelled batch counts too (docs/loop.md)
    batches.push({ epoch, batchIndex: b, stepWith });
  };

  const validation = (epoch: number) => {
    stage('validateBegin', { epoch, train: false }, 'validation is due this epoch');
    for (let b = 0; b < config.nValid; b++) {
      const at = { epoch, batchIndex: b, train: false };
      stage('batchBegin', at, `validation batch ${b + 1} of ${config.nValid} (a validation pass under way runs to its end)`);
      stage('lossBegin', at, 'after batchBegin');
      stage('batchEnd', at, 'after lossBegin in validation');
    }
    stage('validateEnd', { epoch, train: false }, `the ${config.nValid} validation batches ran`);
  };

  /** An epoch from its start, or (resumed mid-epoch, §6) from train batch `from` without epochBegin. */
  const runEpoch = (epoch: number, from = 0) => {
    if (from === 0) {
      epochFlags = {};
      stage('epochBegin', { epoch, train: true }, `epoch ${epoch} of ${config.nEpochs}`);
    } else {
      // The half-done epoch's flags come back from the checkpoint.
      epochFlags = { ...(resume!.stopEpoch ? { stopEpoch: 'the checkpoint' } : {}), ...(resume!.skipValidate ? { skipValidate: 'the checkpoint' } : {}) };
    }
    for (let b = from; b < config.nTrain && !epochFlags.stopEpoch && !stopTraining; b++) trainBatch(epoch, b);
    const ended = [
      epochFlags.stopEpoch && `stopEpoch by ${epochFlags.stopEpoch}`,
      stopTraining && `stopTraining by ${stopTraining}`,
    ].filter(Boolean);
    if (config.validate && !epochFlags.skipValidate) {
      validation(epoch);
    }
    const why = !config.validate
      ? 'no validation data'
      : epochFlags.skipValidate
        ? `skipValidate by ${epochFlags.skipValidate}`
        : 'after validation';
    stage('epochEnd', { epoch, train: true }, ended.length ? `${why}; ${ended.join(', ')}` : why);
  };

  try {
    stage('trainBegin', { epoch: 0, train: true }, 'trainBegin runs first');
    let start = 0;
    if (resume) {
      // §6: jumpToEpoch on every callback (also at epoch 0), then where the checkpoint was.
      const jt = next('jumpToEpoch', { epoch: resume.epoch, train: true }, 'a resumed run calls jumpToEpoch after trainBegin');
      if (jt.calls.some((c) => 'threw' in c)) throw new Stop();
      if (jt.calls.some((c) => c.stopped)) stopTraining ??= `learn.stop() in jumpToEpoch`;
      iteration = resume.iteration;
      kept = [...resume.carried];
      start = resume.epoch;
      if (resume.batchIndex > 0) {
        runEpoch(resume.epoch, resume.batchIndex);
        start = resume.epoch + 1;
      }
    } else if (requestedEpochs.length) {
      const t = tokens[k];
      // The contract does not say which of several `epoch: N` wins: the one the run used must be one of them.
      const used = !silent && t?.stage === 'jumpToEpoch' ? requestedEpochs.find((r) => r.value === t.epoch) : undefined;
      const chosen = used ?? requestedEpochs.find((r) => r.value === 0) ?? requestedEpochs.at(-1)!;
      // §1: jumpToEpoch runs once per callback, only when starting at an epoch > 0.
      if (chosen.value > 0) {
        const jt = next('jumpToEpoch', { epoch: chosen.value, train: true }, `epoch: ${chosen.value} from ${chosen.by}`);
        if (jt.calls.some((c) => 'threw' in c)) throw new Stop();
        if (jt.calls.some((c) => c.stopped)) stopTraining ??= `learn.stop() in jumpToEpoch`;
      }
      start = chosen.value;
      // §5: iteration counts train batches of the whole run, so epochs jumped over count as done.
      if (start > 0) iteration = Math.min(start, config.nEpochs) * config.nTrain;
    }
    for (let e = start; e < config.nEpochs && !stopTraining; e++) runEpoch(e);
    const why = stopTraining
      ? `stopTraining by ${stopTraining}`
      : resume
        ? `the run resumed at epoch ${resume.epoch}, batch ${resume.batchIndex} ran to its end`
        : start >= config.nEpochs && start > 0
        ? `epoch: ${start} ≥ nEpochs runs no epoch`
        : `the ${config.nEpochs} epochs ran`;
    next('trainEnd', { epoch: -1, train: true }, why);
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
    if (failed && !silent && !violations.some((m) => m.startsWith('§3') || m.startsWith('§4:'))) {
      const t = tokens[k];
      if (!t || t.stage !== 'trainEnd') v(`§4: after the error, trainEnd must run (got ${t ? show(t) : 'nothing'})`);
      else k++;
    }
  }
  if (!silent && k < tokens.length && !violations.some((m) => m.startsWith('§3') || m.startsWith('§4:'))) {
    v(`§2: after trainEnd nothing may run, got ${show(tokens[k]!)}`);
  }

  if (quiet && !silent) {
    // Read from the trace itself, not the walk (which stops where the run first diverged).
    const quietEnds = new Set(tokens.filter((t) => (t.stage === 'batchEnd' && t.train) || t.stage === 'epochEnd').map((t) => t.end));
    for (const q of quiet) {
      if (!quietEnds.has(q.traceLength)) v(`§6 a quiet point was observed after hook call #${q.traceLength}, which ends no train batchEnd or epochEnd`);
    }
  }

  // §4: trainEnd sees ctx.error, the error that ended the run before trainEnd (none otherwise).
  if ('error' in outcome) {
    const trainEndAt = trace.findIndex((c) => c.stage === 'trainEnd');
    const want = failed && fault.at <= trainEndAt ? outcome.error : null;
    for (const call of trace) {
      if (call.stage !== 'trainEnd' || !('error' in call)) continue;
      if ((call.error ?? null) !== (want ?? null)) {
        v(`§4 ${call.callback}.onTrainEnd saw ctx.error = ${describe(errorText(call.error))}, expected ${describe(errorText(want))}`);
      }
    }
  }

  // The outcome: failed after an error, stopped when stopTraining was set, completed otherwise.
  const status = failed ? 'failed' : stopTraining ? 'stopped' : 'completed';
  if (outcome.status !== status) {
    const why = failed ? `the error at hook call #${fault.at} (${fault.kind})` : stopTraining ? `stopTraining by ${stopTraining}` : 'no stop, no error';
    v(`status is ${outcome.status}, expected ${status} (${why})`);
  }
  if ('error' in outcome) violations.push(...checkError(outcome.error, fault));

  // §3: a guard is read on leaving a stage its control may come from, after that stage's hooks.
  for (const g of input.guardCalls ?? []) {
    if (!mayComeFrom(g.control, g.stage, g.train)) {
      v(`§3 guard ${g.control} of ${g.callback} was evaluated at ${show(g)}, where ${g.control} may not come from`);
      continue;
    }
    if (silent) continue;
    const t = tokens.find((x) => x.start < g.traceLength && g.traceLength <= x.end);
    const left = t && t.end === g.traceLength && t.stage === g.stage && t.epoch === g.epoch && t.train === g.train;
    if (!left || t.calls.length !== runOrder.length) {
      v(`§3 guard ${g.control} of ${g.callback} at ${show(g)} was not read as that stage was left (after all its hooks)`);
    }
  }

  // What each train batch did to the weights, when the engine can tell.
  if (input.steps && !(silent && failed)) {
    const byKey = new Map(input.steps.map((s) => [`e${s.epoch}b${s.batchIndex}`, s]));
    for (const bv of batches) {
      const s = byKey.get(`e${bv.epoch}b${bv.batchIndex}`);
      if (!s) {
        v(`engine: train batch e${bv.epoch} b${bv.batchIndex} ran, but the engine never loaded it`);
        continue;
      }
      const got = s.contributors === null ? null : [...s.contributors];
      const list = (x: string[] | null) => (x ? `the gradients of [${x.join(', ')}]` : 'no step (weights unchanged)');
      if (JSON.stringify(got) !== JSON.stringify(bv.stepWith)) {
        v(`§3 the step of train batch e${bv.epoch} b${bv.batchIndex} used ${list(got)}, expected ${list(bv.stepWith)}`);
      }
      if (bv.stepWith === null && s.after && s.after.some((w, i) => w !== s.before[i])) {
        v(`§3 the weights changed in train batch e${bv.epoch} b${bv.batchIndex}, where no step may be applied`);
      }
    }
    if (!failed) {
      const ran = new Set(batches.map((b) => `e${b.epoch}b${b.batchIndex}`));
      for (const s of input.steps) {
        if (!ran.has(`e${s.epoch}b${s.batchIndex}`)) v(`engine: it loaded train batch e${s.epoch} b${s.batchIndex}, which the rules say never runs`);
      }
    }
  }

  return { violations, batches };
}

function errorText(e: unknown): string | null {
  if (e === null || e === undefined) return null;
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

interface NamedError {
  name: string;
  message: string;
  stage?: unknown;
  callback?: unknown;
  key?: unknown;
  cause?: unknown;
}

/** §4: the run rejects with an error naming the stage and, for a hook, the callback; a bad control also names the key. */
function checkError(error: unknown, fault: Fault | null): string[] {
  if (!fault) return error ? [`no error was expected, got ${describe(errorText(error))}`] : [];
  if (!(error instanceof Error)) return [`the run failed, so it must end with an Error, got ${describe(error)}`];
  const e = error as unknown as NamedError;
  const out: string[] = [];
  const call = fault.call;
  // The jump row of §1 belongs to trainBegin ("after all onTrainBegin"); either name is fine.
  const names = (stage: TraceStage) =>
    stage === 'jumpToEpoch' ? ['trainBegin', 'jumpToEpoch', 'jump'].includes(String(e.stage)) : e.stage === stage;
  if (fault.kind === 'control') {
    const r = fault.reading!;
    if (e.name !== 'ControlError') out.push(`an invalid control (${r.why}) must fail the run with a ControlError, got ${e.name}: ${e.message}`);
    if (e.callback !== call!.callback) out.push(`the ControlError must name callback ${call!.callback}, names ${describe(e.callback)}`);
    if (!names(call!.stage)) out.push(`the ControlError must name stage ${call!.stage}, names ${describe(e.stage)}`);
    if (r.key !== null && e.key !== r.key) out.push(`the ControlError must name key "${r.key}" (${r.why}), names ${describe(e.key)}`);
    const msg = e.message.toLowerCase();
    if (!msg.includes(call!.callback.toLowerCase()) || !msg.includes(call!.stage.toLowerCase()) || (r.key !== null && !msg.includes(r.key.toLowerCase()))) {
      out.push(`the ControlError's message must name callback, stage and key: "${e.message}"`);
    }
    return out;
  }
  if (e.name !== 'StageError') out.push(`an exception in the loop must fail the run with a StageError, got ${e.name}: ${e.message}`);
  if (e.cause !== fault.error) out.push(`the StageError's cause must be the exception thrown, is ${describe(errorText(e.cause))}`);
  if (fault.kind === 'hook') {
    if (e.callback !== call!.callback) out.push(`the StageError must name callback ${call!.callback}, names ${describe(e.callback)}`);
    if (!names(call!.stage)) out.push(`the StageError must name stage ${call!.stage}, names ${describe(e.stage)}`);
    if (!e.message.includes(call!.callback)) out.push(`the StageError's message must name the callback: "${e.message}"`);
  } else {
    if (e.callback !== null) out.push(`an exception from the work names no callback, yet the StageError names ${describe(e.callback)}`);
    if (typeof e.stage !== 'string' || e.stage.length === 0) out.push(`the StageError must name a stage`);
  }
  return out;
}
