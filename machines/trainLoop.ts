/**
 * The training loop, as one statechart. Read this file and you know the whole loop:
 * which stage follows which, what each control does, where the optimizer steps and where
 * gradients are zeroed. The machine only *names* the work (`forward`, `step`, …, listed in
 * work.ts) and the callback hooks (`runHooks`); the Learner supplies their implementations
 * with `.provide()`, so this file needs nothing but xstate.
 *
 * One event, NEXT, moves the loop one stage on; whoever drives the actor just sends NEXT
 * until the machine is done and never decides what comes next. FAIL carries an exception
 * thrown by a hook or by the work into the machine, which then runs trainEnd and ends `failed`.
 *
 * Gradient recording: tfjs records gradients only inside one function call
 * (`tf.variableGrads(f)`), yet lossBegin and backwardBegin must run as their own stages
 * while it records. The machine marks that stretch with two tags: the driver opens the
 * tape on leaving a state tagged `opensTape` and closes it on reaching one tagged
 * `closesTape`; every path between the two passes through `gradients`.
 *
 * Resume (contract §6): a run started with `input.resume` (a point read from a checkpoint's
 * persisted snapshot, see `machines/resume.ts`) goes trainBegin → `resume` (restore the run's
 * state, then every callback's jumpToEpoch) → the next train batch of a half-done epoch
 * (no epochBegin: it ran before the checkpoint), or its validation or epochEnd when no train
 * batch is left, or the start of the next epoch. Checkpoints are taken only in the states
 * tagged `quiet` (a train batchEnd, an epochEnd), where nothing is under way: their `meta`
 * says where a run resumed from there continues.
 *
 * STOP (`learn.stop()`, an AbortSignal, Ctrl-C) sets the stopTraining flag from outside, as a
 * hook returning `{ stopTraining: true }` would: the run ends through the machine's own path.
 */
import { assign, setup } from 'xstate';
import { noControls, type ControlFlags, type ControlName } from './controls.js';
import type { Stage } from './stages.js';
import { WORK_NAMES, type WorkName } from './work.js';

export const TAPE_OPENS = 'opensTape';
export const TAPE_CLOSES = 'closesTape';
/** A state where the whole run is at rest (no batch, tape or pass under way): a checkpoint may be taken there. */
export const QUIET = 'quiet';

/**
 * Where a resumed run continues (from a checkpoint's persisted snapshot, `resumePointOf`):
 * the next train batch `batchIndex` of `epoch` (> 0: mid-epoch, its epochBegin already ran),
 * or the start of `epoch` (batchIndex 0). `iteration` is the train batches done before it;
 * the two epoch flags are those in force in a half-done epoch (always false at an epoch's start).
 */
export interface ResumePoint {
  epoch: number;
  batchIndex: number;
  iteration: number;
  stopEpoch: boolean;
  skipValidate: boolean;
}

/** How a quiet state's position maps to the next one (its `meta.resumeAt`). */
export type ResumeAt = 'nextBatch' | 'nextEpoch';

export interface LoopInput {
  nEpochs: number;
  nTrainBatches: number;
  nValidBatches: number;
  /** Is there a validation pass at all (a validation DataLoader was given)? */
  validate: boolean;
  /** The epoch this run starts at (a resume): as if trainBegin's hooks had returned `{ epoch: firstEpoch }`. */
  firstEpoch?: number;
  /** Resume from a checkpoint at this point (contract §6): trainBegin, resume, then the point. */
  resume?: ResumePoint;
}

/** What went wrong, in a form that survives a persisted snapshot. */
export interface Failure {
  stage: Stage;
  callback: string | null;
  message: string;
}

export interface LoopContext extends Omit<LoopInput, 'resume'> {
  /** 0-based epoch under way. */
  epoch: number;
  /** Train batches done in the whole run. */
  iteration: number;
  /** Batch index within the current pass (train or validation). */
  batchIndex: number;
  train: boolean;
  controls: ControlFlags;
  /** Set by `{ epoch: N }` from trainBegin. */
  jumpTo: number | null;
  /** The checkpoint's point this run resumes from (null: a run from its start). */
  resume: ResumePoint | null;
  failure: Failure | null;
}

/** STOP: stop from outside the hooks (learn.stop(), a signal); it sets stopTraining. */
export type LoopEvent = { type: 'NEXT' } | { type: 'FAIL'; failure: Failure } | { type: 'STOP' };

export interface HookParams {
  stage: Stage;
}

