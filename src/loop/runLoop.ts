import {
  assign,
  createActor,
  type Actor,
  type InspectionEvent,
  type Observer,
  type Snapshot,
} from 'xstate';
import type { Stage } from '../../machines/stages.js';
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
  type LoopInput,
} from '../../machines/trainLoop.js';
import type { Callback } from '../callback.js';
import { ControlError, StageError, TrainchartError } from '../errors.js';
import type { TrainContext } from './context.js';
import type { LoopEngine } from './engine.js';
import type { QuietPoint } from './quietPoint.js';
import { HookTable, mergeHookResult, type Requested } from './hookTable.js';
import { SmoothLoss, type SmoothLossState } from './smoothLoss.js';

export type LoopActor = Actor<typeof trainLoopMachine>;

export interface RunLoopOptions {
  engine: LoopEngine;
  table: HookTable;
  ctx: TrainContext;
  input: LoopInput;
  /** Hand control back to the event loop at least this often (ms), so a UI or server stays live. */
  yieldEveryMs?: number;
  /** XState inspection (the visualizer feeds on it). */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
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
}

export interface LoopResult {
  status: FinalStatus;
  /** What `fit` rejects with when the status is `failed`. */
  error: Error | null;
  context: LoopContext;
  smoothLoss: SmoothLossState;
  /** Epochs of this run that reached epochEnd. */
  epochsDone: number;
}

/** Where each piece of work runs, for the error that names the stage. */
const WORK_STAGE: Record<string, { stage: Stage; phase: string }> = {
  startEpoch: { stage: 'epochBegin', phase: 'data shuffle' },
  loadBatch: { stage: 'batchBegin', phase: 'data' },
  forward: { stage: 'lossBegin', phase: 'forward pass (model)' },
  markLossForBackward: { stage: 'backwardBegin', phase: 'backward pass' },
  accumulateGradients: { stage: 'backwardEnd', phase: 'gradients' },
  dropGradients: { stage: 'batchEnd', phase: 'gradients' },
  step: { stage: 'stepEnd', phase: 'optimizer step' },
  keepGradients: { stage: 'batchEnd', phase: 'gradients' },
  zeroGradients: { stage: 'batchEnd', phase: 'gradients' },
  startValidation: { stage: 'validateBegin', phase: 'metrics' },
  accumulateMetrics: { stage: 'batchEnd', phase: 'metrics' },
  finalizeMetrics: { stage: 'validateEnd', phase: 'metrics' },
  releaseBatch: { stage: 'batchEnd', phase: 'cleanup' },
  releaseRun: { stage: 'trainEnd', phase: 'cleanup' },
};

