/**
 * `learn.lrFind()` (fastai v2's `Learner.lr_find`) and its four suggestion rules, ported
 * from fastai/callback/schedule.py. fastai computes them on float32 tensors; here they run
 * in float64, so results agree with fastai's to float32 precision, not bit for bit.
 */
import { LRFinder, type LRFinderOptions, type LRFinderStop } from '../callbacks/lrFinder.js';
import type { Callback } from './loop/callback.js';
import { ConfigError } from './errors.js';
import type { RecipeLearner } from './fitOptions.js';
import { checkKeys } from './options.js';
import { gradient, interp } from './numeric.js';
import type { Suggestion } from './plot/charts.js';

export interface LrFindOptions extends LRFinderOptions {
  /** More callbacks for the search's fit (the learner's own do not run during the search, but its Recorder). */
  callbacks?: Callback[];
}

const LR_FIND_KEYS = ['startLr', 'endLr', 'numIt', 'stopDiv', 'callbacks'] as const satisfies ReadonlyArray<keyof LrFindOptions>;
// A type error unless every option is in the list: one left out would be refused as unknown.
const allLrFindKeys: Exclude<keyof LrFindOptions, (typeof LR_FIND_KEYS)[number]> extends never ? true : never = true;

export interface LrSuggestions {
  /** fastai's recommendation: inside the longest descending stretch of the loss curve. */
  valley: number;
  /** Where the loss falls fastest against log(lr). */
  steep: number;
  /** A tenth of the lr with the lowest loss. */
  minimum: number;
  /** fastai's interval slide rule. */
  slide: number;
}

export interface LrFindResult {
  /** Learning rate of every batch run. */
  lrs: number[];
  /** Smoothed loss of every batch run (what fastai plots and suggests from). */
  losses: number[];
  /** Raw loss of every batch run. */
  rawLosses: number[];
  suggestions: LrSuggestions;
  /**
   * Where the plot marks each suggestion: at the suggested lr itself, on the curve — valley and
   * steep at a point of it, minimum and slide with the loss interpolated on log10(lr). (fastai's
   * plot_lr_find marks minimum at the lowest loss, a tenfold from the value it names; here
   * marker and legend agree.) Plot with `suggestionMarks(result)`.
   */
  points: Record<keyof LrSuggestions, Suggested['point']>;
  /** The suggestion fastai's lr_find returns by default. */
  recommended: 'valley';
  /** Batches run, and why the search stopped (null: it ran out of epochs before numIt). */
  iterations: number;
  stopReason: LRFinderStop | null;
  /**
   * Why no suggestion is meaningful, and what to change; null when they are. Set when fewer
   * than `MIN_SUGGESTION_POINTS` points are left for the rules (too few batches, or a loss that
   * diverged at once), or when the smoothed loss never fell below where it started. The
   * suggestions are still computed as fastai does, but they say nothing then.
   */
  warning: string | null;
}

/**
 * The fewest points of fastai's suggestion window ([numIt//10 : −5], cut at the first NaN)
 * from which a suggestion means anything: with fewer, the longest decreasing stretch that
 * `valley` looks for is a few batches of noise, and `slide` (15 points wide) cannot run.
 */
export const MIN_SUGGESTION_POINTS = 10;

/** One suggestion, with the point fastai marks on its plot. */
export interface Suggested {
  lr: number;
  point: { lr: number; loss: number };
}

const NONE: Suggested = { lr: Number.NaN, point: { lr: Number.NaN, loss: Number.NaN } };

/**
 * fastai's `valley`: the end of the longest strictly decreasing subsequence of the losses
 * (O(n²), as fastai) and its start, then the index max_start + ⌊(len/3)⌋ + ⌊(len/3)/2⌋ — half
 * way through the middle third of that stretch. As in fastai, max_start is taken when max_end
 * moves and not updated if the same i's length grows further within its inner loop.
 */
