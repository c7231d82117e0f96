/**
 * Annealing functions and schedules, with fastai's definitions.
 *
 * An *annealer* maps `(start, end, pos)` with `pos` in [0, 1] to a value; a *schedule* is an
 * annealer with its ends fixed, `pos → value`. `combineScheds` glues schedules into phases
 * over one run, which is how one-cycle and the LR finder are built.
 *
 *   no(start, end, pos)     = start
 *   linear(start, end, pos) = start + pos·(end − start)
 *   cos(start, end, pos)    = start + (1 + cos(π·(1 − pos)))·(end − start)/2     (fastai v2's sched_cos;
 *                             algebraically v1's end + (start − end)/2·(1 + cos(π·pos)))
 *   exp(start, end, pos)    = start·(end/start)^pos
 *   poly(p)(start, end, pos) = end + (start − end)·(1 − pos)^p                 (fastai v1's annealing_poly)
 *
 * `poly` follows fastai v1 (the usual "poly" decay: fast change first, flat at the end). fastai
 * v2's `SchedPoly` is a different curve, start + (end − start)·pos^p; both agree at p = 1.
 */
import { ConfigError } from '../errors.js';

export type Annealer = (start: number, end: number, pos: number) => number;
export type Schedule = (pos: number) => number;

export const annealNo: Annealer = (start) => start;
export const annealLinear: Annealer = (start, end, pos) => start + pos * (end - start);
export const annealCos: Annealer = (start, end, pos) => start + ((1 + Math.cos(Math.PI * (1 - pos))) * (end - start)) / 2;
export const annealExp: Annealer = (start, end, pos) => start * (end / start) ** pos;
export function annealPoly(power: number): Annealer {
  if (!Number.isFinite(power) || power < 0) throw new ConfigError(`annealPoly: power must be a finite number ≥ 0, got ${power}`);
  return (start, end, pos) => end + (start - end) * (1 - pos) ** power;
}

/** An annealer with its ends fixed (fastai's `SchedLin(start, end)` etc.). */
export function schedule(annealer: Annealer, start: number, end: number): Schedule {
  return (pos) => annealer(start, end, pos);
}

export const schedNo = (start: number, end = start): Schedule => schedule(annealNo, start, end);
export const schedLin = (start: number, end: number): Schedule => schedule(annealLinear, start, end);
export const schedCos = (start: number, end: number): Schedule => schedule(annealCos, start, end);
export const schedExp = (start: number, end: number): Schedule => {
  // start·(end/start)^pos needs both ends of one sign and non-zero, or it yields NaN mid-run.
  if (!(start * end > 0)) throw new ConfigError(`schedExp: start and end must be non-zero and of the same sign, got ${start} and ${end}`);
  return schedule(annealExp, start, end);
};
export const schedPoly = (start: number, end: number, power: number): Schedule => schedule(annealPoly(power), start, end);

/**
 * fastai's `combine_scheds(pcts, scheds)`: phase i takes the fraction `pcts[i]` of the run and
 * runs `scheds[i]` over it from its pos 0 to 1. The phase at `pos` is the last one whose start
 * is ≤ pos (so a boundary belongs to the phase it begins), and pos ≥ 1 stays in the last phase.
 * fastai computes the phase bounds in float32 tensors; here they are float64.
 */
export function combineScheds(pcts: readonly number[], scheds: readonly Schedule[]): Schedule {
  if (pcts.length === 0 || pcts.length !== scheds.length) {
    throw new ConfigError(`combineScheds: give one fraction per schedule (got ${pcts.length} fractions, ${scheds.length} schedules)`);
  }
  if (!pcts.every((p) => Number.isFinite(p) && p >= 0)) {
    throw new ConfigError(`combineScheds: fractions must be ≥ 0, got [${pcts.join(', ')}]`);
  }
  const total = pcts.reduce((a, b) => a + b, 0);
  // fastai asserts an exact sum of 1; a tolerance lets [0.1, 0.2, 0.7] (sum 1.0000000000000002) through.
  if (Math.abs(total - 1) > 1e-9) throw new ConfigError(`combineScheds: fractions must sum to 1, got ${total}`);
  const bounds = [0];
  for (const p of pcts) bounds.push(bounds.at(-1)! + p);
  const last = pcts.length - 1;
  return (pos) => {
    let idx = 0;
    for (let i = 0; i < bounds.length; i++) if (pos >= bounds[i]!) idx = i;
    idx = Math.min(idx, last);
    const width = bounds[idx + 1]! - bounds[idx]!;
    // A zero-width phase is only reached at its own bound; fastai divides by zero there (NaN).
    const actual = width > 0 ? (pos - bounds[idx]!) / width : 1;
    return scheds[idx]!(actual);
  };
}

/** fastai's `combined_cos`: cosine from `start` to `middle` over `pct` of the run, then to `end`. */
export function combinedCos(pct: number, start: number, middle: number, end: number): Schedule {
  return combineScheds([pct, 1 - pct], [schedCos(start, middle), schedCos(middle, end)]);
}
