import type * as tf from '@tensorflow/tfjs';
import { noControls, type ControlFlags } from '../../machines/controls.js';
import type { Stage } from '../../machines/stages.js';
import type { Learner } from '../learner.js';

/**
 * What a hook receives (contract §5). One object per run, updated in place as the loop
 * moves, so handing it to every hook costs nothing on the per-batch path.
 */
export interface TrainContext {
  /** The stage whose hooks are running. */
  stage: Stage;
  /** 0-based epoch under way. */
  epoch: number;
  nEpochs: number;
  /** Train batches done in the whole run, before this one. */
  iteration: number;
  /** Index of the batch within the current pass (train or validation). */
  batchIndex: number;
  /** Batches in the current pass. */
  nBatches: number;
  /** `true` in a train batch, `false` during validation. */
  train: boolean;
  /** The batch's input and target; a batchBegin hook may replace them (e.g. MixUp). */
  lastInput: tf.Tensor | null;
  lastTarget: tf.Tensor | null;
  /** The model's output (from lossBegin on); a lossBegin hook may replace it. */
  lastOutput: tf.Tensor | null;
  /** The loss tensor (from backwardBegin on, in validation from batchEnd); a backwardBegin hook may replace it, and the gradients are taken of the replacement. */
  lastLoss: tf.Scalar | null;
  /** `lastLoss` as a number, read once per batch. */
  lastLossValue: number | null;
  /** Debiased exponential moving average of the train loss, β = 0.98 (as fastai). */
  smoothLoss: number;
  /** Validation loss and metrics of the latest validation pass (final at validateEnd). */
  lastMetrics: Record<string, number> | null;
  /**
   * The controls in force, including those returned by hooks that ran earlier in this stage
   * (e.g. a clipping callback can see that an accumulation callback asked for skipStep).
   * Read-only: return a control to set one.
   */
  controls: Readonly<ControlFlags>;
  /** The exception that ended the run; set at trainEnd only. */
  error: Error | null;
  /** The learner, through which hooks read and set hyper-parameters for the next step. */
  learn: Learner;
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

/** A fresh context for a run of `nEpochs` whose train pass has `nBatches` batches. */
export function newTrainContext(learn: Learner, nEpochs: number, nBatches: number): TrainContext {
  return {
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
    lastLossValue: null,
    smoothLoss: Number.NaN,
    lastMetrics: null,
    controls: noControls(),
    error: null,
    learn,
  };
}
