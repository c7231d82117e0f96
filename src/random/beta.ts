/**
 * Seeded samplers for the Gamma and Beta distributions, drawing only from an `Rng`, so a
 * run that uses them (MixUp) is reproducible from its seed and resumes exactly from the
 * generator's four-word state.
 *
 * Every sampler is stateless apart from the `Rng` it is given: the normal sampler uses one
 * of Box–Muller's two outputs and drops the other, because caching the spare would be hidden
 * state a checkpoint of the `Rng` does not capture.
 */
import type { RandomStream } from '../loop/learnerApi.js';

type Rng = Pick<RandomStream, 'nextFloat'>;

/** A uniform draw in (0, 1]: safe to take the log of. */
function openUniform(rng: Rng): number {
  return 1 - rng.nextFloat();
}

/** A standard normal draw (Box–Muller, one of its two outputs). */
export function sampleNormal(rng: Rng): number {
  const u1 = openUniform(rng);
  const u2 = rng.nextFloat();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/**
 * Gamma(shape, 1) by Marsaglia & Tsang (2000). For shape < 1 it uses the identity
 * Gamma(a) = Gamma(a + 1) · U^(1/a), since the squeeze method needs shape ≥ 1.
 */
export function sampleGamma(rng: Rng, shape: number): number {
  if (!(shape > 0) || !Number.isFinite(shape)) throw new RangeError(`Gamma shape must be a positive finite number, got ${shape}`);
  if (shape < 1) {
    const boost = Math.pow(openUniform(rng), 1 / shape);
    return sampleGamma(rng, shape + 1) * boost;
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = sampleNormal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = openUniform(rng);
    // The cheap squeeze accepts almost every draw; the log test is the exact condition.
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b). */
export function sampleBeta(rng: Rng, a: number, b: number): number {
  const x = sampleGamma(rng, a);
  const y = sampleGamma(rng, b);
  const sum = x + y;
  // Both gammas can underflow to 0 for very small shapes; either end is then equally likely.
  if (sum === 0) return rng.nextFloat() < a / (a + b) ? 1 : 0;
  return x / sum;
}
