/**
 * The backlog of fits whose losses nobody read (src/loop/unreadLosses.ts), with plain-number
 * held losses: each fit's share of one joined block is smoothed (fastai's debiased EMA, β = 0.98,
 * computed here from its definition) by one read; a failed read or join loses nothing silently.
 */
import { describe, expect, it } from 'vitest';
import type { HeldLosses } from '../src/loop/engine.js';
import { UnreadLosses } from '../src/loop/lossLog.js';
import { SmoothLoss } from '../src/loop/smoothLoss.js';
import { UnreadLossBacklog } from '../src/loop/unreadLosses.js';

let reads = 0;

class Held implements HeldLosses {
  released = false;
  constructor(
    readonly values: number[],
    private readonly fail: { read?: Error; join?: Error } = {},
  ) {}
  get count() {
    return this.values.length;
  }
  read() {
    reads += 1;
    if (this.fail.read) throw this.fail.read;
    this.released = true;
    return Float32Array.from(this.values);
  }
  release() {
    this.released = true;
  }
  join(later: HeldLosses) {
    // As the engine's: a failed join leaves both as they were.
    if (this.fail.join) throw this.fail.join;
    this.release();
    later.release();
    return new Held([...this.values, ...(later as Held).values], (later as Held).fail);
  }
}

/** fastai's smoothed loss after `losses`, from its definition. */
const ema = (losses: number[]) => losses.reduce((avg, l) => 0.98 * avg + 0.02 * l, 0) / (1 - 0.98 ** losses.length);

const aFit = (values: number[], fail?: { read?: Error; join?: Error }) => {
  const smooth = new SmoothLoss();
  return { unread: new UnreadLosses(new Held(values, fail), smooth), smooth };
};

describe('UnreadLossBacklog', () => {
  it('three unread fits: nothing is read until one is asked for, then one read smooths each fit’s own losses', () => {
    const backlog = new UnreadLossBacklog();
    const fits = [aFit([1, 2]), aFit([3]), aFit([4, 5, 6])];
    const ensure = fits.map((f) => backlog.add(f.unread));
    reads = 0;
    expect(backlog.pending).toBe(true);
    expect(fits.map((f) => f.smooth.value).every(Number.isNaN)).toBe(true);
    ensure[1]!();
    expect(reads).toBe(1);
    expect(fits.map((f) => f.smooth.value)).toEqual([ema([1, 2]), ema([3]), ema([4, 5, 6])].map((v) => expect.closeTo(v, 12)));
    ensure[0]!();
    ensure[2]!();
    expect(reads).toBe(1);
    expect(backlog.pending).toBe(false);
  });

  it('a run read by its own context first (UnreadLosses.readNow) reads through the backlog once it is there', () => {
    const backlog = new UnreadLossBacklog();
    const [a, b] = [aFit([1]), aFit([2, 3])];
    backlog.add(a.unread);
    backlog.add(b.unread);
    reads = 0;
    b.unread.readNow();
    expect(reads).toBe(1);
    expect([a.smooth.value, b.smooth.value]).toEqual([expect.closeTo(ema([1]), 12), expect.closeTo(ema([2, 3]), 12)]);
    // Read before it had an owner: adding it holds nothing.
    const c = aFit([7]);
    c.unread.readNow();
    backlog.add(c.unread)();
    expect(backlog.pending).toBe(false);
    expect(c.smooth.value).toBeCloseTo(7, 12);
  });

  it('a failed read: every fit of the block throws that error when asked, nothing is smoothed, the block is let go', () => {
    const boom = new Error('device lost');
    const backlog = new UnreadLossBacklog();
    const [a, b] = [aFit([1]), aFit([2], { read: boom })];
    const [ea, eb] = [backlog.add(a.unread), backlog.add(b.unread)];
    expect(() => ea()).toThrow(boom);
    expect(() => eb()).toThrow(boom);
    expect([a.smooth.value, b.smooth.value].every(Number.isNaN)).toBe(true);
    expect(backlog.pending).toBe(false);
  });

  it('a failed join loses nothing: the older fits are read then, the new one is held alone', () => {
    const backlog = new UnreadLossBacklog();
    const a = aFit([1, 2], { join: new Error('out of memory') });
    const b = aFit([3]);
    backlog.add(a.unread);
    reads = 0;
    const eb = backlog.add(b.unread);
    expect(reads).toBe(1);
    expect(a.smooth.value).toBeCloseTo(ema([1, 2]), 12);
    expect(backlog.pending).toBe(true);
    eb();
    expect(b.smooth.value).toBeCloseTo(3, 12);
  });

  it('release(): the block is let go unread, and asking for it says why', () => {
    const backlog = new UnreadLossBacklog();
    const a = aFit([1]);
    const ea = backlog.add(a.unread);
    const gone = new Error('the learner is disposed');
    backlog.release(gone);
    expect((a.unread.held as Held).released).toBe(true);
    expect(() => ea()).toThrow(gone);
    // The run's own context (a late ctx.smoothLoss) says why too: no stale value passed off as read.
    expect(() => a.unread.readNow()).toThrow(gone);
  });

  it('a join that would pass 65,536 losses reads the older runs first, then holds the new one alone (joins stay small)', () => {
    const backlog = new UnreadLossBacklog();
    reads = 0;
    const [a, b] = [aFit(new Array(1 << 15).fill(1)), aFit(new Array(1 << 15).fill(1))];
    backlog.add(a.unread);
    backlog.add(b.unread);
    expect(reads).toBe(0);
    const c = aFit([2]);
    const ec = backlog.add(c.unread);
    expect(reads).toBe(1);
    expect([a.smooth.value, b.smooth.value]).toEqual([expect.closeTo(1, 12), expect.closeTo(1, 12)]);
    expect(backlog.pending).toBe(true);
    ec();
    expect(c.smooth.value).toBeCloseTo(2, 12);
  });

  it('add never throws: when reading the older runs for room fails, they say why, and the new one is held and read as usual', () => {
    const boom = new Error('device lost');
    const backlog = new UnreadLossBacklog();
    const a = aFit([1, 2], { read: boom, join: new Error('no memory') });
    const ea = backlog.add(a.unread);
    const b = aFit([3]);
    let eb: (() => void) | null = null;
    expect(() => (eb = backlog.add(b.unread))).not.toThrow();
    expect(() => ea()).toThrow(boom);
    expect(() => a.unread.readNow()).toThrow(boom);
    eb!();
    expect(b.smooth.value).toBeCloseTo(3, 12);
  });

  it('a run read directly (no owner yet) whose read fails: it throws why now and later, and adding it holds nothing', () => {
    const boom = new Error('device lost');
    const backlog = new UnreadLossBacklog();
    const a = aFit([1], { read: boom });
    expect(() => a.unread.readNow()).toThrow(boom);
    expect((a.unread.held as Held).released).toBe(true);
    const ea = backlog.add(a.unread);
    expect(backlog.pending).toBe(false);
    expect(() => ea()).toThrow(boom);
  });
});
