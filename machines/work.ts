/**
 * The work the loop machine names — every action that is neither a callback hook (`runHooks`)
 * nor the machine's own bookkeeping (the `assign`s in trainLoop.ts). The machine places each
 * piece (which state's entry or exit, which transition); whoever drives it supplies the
 * implementation with `.provide()`. Where a piece runs is read from the machine itself
 * (`workStages` in describe.ts), never restated; this file only gives each a label for the
 * error that names it ("Training failed in stage lossBegin (forward pass (model))").
 */
export const WORK_PHASE = {
  /** Every callback's jumpToEpoch(N) (the `jump` state). */
  runJumpToEpoch: 'jumpToEpoch',
  /** Resume: puts the checkpoint's state back (weights, optimizer, callbacks, random streams, …). */
  restoreRun: 'restore from checkpoint',
  /** Fixes the order of this epoch's train batches (the seeded shuffle of epoch N). */
  orderBatches: 'data order',
  /** Makes the batch's input and target. */
  loadBatch: 'data',
  forward: 'forward pass (model)',
  /** Makes the batch's loss tensor; its value is read once it is final (after the hooks of its stage). */
  computeLoss: 'loss',
  /** The loss of this batch is what the tape differentiates (no cancel, no skipBackward). */
  markLossForBackward: 'backward pass',
  accumulateGradients: 'gradients',
  dropGradients: 'gradients',
  step: 'optimizer step',
  keepGradients: 'gradients',
  zeroGradients: 'gradients',
  startValidation: 'metrics',
  accumulateMetrics: 'metrics',
  finalizeMetrics: 'metrics',
  releaseBatch: 'cleanup',
  releaseRun: 'cleanup',
} as const;

export type WorkName = keyof typeof WORK_PHASE;

export const WORK_NAMES = Object.keys(WORK_PHASE) as WorkName[];

/** A label for an action's failure: its phase, or its own name for an action this file does not list. */
export function workPhase(action: string): string {
  return Object.hasOwn(WORK_PHASE, action) ? WORK_PHASE[action as WorkName] : action;
}
