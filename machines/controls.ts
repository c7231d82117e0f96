import { BATCH_STAGES, type Stage } from './stages.js';

/**
 * Flow control, declared once (contract §3). What every control means is written here
 * and nowhere else: the machine's guards read these flags, the runner validates hook
 * results against `allowedAt`, the dry run prints `effect`.
 */
export const CONTROL_NAMES = [
  'cancelBatch',
  'skipBackward',
  'skipStep',
  'skipZero',
  'stopEpoch',
  'skipValidate',
  'stopTraining',
] as const;

export type ControlName = (typeof CONTROL_NAMES)[number];

/** `epoch: N` is the one control with a value; it is only meaningful at trainBegin. */
export type Control = Partial<Record<ControlName, boolean>> & { epoch?: number };

export type ControlFlags = Record<ControlName, boolean>;

/** When a flag is cleared: batch flags at each batchBegin, epoch flags at each epochBegin. */
export type ControlScope = 'batch' | 'epoch' | 'run';

export interface ControlSpec {
  scope: ControlScope;
  /** May this control come from `stage` in a train (`true`) or validation (`false`) batch? */
  allowedAt(stage: Stage, train: boolean): boolean;
  /** Where it may come from, in words (dry run). */
  from: string;
  effect: string;
}


export const CONTROLS: Record<ControlName, ControlSpec> = {
  cancelBatch: {
    scope: 'batch',
    allowedAt: (s, train) => train && (s === 'batchBegin' || s === 'lossBegin' || s === 'backwardBegin' || s === 'backwardEnd'),
    from: 'batchBegin … backwardEnd (train)',
    effect: 'rest of this batch is skipped, no step, its gradients are dropped; batchEnd still runs',
  },
  skipBackward: {
    scope: 'batch',
    allowedAt: (s) => s === 'backwardBegin',
    from: 'backwardBegin',
    effect: 'no gradients this batch; backwardEnd still runs',
  },
  skipStep: {
    scope: 'batch',
    allowedAt: (s) => s === 'backwardEnd',
    from: 'backwardEnd',
    effect: 'optimizer step not applied; stepEnd still runs',
  },
  skipZero: {
    scope: 'batch',
    allowedAt: (s) => s === 'stepEnd',
    from: 'stepEnd',
    effect: 'gradients are kept and added to by the next batch (accumulation)',
  },
  stopEpoch: {
    scope: 'epoch',
    allowedAt: (s, train) => s === 'epochBegin' || (train && BATCH_STAGES.has(s)),
    from: 'epochBegin, or any train-batch stage',
    effect: 'after this batchEnd: no more train batches; validation (unless skipped), epochEnd',
  },
  skipValidate: {
    scope: 'epoch',
    allowedAt: (s, train) => s === 'epochBegin' || (train && BATCH_STAGES.has(s)),
    from: 'epochBegin, or any train-batch stage',
    effect: 'this epoch has no validation pass',
  },
  stopTraining: {
    scope: 'run',
    allowedAt: (s) => s !== 'trainEnd',
    from: 'any stage but trainEnd',
    effect:
      'as stopEpoch (a validation pass under way is finished), then after epochEnd no new epoch: trainEnd, status stopped',
  },
};

export const EPOCH_CONTROL = {
  allowedAt: (s: Stage) => s === 'trainBegin',
  from: 'trainBegin',
  effect: 'start at epoch N: jumpToEpoch(N) on every callback; N ≥ nEpochs runs no epoch',
} as const;

export function noControls(): ControlFlags {
  return {
    cancelBatch: false,
    skipBackward: false,
    skipStep: false,
    skipZero: false,
    stopEpoch: false,
    skipValidate: false,
    stopTraining: false,
  };
}

/** The controls that may come from `stage` (dry run, and which guards to evaluate there). */
export function controlsAllowedAt(stage: Stage, train: boolean): ControlName[] {
  return CONTROL_NAMES.filter((name) => CONTROLS[name].allowedAt(stage, train));
}