function hasNew(current: Readonly<Record<string, boolean>>, requested: Partial<Record<string, true>>) {
  for (const k in requested) if (!current[k]) return true;
  return false;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Runs one fit: creates the actor of the loop machine with the learner's work and hooks
 * provided, then sends NEXT until it is done. This driver never chooses a stage; it only
 * (a) pumps NEXT, (b) records gradients between the states the machine tags as opening and
 * closing the tape, (c) turns an exception into a FAIL event, and (d) yields to the event loop.
 */
export async function runLoop(opts: RunLoopOptions): Promise<LoopResult> {
  const { engine, table, ctx } = opts;
  const smooth = opts.smoothLoss instanceof SmoothLoss ? opts.smoothLoss : new SmoothLoss(opts.smoothLoss);
  ctx.smoothLoss = smooth.value;
  let pending: TrainchartError | null = null;
  let firstError: TrainchartError | null = null;
  let epochsDone = 0;

  const fail = (stage: Stage, callback: string | null, phase: string, cause: unknown) => {
    const error = cause instanceof ControlError ? cause : new StageError(stage, callback, phase, cause);
    if (firstError === null) firstError = error;
    pending ??= error;
  };

  /** Work skips once anything failed in this step: after an exception no further stage runs but trainEnd. */
  const doWork =
    (name: string, fn: (context: LoopContext) => void) =>
    ({ context }: { context: LoopContext }) => {
      if (pending) return;
      try {
        fn(context);
      } catch (e) {
        const where = WORK_STAGE[name]!;
        const stage = name === 'computeLoss' ? (context.train ? 'backwardBegin' : 'batchEnd') : where.stage;
        fail(stage, null, name === 'computeLoss' ? 'loss' : where.phase, e);
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

  const runHooks = (context: LoopContext, stage: Stage): Partial<LoopContext> => {
    // trainEnd runs after an error, even when cleanup on the way there (releaseBatch on
    // leaving batchEnd) threw again: that error is still pending as trainEnd is entered.
    if (pending && stage !== 'trainEnd') return {};
    syncContext(context, stage);
    if (stage === 'epochEnd') epochsDone += 1;
    if (stage === 'trainEnd') ctx.error = firstError;
    const train = context.train;
    const requested: Requested = { controls: null, jumpTo: null };
    for (const { callback, hook } of table.hooksAt(stage)) {
      try {
        mergeHookResult(hook.call(callback, ctx), callback, stage, train, requested);
        if (requested.jumpTo !== null && opts.input.startEpoch !== undefined) {
          // Two sources for where the run starts would leave the restored callback states wrong.
          throw new ControlError(
            `${callback.name}.onTrainBegin returned { epoch: ${requested.jumpTo} }, but this fit resumes at startEpoch ${opts.input.startEpoch}; drop one of the two`,
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
          ctx.controls = Object.freeze({ ...context.controls, ...requested.controls });
        }
      } catch (e) {
        fail(stage, callback.name, 'hook', e);
        return {};
      }
    }
    // Guards are read as the stage is left: its hooks have all run by now.
    for (const { callback, control, guard } of table.guardsAt(stage, train)) {
      if (requested.controls?.[control]) continue;
      let fired: boolean;
      try {
        fired = guard.call(callback, ctx) === true;
      } catch (e) {
        fail(stage, callback.name, `guard ${control}`, e);
        return {};
      }
      if (fired) (requested.controls ??= {})[control] = true;
    }
    if (requested.controls === null && requested.jumpTo === null) return {};
    const patch: Partial<LoopContext> = {};
    if (requested.controls) patch.controls = { ...context.controls, ...requested.controls };
    if (requested.jumpTo !== null) patch.jumpTo = requested.jumpTo;
    return patch;
  };

  const machine = (opts.machine ?? trainLoopMachine).provide({
    actions: {
      runHooks: assign(({ context }, params: HookParams) => runHooks(context, params.stage)),
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
      startEpoch: doWork('startEpoch', (c) => engine.startEpoch(c.epoch)),
      loadBatch: doWork('loadBatch', (c) => {
        ctx.lastLossValue = null;
        engine.loadBatch(c.train, c.batchIndex, c.epoch);
      }),
      forward: doWork('forward', (c) => engine.forward(c.train)),
      computeLoss: doWork('computeLoss', (c) => {
        const value = engine.computeLoss(c.train);
        ctx.lastLossValue = value;
        if (c.train) ctx.smoothLoss = smooth.add(value);
      }),
      markLossForBackward: doWork('markLossForBackward', () => engine.markLossForBackward()),
      accumulateGradients: doWork('accumulateGradients', () => engine.accumulateGradients()),
      dropGradients: doWork('dropGradients', () => engine.dropGradients()),
      step: doWork('step', () => engine.step()),
      keepGradients: doWork('keepGradients', () => engine.keepGradients()),
      zeroGradients: doWork('zeroGradients', () => engine.zeroGradients()),
      startValidation: doWork('startValidation', () => engine.startValidation()),
      accumulateMetrics: doWork('accumulateMetrics', () => engine.accumulateMetrics()),
      finalizeMetrics: doWork('finalizeMetrics', () => {
        ctx.lastMetrics = engine.finalizeMetrics();
      }),
      // Cleanup runs even after a failure: tensors are disposed on every path.
      releaseBatch: ({ context }) => {
        try {
          engine.releaseBatch();
        } catch (e) {
          fail(context.train ? 'batchEnd' : 'batchEnd', null, 'cleanup', e);
        }
      },
      releaseRun: () => {
        try {
          engine.releaseRun();
        } catch (e) {
          fail('trainEnd', null, 'cleanup', e);
        }
      },
    },
  });

  const actor = createActor(machine, {
    input: opts.input,
    ...(opts.snapshot ? { snapshot: opts.snapshot } : {}),
    ...(opts.inspect ? { inspect: opts.inspect } : {}),
  });
  // An error inside XState itself (not in our work, which is caught above) ends the actor
  // with status 'error'; observing it keeps XState from rethrowing it asynchronously.
  actor.subscribe({ error: () => {} });
  actor.start();
  opts.onActor?.(actor);

  const yieldEveryMs = opts.yieldEveryMs ?? 25;
  let lastYield = performance.now();
  const sendNext = () => actor.send(NEXT_EVENT);
  const untilTapeCloses = () => {
    do sendNext();
    while (pending === null && !actor.getSnapshot().hasTag(TAPE_CLOSES));
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

  while (actor.getSnapshot().status === 'active') {
    // A stop asked for while the loop yielded: if the machine rests at a quiet point, it is
    // that point where the stop takes effect, so observers see it again, now stopping.
    if (deliverStop()) atQuietPoint();
    if (actor.getSnapshot().hasTag(TAPE_OPENS)) {
      try {
        engine.underTape(untilTapeCloses);
      } catch (e) {
        fail('backwardBegin', null, 'backward pass', e);
      }
    } else {
      sendNext();
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
    }
    if (performance.now() - lastYield >= yieldEveryMs) {
      await yieldToEventLoop();
      lastYield = performance.now();
    }
  }

  const snapshot = actor.getSnapshot();
  if (snapshot.status === 'error') {
    // A defect in the machine or the driver, not in user code: say so plainly.
    engine.releaseRun();
    throw new TrainchartError('STAGE', `the training loop machine stopped with an internal error: ${String(snapshot.error)}`, {
      cause: snapshot.error,
    });
  }
  const status = (typeof snapshot.value === 'string' ? snapshot.value : 'failed') as FinalStatus;
  return { status, error: firstError, context: snapshot.context, smoothLoss: smooth.getState(), epochsDone };
}

export { HookTable };
