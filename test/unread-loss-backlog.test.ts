/**
 * The backlog of fits whose losses nobody read (src/loop/unreadLosses.ts), with plain-number
 * held losses: each fit's share of one joined block is settled in batch order by one read, and
 * a read or a join that fails is reported to every fit that lost its losses, never swallowed.
 */
import { describe, expect, it } from 'vitest';
import type { HeldLosses } from '../src/loop/engine.js';
import { UnreadLossBacklog } from '../src/loop/unreadLosses.js';

class Held implements HeldLosses {
  static reads = 0;
  released = false;
  constructor(
    readonly values: number[],
    private readonly fail: { read?: Error; join?: Error } = {},
  ) {}
  get count() {
    return this.values.length;
  }
  read() {
    Held.reads += 1;
    if (this.fail.read) throw this.fail.read;
    return Float32Array.from(this.values);
  }
  release() {
    this.released = true;
  }
  join(later: HeldLosses) {
    this.release();
    later.release();
    if (this.fail.join) throw this.fail.join;
    return new Held([...this.values, ...(later as Held).values], this.fail);
  }
}

const fit = (values: number[], fail?: { read?: Error; join?: Error }) => {
  const got: number[][] = [];
  return { unread: { held: new Held(values, fail), settle: (v: ArrayLike<number>) => got.push(Array.from(v)) }, got };
};

describe('UnreadLossBacklog', () => {
  it('three unread fits: nothing is read until one is asked for, then one read gives each fit its own losses, in order', () => {
    const backlog = new UnreadLossBacklog();
    const [a, b, c] = [fit([1, 2]), fit([3]), fit([4, 5, 6])];
    const settles = [a, b, c].map((f) => backlog.add(f.unread));
    Held.reads = 0;
    expect(backlog.pending).toBe(true);
    settles[1]!();
    expect(Held.reads).toBe(1);
    expect([a.got, b.got, c.got]).toEqual([[[1, 2]], [[3]], [[4, 5, 6]]]);
    settles[0]!();
    settles[2]!();
    expect(Held.reads).toBe(1);
    expect(backlog.pending).toBe(false);
  });

  it('a fit added after a read starts a new block', () => {
    const backlog = new UnreadLossBacklog();
    const a = fit([1]);
    backlog.add(a.unread)();
    const b = fit([2, 3]);
    Held.reads = 0;
    backlog.add(b.unread)();
    expect(Held.reads).toBe(1);
    expect([a.got, b.got]).toEqual([[[1]], [[2, 3]]]);
  });

  it('a failed read: every fit in the block throws that error when asked, nothing is settled, the block is let go', () => {
    const boom = new Error('device lost');
    const backlog = new UnreadLossBacklog();
    const a = fit([1], { read: boom });
    const b = fit([2]);
    const [sa, sb] = [backlog.add(a.unread), backlog.add(b.unread)];
    expect(() => sb()).toThrow(boom);
    expect(() => sa()).toThrow(boom);
    expect([a.got, b.got]).toEqual([[], []]);
    expect(backlog.pending).toBe(false);
  });

  it('a failed join: the fits whose losses it lost say why; release() lets a block go and says why too', () => {
    const boom = new Error('out of memory');
    const backlog = new UnreadLossBacklog();
    const a = fit([1], { join: boom });
    const b = fit([2]);
    const [sa, sb] = [backlog.add(a.unread), backlog.add(b.unread)];
    expect(() => sa()).toThrow(boom);
    expect(() => sb()).toThrow(boom);
    const c = fit([3]);
    const sc = backlog.add(c.unread);
    const gone = new Error('the learner is disposed');
    backlog.release(gone);
    expect((c.unread.held as Held).released).toBe(true);
    expect(() => sc()).toThrow(gone);
  });
});