const next = { type: 'NEXT' } as const satisfies LoopEvent;
export { next as NEXT_EVENT };

const control = (name: ControlName) => ({ type: 'control', params: { name } }) as const;
const hooks = (stage: Stage) => ({ type: 'runHooks', params: { stage } }) as const;

/** Work the learner implements (machines/work.ts); the defaults do nothing, so the bare machine can be walked by tests. */
const noWork = Object.fromEntries(WORK_NAMES.map((name) => [name, () => {}])) as Record<WorkName, () => void>;

export const trainLoopSetup = setup({
  types: {
    context: {} as LoopContext,
    events: {} as LoopEvent,
    input: {} as LoopInput,
  },
  actions: {
    /** Runs every callback's hook for the stage (by ascending `order`) and records their controls. */
    runHooks: assign((_args, _params: HookParams) => ({})),
    ...noWork,

    // Loop bookkeeping: pure, owned by the machine.
    beginEpoch: assign(({ context }) => ({
      batchIndex: 0,
      train: true,
      controls: { ...noControls(), stopTraining: context.controls.stopTraining },
    })),
    advanceEpoch: assign(({ context }) => ({ epoch: context.epoch + 1 })),
    // The epochs jumped over count as done: `iteration` is the train batches of the whole run.
    applyJump: assign(({ context }) => {
      const epoch = context.jumpTo ?? context.epoch;
      return { epoch, iteration: Math.min(epoch, context.nEpochs) * context.nTrainBatches };
    }),
    // The resumed run is where the checkpoint was. The epoch flags of a half-done epoch come back;
    // stopTraining never does (a stopped run resumes as if it had not stopped), but a stop
    // asked for in this run (at trainBegin, or STOP) holds.
    applyResume: assign(({ context }) => {
      const r = context.resume!;
      return {
        epoch: r.epoch,
        iteration: r.iteration,
        batchIndex: r.batchIndex,
        train: true,
        controls: { ...noControls(), stopEpoch: r.stopEpoch, skipValidate: r.skipValidate, stopTraining: context.controls.stopTraining },
      };
    }),
    requestStop: assign(({ context }) =>
      context.controls.stopTraining ? {} : { controls: { ...context.controls, stopTraining: true } },
    ),
    beginBatch: assign(({ context }) => ({
      controls: { ...context.controls, cancelBatch: false, skipBackward: false, skipStep: false, skipZero: false },
    })),
    countBatch: assign(({ context }) => ({
      batchIndex: context.batchIndex + 1,
      iteration: context.train ? context.iteration + 1 : context.iteration,
    })),
    beginValidation: assign({ train: false, batchIndex: 0 }),
    // Epoch-level stages after validation see train = true again: only validation stages say false.
    endValidation: assign({ train: true }),
    recordFailure: assign(({ context, event }) =>
      event.type === 'FAIL' && context.failure === null ? { failure: event.failure } : {},
    ),
  },
  guards: {
    control: ({ context }, params: { name: ControlName }) => context.controls[params.name],
    // Contract §1: jumpToEpoch runs only when starting at an epoch > 0 (`epoch: 0` is where a run starts anyway).
    jumpRequested: ({ context }) => context.jumpTo !== null && context.jumpTo > 0,
    failed: ({ context }) => context.failure !== null,
    resuming: ({ context }) => context.resume !== null,
    // A half-done epoch (the checkpoint's batchIndex > 0) continues where it was, without epochBegin.
    resumesTrainPass: ({ context }) =>
      context.resume!.batchIndex > 0 &&
      context.batchIndex < context.nTrainBatches &&
      !context.controls.stopEpoch &&
      !context.controls.stopTraining,
    resumesValidation: ({ context }) => context.resume!.batchIndex > 0 && context.validate && !context.controls.skipValidate,
    resumesEpochEnd: ({ context }) => context.resume!.batchIndex > 0,
    canStartEpoch: ({ context }) => context.epoch < context.nEpochs && !context.controls.stopTraining,
    canStartNextEpoch: ({ context }) => context.epoch + 1 < context.nEpochs && !context.controls.stopTraining,
    hasTrainBatch: ({ context }) =>
      context.batchIndex < context.nTrainBatches && !context.controls.stopEpoch && !context.controls.stopTraining,
    hasNextTrainBatch: ({ context }) =>
      context.batchIndex + 1 < context.nTrainBatches && !context.controls.stopEpoch && !context.controls.stopTraining,
    validationDue: ({ context }) => context.validate && !context.controls.skipValidate,
    hasValidBatch: ({ context }) => context.batchIndex < context.nValidBatches,
    hasNextValidBatch: ({ context }) => context.batchIndex + 1 < context.nValidBatches,
  },
});

