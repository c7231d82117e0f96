/**
 * The callback stages of the training loop, declared once (contract §1).
 * Everything else — the machine, the Callback class, the dry run, the visualizer —
 * reads this list instead of restating it.
 */
export const STAGES = [
  'trainBegin',
  'epochBegin',
  'batchBegin',
  'lossBegin',
  'backwardBegin',
  'backwardEnd',
  'stepEnd',
  'batchEnd',
  'validateBegin',
  'validateEnd',
  'epochEnd',
  'trainEnd',
] as const;

export type Stage = (typeof STAGES)[number];

/** The hook a callback implements for each stage: `trainBegin` → `onTrainBegin`. */
export type HookName = `on${Capitalize<Stage>}`;

export function hookNameOf(stage: Stage): HookName {
  return `on${stage[0]!.toUpperCase()}${stage.slice(1)}` as HookName;
}

/** Stages that only ever run in a training batch (never during validation). */
export const TRAIN_ONLY_STAGES: ReadonlySet<Stage> = new Set(['backwardBegin', 'backwardEnd', 'stepEnd']);

/** Stages that belong to a batch (train or validation). */
export const BATCH_STAGES: ReadonlySet<Stage> = new Set([
  'batchBegin',
  'lossBegin',
  'backwardBegin',
  'backwardEnd',
  'stepEnd',
  'batchEnd',
]);

/** What each stage means, for the dry run and the visualizer. */
export const STAGE_DOC: Record<Stage, string> = {
  trainBegin: 'once, first',
  epochBegin: 'start of every epoch',
  batchBegin: 'each batch, train and validation (ctx.train tells)',
  lossBegin: 'after the forward pass, before the loss is computed',
  backwardBegin: 'train only: after the loss, before gradients',
  backwardEnd: 'train only: gradients exist, before the optimizer step',
  stepEnd: 'train only: after the step, before gradients are zeroed',
  batchEnd: 'each batch, train and validation',
  validateBegin: 'before the validation pass of an epoch',
  validateEnd: 'after the validation pass (metrics are final here)',
  epochEnd: 'end of every epoch that began',
  trainEnd: 'once, last — also after a stop or an error',
};
