import type * as tf from '@tensorflow/tfjs';
import { noControls, type ControlFlags } from '../../machines/controls.js';
import type { Stage } from '../../machines/stages.js';
import type { LearnerApi } from './learnerApi.js';
import type { LossReader } from './lossLog.js';

/**
 * What a hook receives (contract §5). One object per run, updated in place as the loop
 * moves, so handing it to every hook costs nothing on the per-batch path (copy a value to
 * keep it). The loop writes every field as a stage begins, before that stage's hooks run;
 * hooks only replace the tensors the field docs say they may. Full table: docs/api.md.
 */
export interface TrainContext {
  /** The stage whose hooks are running. */
  stage: Stage;
  /** 0-based epoch under way, set at epochBegin (people read it 1-based). */
  epoch: number;
  /** `fit`'s number of epochs. */
  nEpochs: number;
  /** Train batches done in the whole run before this one, set at batchBegin; a cancelled batch counts; a resumed run starts at startEpoch · nBatches. */
  iteration: number;
  /** 0-based index of the batch within the current pass (train or validation), set at batchBegin. */
  batchIndex: number;
  /** Batches in the current pass: the train loader's, from validateBegin to validateEnd the valid loader's. */
  nBatches: number;
  /** `false` from validateBegin to validateEnd inclusive, `true` everywhere else. */
  train: boolean;
  /**
   * The batch's input, set at batchBegin ([size, ...sampleShape], float32); a batchBegin hook
   * may replace it (e.g. MixUp). Freed after batchEnd, a replacement too.
   */
  lastInput: tf.Tensor | null;
  /** The batch's target, set at batchBegin; a batchBegin hook may replace it. Freed after batchEnd. */
  lastTarget: tf.Tensor | null;
  /** The model's output (from lossBegin on); a lossBegin hook may replace it. */
  lastOutput: tf.Tensor | null;
  /** The loss tensor (from backwardBegin on, in validation from batchEnd); a backwardBegin hook may replace it, and the gradients are taken of the replacement. */
  lastLoss: tf.Scalar | null;
  /**
   * `lastLoss` as a number, read once per batch when the loss is final: in a train batch after
   * backwardBegin's hooks (so a replaced loss is the one recorded; backwardBegin's guards see
   * it), in validation as batchEnd is entered. `null` before that in the batch.
   */
  lastLossValue: number | null;
  /** Debiased exponential moving average of the train loss, β = 0.98 (as fastai), after each train batch's loss; NaN before the first. */
  smoothLoss: number;
  /**
   * Calls `fn(loss, smoothLoss)` with this train batch's loss (null when it has none: a
   * cancelled batch) and the smoothed loss after it, once the loop reads them from the device:
   * in batch order, at the latest before epochEnd's hooks, when the run's state is captured
   * (a checkpoint), and when the run ends. Unlike reading `lastLossValue` it costs no host
   * read per batch: what a callback that records every batch uses (Recorder, Progress). In
   * validation it calls `fn` at once.
   */
  readLossLater(fn: LossReader): void;
  /** `{ validLoss, <metric>: value }` of the latest validation pass, set at validateEnd; kept until the next pass; null before the first. */
  lastMetrics: Record<string, number> | null;
  /**
   * The controls in force, including those returned by hooks that ran earlier in this stage
   * (e.g. a clipping callback can see that an accumulation callback asked for skipStep).
   * Read-only: return a control to set one.
   */
  controls: Readonly<ControlFlags>;
  /** The exception that ended the run; set at trainEnd only. */
  error: Error | null;
  /** The learner, through which hooks read its fields and set hyper-parameters (`lr`, `momentum`, `wd`) for the next step. */
  learn: LearnerApi;
}

/**
 * Where a run starts when it jumps or resumes, as `jumpToEpoch(epoch, at)` receives it:
 * `batchIndex` is the next train batch of `epoch` (> 0 when a checkpoint taken mid-epoch is
 * resumed: the batches before it have run, and so did the epoch's epochBegin), `iteration` the
 * train batches of the run done before it.
 */
export interface JumpPosition {
  epoch: number;
  batchIndex: number;
  iteration: number;
  /**
   * The jump resumes a checkpoint: weights, hyper-parameters and every callback's state were
   * just restored as the run left them, so there is nothing to set up, only what a previous
   * run did past this point to forget (a plain `epoch: N` jump has no such state).
   */
  fromCheckpoint: boolean;
}

/**
 * Where a context's loss fields come from: the run's loss log (src/loop/lossLog.ts), which reads
 * them from the device on demand. Outside a run: no loss yet.
 */
export interface LossSource {
  lastLossValue(): number | null;
  smoothLoss(): number;
  readLossLater(fn: LossReader): void;
}

const NO_LOSSES: LossSource = Object.freeze({
  lastLossValue: () => null,
  smoothLoss: () => Number.NaN,
  readLossLater: (fn: LossReader) => fn(null, Number.NaN),
});

/** The contexts made by `newTrainContext`, each with the way to point its loss fields elsewhere. */
const LOSS_SOURCES = new WeakMap<TrainContext, (source: LossSource) => void>();

/**
 * Points the loss fields of a context made by `newTrainContext` at `source` (a run starting);
 * false for any other object, whose loss fields the caller must define itself.
 */
export function setLossSource(ctx: TrainContext, source: LossSource): boolean {
  const point = LOSS_SOURCES.get(ctx);
  point?.(source);
  return point !== undefined;
}

/** A fresh context for a run of `nEpochs` whose train pass has `nBatches` batches. */
export function newTrainContext(learn: LearnerApi, nEpochs: number, nBatches: number): TrainContext {
  let losses = NO_LOSSES;
  // The two loss fields are accessors, added as new properties in their place in the field
  // order: an object literal with getters, or a data property redefined as an accessor later,
  // would drop the object to V8's slow (dictionary) properties, and the engine and every hook
  // read this object's fields many times a batch.
  const ctx = {
    stage: 'trainBegin',
    epoch: 0,
    nEpochs,
    iteration: 0,
    batchIndex: 0,
    nBatches,
    train: true,
    lastInput: null,
    lastTarget: null,
    lastOutput: null,
    lastLoss: null,
  } as Partial<TrainContext> as TrainContext;
  Object.defineProperty(ctx, 'lastLossValue', { enumerable: true, configurable: true, get: () => losses.lastLossValue() });
  Object.defineProperty(ctx, 'smoothLoss', { enumerable: true, configurable: true, get: () => losses.smoothLoss() });
  ctx.lastMetrics = null;
  ctx.controls = noControls();
  ctx.error = null;
  ctx.learn = learn;
  ctx.readLossLater = (fn) => losses.readLossLater(fn);
  LOSS_SOURCES.set(ctx, (source) => (losses = source));
  return ctx;
}