export const trainLoopMachine = trainLoopSetup.createMachine({
  id: 'trainLoop',
  context: ({ input: { firstEpoch, resume, ...input } }) => ({
    ...input,
    epoch: 0,
    iteration: 0,
    batchIndex: 0,
    train: true,
    controls: noControls(),
    jumpTo: firstEpoch ?? null,
    resume: resume ?? null,
    failure: null,
  }),
  initial: 'ready',
  // Any exception, anywhere before trainEnd: straight to trainEnd, which still runs — with
  // ctx.train true, as everywhere outside validation, even when validation was under way.
  on: {
    FAIL: { target: '.trainEnd', actions: ['recordFailure', 'endValidation'] },
    STOP: { actions: 'requestStop' },
  },
  states: {
    ready: { on: { NEXT: 'trainBegin' } },

    trainBegin: {
      meta: { stage: 'trainBegin' },
      entry: [hooks('trainBegin')],
      on: {
        NEXT: [
          { guard: 'resuming', target: 'resume', actions: 'applyResume' },
          { guard: 'jumpRequested', target: 'jump', actions: 'applyJump' },
          { guard: 'canStartEpoch', target: 'epoch', actions: 'beginEpoch' },
          { target: 'trainEnd' },
        ],
      },
    },

    /** `{ epoch: N }` from trainBegin: every callback's jumpToEpoch(N), then epoch N. */
    jump: {
      entry: ['runJumpToEpoch'],
      on: {
        NEXT: [{ guard: 'canStartEpoch', target: 'epoch', actions: 'beginEpoch' }, { target: 'trainEnd' }],
      },
    },

    /**
     * Resume from a checkpoint (contract §6): the run's state comes back after every onTrainBegin
     * (which may reset), then every callback's jumpToEpoch(epoch) — also for epoch 0 — then the
     * run continues where the checkpoint was taken.
     */
    resume: {
      entry: ['restoreRun', 'runJumpToEpoch'],
      on: {
        NEXT: [
          { guard: 'resumesTrainPass', target: '#trainLoop.epoch.train', actions: 'beginBatch' },
          { guard: 'resumesValidation', target: '#trainLoop.epoch.validation' },
          { guard: 'resumesEpochEnd', target: '#trainLoop.epoch.epochEnd' },
          { guard: 'canStartEpoch', target: 'epoch', actions: 'beginEpoch' },
          { target: 'trainEnd' },
        ],
      },
    },

    epoch: {
      initial: 'epochBegin',
      states: {
        epochBegin: {
          meta: { stage: 'epochBegin' },
          entry: ['orderBatches', hooks('epochBegin')],
          on: {
            NEXT: [
              { guard: 'hasTrainBatch', target: 'train', actions: 'beginBatch' },
              { guard: 'validationDue', target: 'validation' },
              { target: 'epochEnd' },
            ],
          },
        },

        train: {
          initial: 'batchBegin',
          states: {
            batchBegin: {
              meta: { stage: 'batchBegin' },
              tags: [TAPE_OPENS],
              entry: ['loadBatch', hooks('batchBegin')],
              on: {
                NEXT: [{ guard: control('cancelBatch'), target: 'gradients' }, { target: 'lossBegin' }],
              },
            },
            lossBegin: {
              meta: { stage: 'lossBegin' },
              entry: ['forward', hooks('lossBegin')],
              on: {
                NEXT: [{ guard: control('cancelBatch'), target: 'gradients' }, { target: 'backwardBegin' }],
              },
            },
            backwardBegin: {
              meta: { stage: 'backwardBegin' },
              entry: ['computeLoss', hooks('backwardBegin')],
              on: {
                NEXT: [
                  { guard: control('cancelBatch'), target: 'gradients' },
                  { guard: control('skipBackward'), target: 'gradients' },
                  { target: 'gradients', actions: 'markLossForBackward' },
                ],
              },
            },
            /** Not a callback stage: the tape closes here and the gradients are taken. */
            gradients: {
              tags: [TAPE_CLOSES],
              on: {
                NEXT: [
                  { guard: control('cancelBatch'), target: 'batchEnd', actions: 'dropGradients' },
                  { target: 'backwardEnd', actions: 'accumulateGradients' },
                ],
              },
            },
            backwardEnd: {
              meta: { stage: 'backwardEnd' },
              entry: [hooks('backwardEnd')],
              on: {
                NEXT: [
                  { guard: control('cancelBatch'), target: 'batchEnd', actions: 'dropGradients' },
                  { guard: control('skipStep'), target: 'stepEnd' },
                  { target: 'stepEnd', actions: 'step' },
                ],
              },
            },
            stepEnd: {
              meta: { stage: 'stepEnd' },
              entry: [hooks('stepEnd')],
              on: {
                NEXT: [
                  { guard: control('skipZero'), target: 'batchEnd', actions: 'keepGradients' },
                  { target: 'batchEnd', actions: 'zeroGradients' },
                ],
              },
            },
            batchEnd: {
              // Quiet once its hooks have run: a run resumed from here continues with the next batch.
              meta: { stage: 'batchEnd', resumeAt: 'nextBatch' satisfies ResumeAt },
              tags: [QUIET],
              entry: [hooks('batchEnd')],
              exit: ['releaseBatch'],
              on: {
                NEXT: [
                  { guard: 'hasNextTrainBatch', target: 'batchBegin', actions: ['countBatch', 'beginBatch'] },
                  { guard: 'validationDue', target: '#trainLoop.epoch.validation', actions: 'countBatch' },
                  { target: '#trainLoop.epoch.epochEnd', actions: 'countBatch' },
                ],
              },
            },
          },
        },

        validation: {
          initial: 'validateBegin',
          states: {
            validateBegin: {
              meta: { stage: 'validateBegin' },
              entry: ['beginValidation', 'startValidation', hooks('validateBegin')],
              on: {
                NEXT: [{ guard: 'hasValidBatch', target: 'batchBegin', actions: 'beginBatch' }, { target: 'validateEnd' }],
              },
            },
            batchBegin: {
              meta: { stage: 'batchBegin' },
              entry: ['loadBatch', hooks('batchBegin')],
              on: { NEXT: 'lossBegin' },
            },
            lossBegin: {
              meta: { stage: 'lossBegin' },
              entry: ['forward', hooks('lossBegin')],
              on: { NEXT: 'batchEnd' },
            },
            batchEnd: {
              meta: { stage: 'batchEnd' },
              entry: ['computeLoss', 'accumulateMetrics', hooks('batchEnd')],
              exit: ['releaseBatch'],
              on: {
                NEXT: [
                  { guard: 'hasNextValidBatch', target: 'batchBegin', actions: ['countBatch', 'beginBatch'] },
                  { target: 'validateEnd', actions: 'countBatch' },
                ],
              },
            },
            validateEnd: {
              meta: { stage: 'validateEnd' },
              entry: ['finalizeMetrics', hooks('validateEnd')],
              on: { NEXT: { target: '#trainLoop.epoch.epochEnd', actions: 'endValidation' } },
            },
          },
        },

        epochEnd: {
          // Quiet once its hooks have run: a run resumed from here starts the next epoch.
          meta: { stage: 'epochEnd', resumeAt: 'nextEpoch' satisfies ResumeAt },
          tags: [QUIET],
          entry: [hooks('epochEnd')],
          on: {
            NEXT: [
              { guard: 'canStartNextEpoch', target: 'epochBegin', actions: ['advanceEpoch', 'beginEpoch'] },
              { target: '#trainLoop.trainEnd' },
            ],
          },
        },
      },
    },

    trainEnd: {
      meta: { stage: 'trainEnd' },
      entry: [hooks('trainEnd'), 'releaseRun'],
      on: {
        // An exception in trainEnd's own hooks: nothing left to run.
        FAIL: { target: 'failed', actions: 'recordFailure' },
        // Too late to stop: the run is ending, and its status is what its stages decided.
        STOP: { actions: [] },
        NEXT: [
          { guard: 'failed', target: 'failed' },
          { guard: control('stopTraining'), target: 'stopped' },
          { target: 'completed' },
        ],
      },
    },

    completed: { type: 'final' },
    stopped: { type: 'final' },
    failed: { type: 'final' },
  },
});

export type TrainLoopMachine = typeof trainLoopMachine;
export type FinalStatus = 'completed' | 'stopped' | 'failed';
export const FINAL_STATES: readonly FinalStatus[] = ['completed', 'stopped', 'failed'];
