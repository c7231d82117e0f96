/** Small numpy equivalents shared by the LR finder's suggestions and its plot. */

/** numpy's `interp`: linear in x (xs increasing), clamped to the end values outside [xs[0], xs[n-1]]. */
export function interp(x: number, xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n === 0) return Number.NaN;
  if (x <= xs[0]!) return ys[0]!;
  if (x >= xs[n - 1]!) return ys[n - 1]!;
  let i = 1;
  while (xs[i]! < x) i++;
  return ys[i - 1]! + ((x - xs[i - 1]!) * (ys[i]! - ys[i - 1]!)) / (xs[i]! - xs[i - 1]!);
}

/** numpy's `gradient` with unit spacing: one-sided differences at the ends, central inside. */
export function gradient(y: readonly number[]): number[] {
  const n = y.length;
  if (n < 2) throw new RangeError('gradient needs at least 2 points');
  return y.map((_, i) => (i === 0 ? y[1]! - y[0]! : i === n - 1 ? y[n - 1]! - y[n - 2]! : (y[i + 1]! - y[i - 1]!) / 2));
}
