/**
 * `learn.fitOneCycle()`: fastai v2's `fit_one_cycle`, the 1cycle policy.
 *
 *   lr:       cos from lrMax/divFactor up to lrMax over the first pctStart of the batches,
 *             then cos down to lrMax/finalDiv;
 *   momentum: cos from moms[0] down to moms[1], then back up to moms[2] (Adam's β1 for Adam),
 *
 * both as one `combinedCos` over the whole fit, applied per train batch by a ParamScheduler.
 */
import { ParamScheduler, type ParamSchedules } from '../callbacks/paramScheduler.js';
import { ConfigError } from './errors.js';
import type { FitOptions, FitResult, RecipeLearner } from './fitOptions.js';
import { checkKeys } from './options.js';
import { combinedCos } from './schedule/annealers.js';
import { checkpointRecipe, FIT_RECIPE } from './resume.js';

export interface FitOneCycleOptions extends Omit<FitOptions, 'lr'> {
  /** Peak learning rate (default: the learner's current lr, as fastai). */
  lrMax?: number;
  /** The lr starts at lrMax / divFactor (fastai's `div`, default 25). */
  divFactor?: number;
  /** Fraction of the batches spent warming up (default 0.25). */
  pctStart?: number;
  /** The lr ends at lrMax / finalDiv (fastai's `div_final`, default 1e5). */
  finalDiv?: number;
  /** Momentum (β1) at the start, at the peak lr, at the end (default [0.95, 0.85, 0.95]). */
  moms?: readonly [number, number, number];
}

const ONE_CYCLE_KEYS = [
  'lrMax',
  'divFactor',
  'pctStart',
  'finalDiv',
  'moms',
  'wd',
  'callbacks',
  'yieldEveryMs',
  'inspect',
  'onActor',
  'startEpoch',
  'callbackStates',
  'smoothLoss',
  'viz',
  'resumeFrom',
  'signal',
] as const satisfies ReadonlyArray<keyof FitOneCycleOptions>;
// A type error unless every option is in the list: one left out would be refused as unknown.
const allOneCycleKeys: Exclude<keyof FitOneCycleOptions, (typeof ONE_CYCLE_KEYS)[number]> extends never ? true : never = true;

/** fastai's defaults for the schedule's shape (the peak, lrMax, defaults to the learner's lr). */
export const ONE_CYCLE_DEFAULTS = { divFactor: 25, pctStart: 0.25, finalDiv: 1e5, moms: [0.95, 0.85, 0.95] as const };

/** The two schedules of one cycle, as functions of the position in the fit. */
export function oneCycleSchedules(options: Required<Pick<FitOneCycleOptions, 'lrMax'>> & FitOneCycleOptions): ParamSchedules {
  const { lrMax, divFactor = ONE_CYCLE_DEFAULTS.divFactor, pctStart = ONE_CYCLE_DEFAULTS.pctStart, finalDiv = ONE_CYCLE_DEFAULTS.finalDiv, moms = ONE_CYCLE_DEFAULTS.moms } =
    options;
  if (!(Number.isFinite(lrMax) && lrMax > 0)) throw new ConfigError(`fitOneCycle: lrMax must be a positive number, got ${lrMax}`);
  if (!(Number.isFinite(divFactor) && divFactor > 0)) throw new ConfigError(`fitOneCycle: divFactor must be > 0, got ${divFactor}`);
  if (!(Number.isFinite(finalDiv) && finalDiv > 0)) throw new ConfigError(`fitOneCycle: finalDiv must be > 0, got ${finalDiv}`);
  if (!(pctStart >= 0 && pctStart <= 1)) throw new ConfigError(`fitOneCycle: pctStart must be in [0, 1], got ${pctStart}`);
  if (!Array.isArray(moms) || moms.length !== 3 || !moms.every((m) => Number.isFinite(m) && m >= 0 && m < 1)) {
    throw new ConfigError(`fitOneCycle: moms must be three momentums in [0, 1), e.g. [0.95, 0.85, 0.95]; got ${JSON.stringify(moms)}`);
  }
  return {
    lr: combinedCos(pctStart, lrMax / divFactor, lrMax, lrMax / finalDiv),
    momentum: combinedCos(pctStart, moms[0], moms[1], moms[2]),
  };
}

export async function fitOneCycle(learn: RecipeLearner, nEpochs: number, options: FitOneCycleOptions = {}): Promise<FitResult> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigError(`fitOneCycle(nEpochs, options): options must be an object such as { lrMax: 1e-3 }, got ${JSON.stringify(options)}`);
  }
  // fastai's names (pct_start, div_final, lr_max) and fit's `lr` (one cycle's peak is lrMax) are caught here.
  checkKeys('fitOneCycle', options, ONE_CYCLE_KEYS);
  // Resumed, the schedule is the checkpoint's: options left out come from it (a mismatch in one
  // given is refused by fit, which compares the whole recipe), so the position resumes exactly.
  const saved = options.resumeFrom !== undefined ? checkpointRecipe(options.resumeFrom) : null;
  const from = saved?.kind === 'fitOneCycle' ? saved : ONE_CYCLE_DEFAULTS;
  const {
    lrMax = 'lrMax' in from ? from.lrMax : learn.lr,
    divFactor = from.divFactor,
    pctStart = from.pctStart,
    finalDiv = from.finalDiv,
    moms = from.moms,
    callbacks = [],
    ...fitOptions
  } = options;
  const scheds = oneCycleSchedules({ lrMax, divFactor, pctStart, finalDiv, moms });
  const recipe = { kind: 'fitOneCycle' as const, lrMax, divFactor, pctStart, finalDiv, moms: [...moms] as [number, number, number] };
  return learn.fit(nEpochs, { ...fitOptions, callbacks: [new ParamScheduler(scheds), ...callbacks], [FIT_RECIPE]: recipe } as FitOptions);
}
