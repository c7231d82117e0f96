/**
 * The definition of a (batch-broadcast) matrix product written as plain loops in float64, and
 * the helpers the matmul kernel tests share: random operands, shapes of a case, the error
 * measure. A reference that does not use any matmul kernel.
 */
import { expect } from 'vitest';
import type { Rng } from '../../src/rng.js';

export const size = (s: readonly number[]) => s.reduce((p, q) => p * q, 1);

/** Uniform values in [-1, 1) from `rng`. */
export function randomValues(rng: Rng, shape: number[]): Float32Array {
  const v = new Float32Array(size(shape));
  for (let i = 0; i < v.length; i++) v[i] = rng.nextFloat() * 2 - 1;
  return v;
}

/** max |got − want| relative to the largest |want|. */
export function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return diff / Math.max(scale, 1e-12);
}

/**
 * The definition: out[...batch, i, j] = Σ_k A[i, k] · B[k, j], with A = a (or aᵀ) and B = b
 * (or bᵀ) of the batch each operand broadcasts to (numpy's rule: right-aligned batch dims,
 * a dim of 1 repeats).
 */
export function referenceMatMul(a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], tA: boolean, tB: boolean) {
  const ra = aShape.length;
  const rb = bShape.length;
  const m = tA ? aShape[ra - 1]! : aShape[ra - 2]!;
  const k = tA ? aShape[ra - 2]! : aShape[ra - 1]!;
  const n = tB ? bShape[rb - 2]! : bShape[rb - 1]!;
  const ba = aShape.slice(0, -2);
  const bb = bShape.slice(0, -2);
  const r = Math.max(ba.length, bb.length);
  const pa = [...new Array<number>(r - ba.length).fill(1), ...ba];
  const pb = [...new Array<number>(r - bb.length).fill(1), ...bb];
  const outBatch = pa.map((d, i) => Math.max(d, pb[i]!));
  const out = new Float64Array(size(outBatch) * m * n);
  const coords = new Array<number>(r).fill(0);
  for (let ob = 0; ob < size(outBatch); ob++) {
    let rest = ob;
    for (let d = r - 1; d >= 0; d--) {
      coords[d] = rest % outBatch[d]!;
      rest = Math.floor(rest / outBatch[d]!);
    }
    let ia = 0;
    let ib = 0;
    for (let d = 0; d < r; d++) {
      ia = ia * pa[d]! + (pa[d] === 1 ? 0 : coords[d]!);
      ib = ib * pb[d]! + (pb[d] === 1 ? 0 : coords[d]!);
    }
    const A = (i: number, kk: number) => a[ia * m * k + (tA ? kk * m + i : i * k + kk)]!;
    const B = (kk: number, j: number) => b[ib * k * n + (tB ? j * k + kk : kk * n + j)]!;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let kk = 0; kk < k; kk++) s += A(i, kk) * B(kk, j);
        out[ob * m * n + i * n + j] = s;
      }
    }
  }
  return { values: out, shape: [...outBatch, m, n] };
}

export interface Case {
  a: number[];
  b: number[];
  tA: boolean;
  tB: boolean;
}

/** Operand shapes for out batch `batch`, per-operand batch shapes `ba`/`bb`, M×K×N and flags. */
export function makeCase(ba: number[], bb: number[], m: number, k: number, n: number, tA: boolean, tB: boolean): Case {
  return { a: [...ba, ...(tA ? [k, m] : [m, k])], b: [...bb, ...(tB ? [n, k] : [k, n])], tA, tB };
}
