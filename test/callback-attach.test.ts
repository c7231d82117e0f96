/**
 * A callback instance belongs to one Learner at a time: `this.learn` must be the learner whose
 * loop runs the hook. Giving it to a second learner (its constructor, addCallback, or a fit's
 * callbacks) is a ConfigError that says to make a new instance; the learner it belongs to may
 * add it again (nothing happens), and removeCallback frees it for another.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import { tinyLearner } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Records which learner each hook call saw through `this.learn`. */
class WhoAmI extends Callback {
  seen: unknown[] = [];
  onEpochEnd(ctx: TrainContext) {
    this.seen.push([this.learn, ctx.learn]);
  }
}

describe('one callback instance, one learner', () => {
  it('new Learner({ callbacks }) with a callback attached to another learner: ConfigError, make a new instance', () => {
    const cb = new WhoAmI();
    const a = tinyLearner([cb]);
    let err: unknown;
    try {
      tinyLearner([cb]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/callback WhoAmI is already attached to another Learner.*new WhoAmI/);
    expect(cb.learn).toBe(a);
  });

  it('addCallback on a second learner is refused and changes neither learner', () => {
    const cb = new WhoAmI();
    const a = tinyLearner([cb]);
    const b = tinyLearner([]);
    expect(() => b.addCallback(cb)).toThrow(ConfigError);
    expect(b.callbacks).not.toContain(cb);
    expect(a.callbacks).toContain(cb);
    expect(cb.learn).toBe(a);
  });

  it("another learner's fit(n, { callbacks }) with it is refused before anything runs; the owner still trains with it", async () => {
    const cb = new WhoAmI();
    const a = tinyLearner([cb]);
    const b = tinyLearner([]);
    const weights = b.params.map((p) => p.dataSync().slice());
    await expect(b.fit(1, { callbacks: [cb] })).rejects.toThrow(/already attached to another Learner.*make a new instance/);
    expect(b.params.map((p) => p.dataSync().slice())).toEqual(weights);
    expect(cb.seen).toEqual([]);
    await a.fit(1);
    expect(cb.seen).toEqual([[a, a]]);
  });

  it('a fit-only callback is attached for that fit only: during it, another learner cannot take it', async () => {
    const cb = new WhoAmI();
    const a = tinyLearner([]);
    const b = tinyLearner([]);
    const running = a.fit(1, { callbacks: [cb], yieldEveryMs: 0 });
    await expect(b.fit(1, { callbacks: [cb] })).rejects.toThrow(ConfigError);
    await running;
    await b.fit(1, { callbacks: [cb] });
    expect(cb.seen).toEqual([
      [a, a],
      [b, b],
    ]);
  });

  it('the learner it belongs to may add it again (no-op); after removeCallback another learner may take it', async () => {
    const cb = new WhoAmI();
    const a = tinyLearner([cb]);
    a.addCallback(cb);
    expect(a.callbacks.filter((c) => c === cb)).toHaveLength(1);
    // Its own callback passed to its own fit runs once.
    await a.fit(1, { callbacks: [cb] });
    expect(cb.seen).toEqual([[a, a]]);
    a.removeCallback(cb);
    expect(() => cb.learn).toThrow(/not attached to a Learner/);
    const b = tinyLearner([]);
    b.addCallback(cb);
    await b.fit(1);
    expect(cb.seen.at(-1)).toEqual([b, b]);
  });
});
