/**
 * The LR finder refuses a range that does not grow, and says so when its curve cannot give a
 * meaningful suggestion (too few points, a loss that diverges at once or never falls) instead
 * of recommending NaN or its own start lr. Its plot marks every suggestion at the lr its
 * legend names (read back from the rendered SVG's pixels, not from the spec's code).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { LRFinder } from '../callbacks/lrFinder.js';
import { ConfigError } from '../src/errors.js';
import { Learner } from '../src/learner.js';
import { suggestionMarks, suggestLrs } from '../src/lrFind.js';
import { lrFindChartSpec } from '../src/plot/charts.js';
import { renderSvg } from '../src/plot/render.js';
import { weightsSha256 } from '../src/weightsHash.js';
import { tinyModel, tinyProblem } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A learner whose loss is `value(lr, i)` for the i-th train batch, with zero gradients (the weights never move). */
function lrDrivenLearner(value: (lr: number, i: number) => number) {
  let learn!: Learner;
  let i = 0;
  const { train } = tinyProblem(12, 0);
  const loss = (yPred: tf.Tensor) => tf.add(tf.mul(tf.mean(yPred), 0), tf.scalar(value(learn.lr, i++))) as tf.Scalar;
  learn = new Learner({ model: tinyModel(), data: { train }, loss, optimizer: 'sgd', recorder: false });
  return learn;
}

/** Falls from 2 to 1 around lr 1e-3, then rises again: a curve with a real valley. */
const valleyShaped = (lr: number) => 2 - Math.exp(-(((Math.log10(lr) + 3) / 1.2) ** 2));

describe('the LR finder refuses a range that does not grow', () => {
  it('startLr ≥ endLr is a ConfigError naming both values, from LRFinder and from lrFind, before anything runs', async () => {
    expect(() => new LRFinder({ startLr: 1, endLr: 1e-3 })).toThrow(ConfigError);
    expect(() => new LRFinder({ startLr: 1, endLr: 1e-3 })).toThrow(/startLr \(1\) must be below endLr \(0\.001\)/);
    expect(() => new LRFinder({ startLr: 0.1, endLr: 0.1 })).toThrow(/startLr \(0\.1\) must be below endLr \(0\.1\)/);
    const learn = lrDrivenLearner(valleyShaped);
    const before = weightsSha256(learn.model);
    const tensors = tf.memory().numTensors;
    const err = await learn.lrFind({ startLr: 10, endLr: 1e-7 }).catch((e: unknown) => e);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('CONFIG');
    expect((err as Error).message).toMatch(/startLr \(10\) must be below endLr \(1e-7\)/);
    expect(weightsSha256(learn.model)).toBe(before);
    // The learner still works.
    expect((await learn.lrFind({ startLr: 1e-6, endLr: 1, numIt: 30, stopDiv: false })).iterations).toBe(30);
  });
});

describe('when no suggestion is meaningful, the result says so in `warning`', () => {
  it('a curve with a valley and enough points: no warning', async () => {
    const res = await lrDrivenLearner(valleyShaped).lrFind({ startLr: 1e-6, endLr: 1, numIt: 60, stopDiv: false });
    expect(res.warning).toBeNull();
    expect(res.suggestions.valley).toBeGreaterThan(1e-5);
    expect(res.suggestions.valley).toBeLessThan(1e-2);
  });

  it('too few batches (numIt 6: fastai’s window [numIt//10 : −5] keeps 1 point): a warning that says to raise numIt', async () => {
    const res = await lrDrivenLearner(valleyShaped).lrFind({ startLr: 1e-6, endLr: 1, numIt: 6, stopDiv: false });
    expect(res.iterations).toBe(6);
    expect(res.warning).toMatch(/only 6 batches ran/);
    expect(res.warning).toMatch(/1 point/);
    expect(res.warning).toMatch(/raise numIt to at least 16/);
  });

  it('a loss that diverges at once: a warning that says it diverged and to start lower', async () => {
    // Grows with the lr from the first batch: 4× the best smoothed loss within a few batches.
    const res = await lrDrivenLearner((lr) => 1 + (lr / 1e-6) ** 2).lrFind({ startLr: 1e-6, endLr: 1, numIt: 100 });
    expect(res.stopReason).toBe('diverged');
    expect(res.iterations).toBeLessThan(20);
    expect(res.warning).toMatch(/diverged after \d+ of 100 batches/);
    expect(res.warning).toMatch(/lower startLr \(now 1e-6\)/);
  });

  it('a loss that never falls below its start (enough points): a warning naming the lr range searched', async () => {
    const res = await lrDrivenLearner((_lr, i) => 1 + 1e-3 * i).lrFind({ startLr: 1e-6, endLr: 1, numIt: 60, stopDiv: false });
    expect(res.iterations).toBe(60);
    expect(res.warning).toMatch(/never fell below its value at lr \S+ \(tried up to lr \S+\)/);
  });
});

