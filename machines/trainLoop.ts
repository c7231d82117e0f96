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
 */
import { assign, setup } from 'xstate';
import { noControls, type ControlFlags, type ControlName } from './controls.js';
import type { Stage } from './stages.js';
import { WORK_NAMES, type WorkName } from './work.js';

export const TAPE_OPENS = 'opensTape';
export const TAPE_CLOSES = 'closesTape';

export interface LoopInput {
  nEpochs: number;
  nTrainBatches: number;
  nValidBatches: number;
  /** Is there a validation pass at all (a validation DataLoader was given)? */
  validate: boolean;
  /** The epoch this run starts at (a resume): as if trainBegin's hooks had returned `{ epoch: firstEpoch }`. */
  firstEpoch?: number;
}

/** What went wrong, in a form that survives a persisted snapshot. */
export interface Failure {
  stage: Stage;
  callback: string | null;
  message: string;
}

export interface LoopContext extends LoopInput {
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
  failure: Failure | null;
}

export type LoopEvent = { type: 'NEXT' } | { type: 'FAIL'; failure: Failure };

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
  context: ({ input: { firstEpoch, ...input } }) => ({
    ...input,
    epoch: 0,
    iteration: 0,
    batchIndex: 0,
    train: true,
    controls: noControls(),
    jumpTo: firstEpoch ?? null,
    failure: null,
  }),
  initial: 'ready',
  // Any exception, anywhere before trainEnd: straight to trainEnd, which still runs — with
  // ctx.train true, as everywhere outside validation, even when validation was under way.
  on: { FAIL: { target: '.trainEnd', actions: ['recordFailure', 'endValidation'] } },
  states: {
    ready: { on: { NEXT: 'trainBegin' } },

    trainBegin: {
      meta: { stage: 'trainBegin' },
      entry: [hooks('trainBegin')],
      on: {
        NEXT: [
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
              meta: { stage: 'batchEnd' },
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
          meta: { stage: 'epochEnd' },
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