export function valley(lrs: readonly number[], losses: readonly number[]): Suggested {
  const n = losses.length;
  if (n === 0) return NONE;
  let maxStart = 0;
  let maxEnd = 0;
  const lds = new Array<number>(n).fill(1);
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++) {
      if (losses[i]! < losses[j]! && lds[i]! < lds[j]! + 1) lds[i] = lds[j]! + 1;
      if (lds[maxEnd]! < lds[i]!) {
        maxEnd = i;
        maxStart = maxEnd - lds[maxEnd]!;
      }
    }
  }
  const sections = (maxEnd - maxStart) / 3;
  const idx = maxStart + Math.trunc(sections) + Math.trunc(sections / 2);
  return { lr: lrs[idx]!, point: { lr: lrs[idx]!, loss: losses[idx]! } };
}

/**
 * fastai's `slide` (interval slide rule): with g = numpy.gradient(losses), start with the
 * right end r at the last point and l = r − lrDiff; while |g[r] − g[l]| > thresh, take
 * lrs[l] as the candidate and slide both one to the left. The suggestion is the last
 * candidate × adjustValue; its loss is interpolated on log10(lr). fastai raises for fewer
 * than lrDiff + 1 points; here that gives NaN.
 */
export function slide(
  lrs: readonly number[],
  losses: readonly number[],
  lrDiff = 15,
  thresh = 0.005,
  adjustValue = 1,
): Suggested {
  const n = losses.length;
  if (n < Math.max(2, lrDiff + 1)) return NONE;
  const grad = gradient(losses);
  // Python's negative indices: r = -1 is the last element.
  let r = n - 1;
  let l = r - lrDiff;
  let localMinLr = lrs[l]!;
  while (l >= 0 && Math.abs(grad[r]! - grad[l]!) > thresh) {
    localMinLr = lrs[l]!;
    r -= 1;
    l -= 1;
  }
  const suggestion = localMinLr * adjustValue;
  const loss = interp(Math.log10(suggestion), lrs.map(Math.log10), losses);
  return { lr: suggestion, point: { lr: suggestion, loss } };
}

/** Index of the first smallest value (torch's argmin); NaN never wins. */
function argmin(xs: readonly number[]): number {
  let best = -1;
  for (let i = 0; i < xs.length; i++) if (!Number.isNaN(xs[i]!) && (best < 0 || xs[i]! < xs[best]!)) best = i;
  return best;
}

/** The loss at the lr closest to `lr` (fastai's point lookup). */
function lossNear(lrs: readonly number[], losses: readonly number[], lr: number): number {
  let k = 0;
  for (let i = 1; i < lrs.length; i++) if (Math.abs(lrs[i]! - lr) < Math.abs(lrs[k]! - lr)) k = i;
  return losses[k]!;
}

/**
 * fastai's `minimum`: a tenth of the lr with the lowest loss. fastai's plot marks the lowest
 * loss itself, so its marker sits a tenfold away from the value it stands for; here the point
 * is the suggestion itself, on the curve (loss interpolated on log10(lr), as `slide`'s), so
 * the plot's marker and legend name the same lr.
 */
export function minimum(lrs: readonly number[], losses: readonly number[]): Suggested {
  const i = argmin(losses);
  if (i < 0) return NONE;
  const lr = lrs[i]! / 10;
  return { lr, point: { lr, loss: interp(Math.log10(lr), lrs.map(Math.log10), losses) } };
}

/**
 * fastai's `steep`: the slope (loss[i+1] − loss[i]) / (ln lr[i+1] − ln lr[i]) is most negative
 * at segment i; the suggestion is lrs[i], the segment's left end.
 */
export function steep(lrs: readonly number[], losses: readonly number[]): Suggested {
  if (losses.length < 2) return NONE;
  const grads = losses.slice(1).map((l, i) => (l - losses[i]!) / (Math.log(lrs[i + 1]!) - Math.log(lrs[i]!)));
  const i = argmin(grads);
  if (i < 0) return NONE;
  const lr = lrs[i]!;
  return { lr, point: { lr, loss: lossNear(lrs, losses, lr) } };
}

/** fastai's window of the curve the rules read: `[numIt // 10 : −5]`, cut at the first NaN loss. */
function suggestionWindow(lrs: readonly number[], losses: readonly number[], numIt: number) {
  let l = lrs.slice(Math.floor(numIt / 10), -5);
  let y = losses.slice(Math.floor(numIt / 10), -5);
  const firstNaN = y.findIndex((v) => Number.isNaN(v));
  if (firstNaN >= 0) {
    l = l.slice(0, firstNaN);
    y = y.slice(0, firstNaN);
  }
  return { l, y, cutAtNaN: firstNaN >= 0 };
}