describe('the LR finder plot: each legend entry names the lr its marker is drawn at', () => {
  /** The curve of fastai's own lr_find test in lr-finder.test.ts: a dip near 10^-2.5, NaN from point 93. */
  function curve() {
    const numIt = 100;
    const lrs = Array.from({ length: numIt }, (_, i) => 1e-7 * (10 / 1e-7) ** (i / numIt));
    const losses = lrs.map((lr, i) => {
      let v = 2.3 - 1.5 * Math.exp(-(((Math.log10(lr) + 2.5) / 1.2) ** 2)) + 0.02 * Math.sin(i * 1.7);
      if (i > 88) v += 0.05 * (i - 88) ** 1.5;
      return i >= 93 ? Number.NaN : v;
    });
    return { numIt, lrs, losses };
  }

  const attr = (tag: string, name: string) => new RegExp(`${name}="([^"]*)"`).exec(tag)?.[1];
  const translateX = (tag: string) => Number(/translate\(([-\d.e]+)/.exec(attr(tag, 'transform') ?? '')![1]);

  /**
   * Reads the rendered SVG only: the x axis's labelled ticks ("1e-3" at pixel x) give the
   * log scale; each legend entry is a colour and its text; each marker (point and rule) a colour
   * and a pixel x, turned back into an lr with that scale.
   */
  function readChart(svg: string) {
    const ticks = [...svg.matchAll(/<text[^>]*transform="translate\(([-\d.e]+),15\)"[^>]*>1e([-+]\d+)<\/text>/g)].map((m) => ({
      x: Number(m[1]),
      log: Number(m[2]),
    }));
    expect(ticks.length).toBeGreaterThanOrEqual(2);
    const [a, b] = [ticks[0]!, ticks.at(-1)!];
    const lrAt = (x: number) => 10 ** (a.log + ((x - a.x) * (b.log - a.log)) / (b.x - a.x));

    const legendBlock = svg.slice(svg.indexOf('role-legend"'));
    const legend = [...legendBlock.matchAll(/<path transform="translate\(6,6\)"[^>]*fill="(#[0-9a-f]+)"[\s\S]*?<text[^>]*>([^<]+)<\/text>/g)].map((m) => ({
      color: m[1]!,
      text: m[2]!,
    }));
    const block = (cls: string) => svg.slice(svg.indexOf(cls), svg.indexOf('</g>', svg.indexOf(cls)));
    const points = [...block('layer_1_layer_1_marks').matchAll(/<path [^>]*>/g)].map((m) => ({ color: attr(m[0], 'fill')!, lr: lrAt(translateX(m[0])) }));
    const rules = [...block('layer_1_layer_0_marks').matchAll(/<line [^>]*>/g)].map((m) => ({ color: attr(m[0], 'stroke')!, lr: lrAt(translateX(m[0])) }));
    return { legend, points, rules };
  }

  it('valley, steep, minimum and slide: the point and the rule of each sit at the lr its legend text gives (to a pixel)', async () => {
    const { numIt, lrs, losses } = curve();
    const result = suggestLrs(lrs, losses, numIt);
    const svg = await renderSvg(lrFindChartSpec({ lrs, losses, suggestions: suggestionMarks(result) }));
    const { legend, points, rules } = readChart(svg);
    expect(legend.map((e) => e.text.split(':')[0]).sort()).toEqual(['minimum', 'slide', 'steep', 'valley']);
    // One pixel of 520 over 8 decades is 10^(8/520) ≈ 3.6 % in lr.
    const close = (lr: number, expected: number) => expect(Math.abs(Math.log10(lr / expected))).toBeLessThan(8 / 520);
    for (const { color, text } of legend) {
      const [name, value] = text.split(': ') as [keyof typeof result.suggestions, string];
      expect(Number(value)).toBeCloseTo(result.suggestions[name], 2 - Math.floor(Math.log10(result.suggestions[name])));
      const point = points.filter((p) => p.color === color);
      const rule = rules.filter((r) => r.color === color);
      expect(point, name).toHaveLength(1);
      expect(rule, name).toHaveLength(1);
      close(point[0]!.lr, Number(value));
      close(rule[0]!.lr, Number(value));
    }
    // fastai's minimum is a tenth of the lowest loss's lr: its marker is there, not at the lowest point.
    const minColor = legend.find((e) => e.text.startsWith('minimum'))!.color;
    const iMin = 10 + losses.slice(10, 93).indexOf(Math.min(...losses.slice(10, 93)));
    close(points.find((p) => p.color === minColor)!.lr, lrs[iMin]! / 10);
  });

  it('the minimum marker is on the curve at lrMin/10: halfway (in log lr) between points 42 and 43, so at their mean loss', () => {
    const { numIt, lrs, losses } = curve();
    const { suggestions, points } = suggestLrs(lrs, losses, numIt);
    // lrMin = lrs[55] = 10^-2.6; a tenth is 10^-3.6, i.e. index 42.5 on this 0.08-decade grid.
    expect(suggestions.minimum).toBeCloseTo(10 ** -3.6, 12);
    expect(points.minimum.lr).toBe(suggestions.minimum);
    expect(points.minimum.loss).toBeCloseTo((losses[42]! + losses[43]!) / 2, 10);
  });

  it('a suggestion whose point is at another lr than its value is refused: legend and marker could not agree', () => {
    const { lrs, losses } = curve();
    expect(() => lrFindChartSpec({ lrs, losses, suggestions: { minimum: { lr: 1e-4, point: { lr: 1e-3, loss: 1 } } } })).toThrow(ConfigError);
    expect(() => lrFindChartSpec({ lrs, losses, suggestions: { minimum: { lr: 1e-4, point: { lr: 1e-3, loss: 1 } } } })).toThrow(
      /minimum is marked at lr 1e-3 but names 1e-4/,
    );
  });
});
