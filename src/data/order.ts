/**
 * Ordering and batching: which samples make batch i of epoch e. The order is a function of
 * (seed, epoch) alone — the identity without shuffle, else a Fisher–Yates permutation drawn
 * from `Rng.derive(seed, epoch)` — so any batch of any epoch can be served without replaying
 * earlier epochs, and a run resumed mid-epoch gets exactly the batches the original run got.
 */
import { Rng } from '../rng.js';
import type { TargetArray } from './ingest.js';

// Rows shorter than this are copied element by element: a subarray view per row costs more
// than the copy itself for scalar labels or a handful of features.
const SUBARRAY_MIN_ROW = 16;

/** The sample order of `epoch`: null (the identity) without shuffle. */
export function epochOrder(seed: number, epoch: number, length: number, shuffle: boolean): Uint32Array | null {
  if (!shuffle) return null;
  const perm = new Uint32Array(length);
  for (let i = 0; i < perm.length; i++) perm[i] = i;
  return Rng.derive(seed, epoch).shuffle(perm);
}

/** Copy rows order[start … start+size) (or contiguous rows when order is null) of src into out. */
export function gather<T extends TargetArray>(
  src: T,
  out: T,
  row: number,
  order: Uint32Array | null,
  start: number,
  size: number,
): T {
  if (order === null) {
    out.set(src.subarray(start * row, (start + size) * row));
  } else if (row >= SUBARRAY_MIN_ROW) {
    for (let i = 0; i < size; i++) {
      const from = order[start + i]! * row;
      out.set(src.subarray(from, from + row), i * row);
    }
  } else {
    for (let i = 0; i < size; i++) {
      const from = order[start + i]! * row;
      const to = i * row;
      for (let j = 0; j < row; j++) out[to + j] = src[from + j]!;
    }
  }
  return out;
}