/**
 * The four suggestions from a finder's lrs and smoothed losses, on the part fastai uses:
 * `[numIt // 10 : -5]`, cut at the first NaN loss. Any rule without enough points gives NaN.
 */
export function suggestLrs(
  lrs: readonly number[],
  losses: readonly number[],
  numIt: number,
): { suggestions: LrSuggestions; points: Record<keyof LrSuggestions, Suggested['point']> } {
  const { l, y } = suggestionWindow(lrs, losses, numIt);
  const all = { valley: valley(l, y), steep: steep(l, y), minimum: minimum(l, y), slide: slide(l, y) };
  return {
    suggestions: { valley: all.valley.lr, steep: all.steep.lr, minimum: all.minimum.lr, slide: all.slide.lr },
    points: { valley: all.valley.point, steep: all.steep.point, minimum: all.minimum.point, slide: all.slide.point },
  };
}

/** The smallest numIt whose window [numIt//10 : −5] holds MIN_SUGGESTION_POINTS points when the search runs to the end. */
function leastNumIt(): number {
  let n = 1;
  while (n - Math.floor(n / 10) - 5 < MIN_SUGGESTION_POINTS) n++;
  return n;
}

const lrText = (lr: number) => (Number.isFinite(lr) ? lr.toExponential(2).replace(/\.?0+e/, 'e') : String(lr));

/**
 * Why a finder's curve gives no meaningful suggestion (see `LrFindResult.warning`), or null.
 * `startLr` and `numIt` are the search's options, `stopReason` why it ended.
 */
export function suggestionWarning(
  lrs: readonly number[],
  losses: readonly number[],
  options: { numIt: number; startLr: number; stopReason: LRFinderStop | null },
): string | null {
  const { numIt, startLr, stopReason } = options;
  const { l, y, cutAtNaN } = suggestionWindow(lrs, losses, numIt);
  const n = l.length;
  const points = `${n} point${n === 1 ? '' : 's'}`;
  if (n < MIN_SUGGESTION_POINTS) {
    const window = `fastai's window [numIt//10 : −5] of the curve${cutAtNaN ? ', cut at the first NaN loss,' : ''} keeps ${points} (need ≥ ${MIN_SUGGESTION_POINTS})`;
    if (stopReason === 'diverged' || stopReason === 'nan') {
      const at = lrs.length ? ` (at lr ${lrText(lrs[lrs.length - 1]!)})` : '';
      return (
        `the loss ${stopReason === 'nan' ? 'became NaN' : 'diverged'} after ${lrs.length} of ${numIt} batches${at}; ${window}: ` +
        `lower startLr (now ${lrText(startLr)}), or check the model, loss and data`
      );
    }
    return `only ${lrs.length} batches ran; ${window}: raise numIt to at least ${leastNumIt()} (fastai's default is 100)`;
  }
  if (!(Math.min(...y) < y[0]!)) {
    return (
      `the smoothed loss never fell below its value at lr ${lrText(l[0]!)} (tried up to lr ${lrText(l[n - 1]!)}): no lr in that range trains this model; ` +
      `lower startLr (now ${lrText(startLr)}), or check the model, loss and data`
    );
  }
  return null;
}

/**
 * The suggestions of an lrFind result as `recorder.plotLrFind` / `lrFindChartSpec` take them:
 * each named with its value and marked at the point fastai's plot_lr_find marks it.
 */
export function suggestionMarks(result: Pick<LrFindResult, 'suggestions' | 'points'>): Record<keyof LrSuggestions, Suggestion> {
  const mark = (name: keyof LrSuggestions) => ({ lr: result.suggestions[name], point: { ...result.points[name] } });
  return { valley: mark('valley'), steep: mark('steep'), minimum: mark('minimum'), slide: mark('slide') };
}

