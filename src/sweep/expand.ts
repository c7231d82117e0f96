/**
 * A checked spec → its runs: every grid point × every random draw, in a fixed order.
 *
 * - The grid is the cartesian product of its lists, the first key varying slowest.
 * - The random search draws `n` configurations from an sfc32 stream seeded by `random.seed`
 *   (the project's `Rng`): the same seed gives the same configurations on every machine. The
 *   options are drawn in sorted key order, so the order they were written in changes nothing.
 *   A list is a uniform choice; `{ min, max }` is uniform, `{ min, max, log: true }` is
 *   log-uniform (uniform in log space: as many draws in [1e-5, 1e-4] as in [1e-3, 1e-2]).
 *   Integer options (batchSize, epochs, …) draw an integer in [min, max], both included.
 * - The same `n` draws are crossed with every grid point (paired comparisons across the grid).
 *
 * A run's id is its position and a hash of its whole configuration (`003-1a2b3c4d`): its
 * directory under the runs dir is `<sweep>/<id>`, so a sweep replaced by one with other
 * settings never finds the old sweep's checkpoints, and the same settings find the same run.
 */
import { createHash } from 'node:crypto';
import { Rng } from '../rng.js';
import { completeRunConfig, RUN_OPTIONS, type RunConfig, type RunOptionKey } from './runOptions.js';
import type { ParamRange, ParamValue, SweepSpec } from './spec.js';

export interface SweepRun {
  /** `<index>-<hash of config>`, e.g. `003-1a2b3c4d`. */
  id: string;
  index: number;
  /** The whole run: base, grid point and random draw, with `train`'s defaults filled in. */
  config: RunConfig;
  /** Only what the sweep varies (grid and random keys), for tables and plots. */
  params: Record<string, ParamValue>;
}

function gridPoints(grid: SweepSpec['grid']): Array<Record<string, ParamValue>> {
  let points: Array<Record<string, ParamValue>> = [{}];
  for (const [key, list] of Object.entries(grid ?? {})) {
    points = points.flatMap((p) => list!.map((v) => ({ ...p, [key]: v })));
  }
  return points;
}

function drawRange(key: RunOptionKey, range: ParamRange, rng: Rng): number {
  const { min, max, log } = range;
  const u = rng.nextFloat(); // [0, 1)
  if (RUN_OPTIONS[key].integer) {
    // Over [min, max + 1) then floored: every integer of [min, max] can come out.
    const hi = max + 1;
    const x = log ? Math.exp(Math.log(min) + u * (Math.log(hi) - Math.log(min))) : min + u * (hi - min);
    return Math.min(max, Math.max(min, Math.floor(x)));
  }
  const x = log ? Math.exp(Math.log(min) + u * (Math.log(max) - Math.log(min))) : min + u * (max - min);
  // exp(log(x)) can land a last bit outside the range: the bounds are a promise.
  return Math.min(max, Math.max(min, x));
}

function randomDraws(random: SweepSpec['random']): Array<Record<string, ParamValue>> {
  if (!random) return [{}];
  const rng = new Rng(random.seed ?? 0);
  const keys = Object.keys(random.space).sort() as RunOptionKey[];
  const draws: Array<Record<string, ParamValue>> = [];
  for (let i = 0; i < random.n; i++) {
    const draw: Record<string, ParamValue> = {};
    for (const key of keys) {
      const dim = random.space[key]!;
      draw[key] = Array.isArray(dim) ? dim[rng.nextInt(dim.length)]! : drawRange(key, dim, rng);
    }
    draws.push(draw);
  }
  return draws;
}

/** JSON with sorted keys: the same configuration always hashes the same. */
export function canonicalJson(value: Record<string, unknown>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

export function configHash(config: RunConfig): string {
  return createHash('sha256').update(canonicalJson(config as unknown as Record<string, unknown>)).digest('hex').slice(0, 8);
}

/** The spec's runs, in order (grid point outer, random draw inner). `spec` must be validated. */
export function expandSweep(spec: SweepSpec): SweepRun[] {
  const points = gridPoints(spec.grid);
  const draws = randomDraws(spec.random);
  const total = points.length * draws.length;
  const width = Math.max(3, String(total - 1).length);
  const runs: SweepRun[] = [];
  for (const point of points) {
    for (const draw of draws) {
      const index = runs.length;
      const params = { ...point, ...draw };
      const where = `run ${index} (${Object.entries(params).map(([k, v]) => `${k}=${v}`).join(', ')})`;
      const config = completeRunConfig({ ...spec.base, ...params }, where);
      runs.push({ id: `${String(index).padStart(width, '0')}-${configHash(config)}`, index, config, params });
    }
  }
  return runs;
}
