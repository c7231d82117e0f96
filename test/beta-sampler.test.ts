import { describe, expect, it } from 'vitest';
import { sampleBeta, sampleGamma, sampleNormal } from '../src/random/beta.js';
import { Rng } from '../src/rng.js';

const N = 200_000;

function moments(draw: () => number) {
  let sum = 0;
  let sumSq = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < N; i++) {
    const v = draw();
    sum += v;
    sumSq += v * v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = sum / N;
  return { mean, variance: sumSq / N - mean * mean, min, max };
}

describe('seeded samplers (src/random/beta.ts)', () => {
  it('normal: mean 0, variance 1', () => {
    const rng = new Rng(1);
    const m = moments(() => sampleNormal(rng));
    expect(Math.abs(m.mean)).toBeLessThan(0.01);
    expect(Math.abs(m.variance - 1)).toBeLessThan(0.015);
  });

  for (const shape of [0.4, 1, 3.5]) {
    it(`Gamma(${shape}): mean = variance = shape`, () => {
      const rng = new Rng(2);
      const m = moments(() => sampleGamma(rng, shape));
      expect(m.min).toBeGreaterThanOrEqual(0);
      // Standard errors at N = 200k are ≈ sqrt(shape/N) for the mean; allow ~5 of them.
      expect(Math.abs(m.mean - shape)).toBeLessThan(5 * Math.sqrt(shape / N) + 1e-3);
      expect(Math.abs(m.variance - shape) / shape).toBeLessThan(0.03);
    });
  }

  for (const [a, b] of [
    [0.4, 0.4],
    [2, 5],
    [0.5, 3],
    [1, 1],
  ] as const) {
    it(`Beta(${a}, ${b}): mean a/(a+b), variance ab/((a+b)²(a+b+1)), values in [0, 1]`, () => {
      const rng = new Rng(3);
      const m = moments(() => sampleBeta(rng, a, b));
      const mean = a / (a + b);
      const variance = (a * b) / ((a + b) ** 2 * (a + b + 1));
      expect(m.min).toBeGreaterThanOrEqual(0);
      expect(m.max).toBeLessThanOrEqual(1);
      expect(Math.abs(m.mean - mean)).toBeLessThan(5 * Math.sqrt(variance / N));
      expect(Math.abs(m.variance - variance) / variance).toBeLessThan(0.02);
    });
  }

  it('is a function of the Rng state only: same seed, same draws; a restored state continues the stream', () => {
    const a = new Rng(9);
    const b = new Rng(9);
    const xs = Array.from({ length: 50 }, () => sampleBeta(a, 0.4, 0.4));
    const ys = Array.from({ length: 50 }, () => sampleBeta(b, 0.4, 0.4));
    expect(ys).toEqual(xs);
    const state = a.getState();
    const next = Array.from({ length: 10 }, () => sampleBeta(a, 0.4, 0.4));
    const c = new Rng(0);
    c.setState(state);
    expect(Array.from({ length: 10 }, () => sampleBeta(c, 0.4, 0.4))).toEqual(next);
  });

  it('refuses a non-positive shape', () => {
    expect(() => sampleGamma(new Rng(1), 0)).toThrow(RangeError);
  });
});