/**
 * Runs the LR finder (see callbacks/lrFinder.ts) for enough epochs to cover `numIt` batches
 * (numIt // nBatches + 1, as fastai), then suggests learning rates. The learner is left as it
 * was: weights, optimizer state (lr included), every random stream (nested models' layers too,
 * and `learn.rng`) and the data loaders' order state are restored; its Recorder,
 * as in fastai, holds the search's record afterwards (for `recorder.plotLrFind`).
 *
 * The search is a mock run, so the learner's other callbacks sit it out (fastai's
 * `no_logging`, taken further): only its Recorder, the finder, `options.callbacks` and the
 * callbacks that shape each training step (`shapesTraining`) run.
 * Otherwise a CSVLogger would rewrite its history with the search, SaveModel would write the
 * search's weights, EarlyStopping would count the search's epochs, and one with restoreBest
 * would put the search's "best" weights back after the finder had restored the real ones.
 * The finder's restore is the last hook at trainEnd (its `restorer`), so no callback passed
 * here can undo it either.
 */
export async function lrFind(learn: RecipeLearner, options: LrFindOptions = {}): Promise<LrFindResult> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigError(`lrFind(options): options must be an object such as { numIt: 100 }, got ${JSON.stringify(options)}`);
  }
  checkKeys('lrFind', options, LR_FIND_KEYS);
  const { callbacks = [], ...finderOptions } = options;
  if (!Array.isArray(callbacks)) throw new ConfigError('lrFind: callbacks must be an array of Callback');
  const finder = new LRFinder(finderOptions);
  // The finder's own count (it raises tiny values to fastai's minimum of 6).
  const numIt = finder.numIt;
  learn.checkData();
  const nEpochs = Math.floor(numIt / learn.data.train.nBatches) + 1;

  // The learner's list is narrowed in place and put back whole, order and identity kept. The
  // set-aside callbacks stay attached: a fit already running on this learner (which makes
  // the fit below reject) keeps using them undisturbed. One of the learner's own passed in
  // `callbacks` stays where it is rather than being added again as a fit-only callback (fit
  // would detach it afterwards).
  // Callbacks that change what a training step is (MixUp, GradientAccumulation,
  // GradientClipping: `shapesTraining`) stay in, so the lr found is for the training the user
  // will run; their state is put back afterwards like everything else.
  const own = [...learn.callbacks];
  const kept = own.filter((cb) => cb === learn.recorder || cb.shapesTraining || callbacks.includes(cb));
  const keptStates = kept.filter((cb) => cb !== learn.recorder).map((cb) => [cb, cb.getState()] as const);
  const extra = callbacks.filter((cb) => !own.includes(cb));
  // The search's smoothed loss is not the learner's: a later `smoothLossState()` (a manual
  // resume, a checkpoint) must see the last real fit's.
  const smoothBefore = learn.smoothLossState();
  learn.callbacks.splice(0, learn.callbacks.length, ...kept);
  try {
    await learn.fit(nEpochs, { callbacks: [finder, ...extra, finder.restorer] });
  } finally {
    // Also when a trainEnd hook threw before the restorer's turn: the learner is left as it was.
    // (fit has detached its callbacks by now; the finder needs the learner back for this.)
    finder.attach(learn);
    finder.restoreSnapshot();
    finder.attach(null);
    // Not while another fit runs (the search was refused then, and that fit's loss is live).
    if (!learn.fitting) learn.restoreSmoothLossState(smoothBefore);
    for (const [cb, state] of keptStates) if (!callbacks.includes(cb)) cb.setState(state);
    const addedMeanwhile = learn.callbacks.filter((cb) => !kept.includes(cb));
    learn.callbacks.splice(0, learn.callbacks.length, ...own, ...addedMeanwhile);
  }
  const { suggestions, points } = suggestLrs(finder.lrs, finder.losses, numIt);
  const warning = suggestionWarning(finder.lrs, finder.losses, { numIt, startLr: finder.startLr, stopReason: finder.stopReason });
  return {
    lrs: [...finder.lrs],
    losses: [...finder.losses],
    rawLosses: [...finder.rawLosses],
    suggestions,
    points,
    recommended: 'valley',
    iterations: finder.lrs.length,
    stopReason: finder.stopReason,
    warning,
  };
}
