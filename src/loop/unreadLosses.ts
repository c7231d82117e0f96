/**
 * The losses of finished runs that nobody has read yet (issue 10: no host read nobody asked
 * for). A fit whose callbacks never read the loss leaves its losses on the device; its result's
 * smoothed loss is read when someone asks for it. Every unread run's losses are joined into one
 * held block (one tensor, however many fits), so asking for any of them reads them all in one
 * host read and settles each run's smoothed loss, in batch order, exactly as an eager read would.
 */
import type { HeldLosses } from './engine.js';
import type { UnreadLosses } from './lossLog.js';

interface Run {
  count: number;
  settle: (values: ArrayLike<number>) => void;
  /** null: unread; true: settled; else why its losses could not be read. */
  done: { error: unknown } | true | null;
}

export class UnreadLossBacklog {
  private held: HeldLosses | null = null;
  /** Each run's share of `held`, in order. */
  private runs: Run[] = [];

  /**
   * Keeps a run's unread losses. The function it returns makes sure they are read and settled
   * (reading the whole backlog if they are not yet), and throws if reading them failed.
   */
  add(unread: UnreadLosses): () => void {
    const run: Run = { count: unread.held.count, settle: unread.settle, done: null };
    this.runs.push(run);
    try {
      this.held = this.held ? this.held.join(unread.held) : unread.held;
    } catch (error) {
      // join let both go: these runs' losses are lost, and asking for them says why.
      this.fail(error);
    }
    return () => {
      if (run.done === null) this.readAll();
      if (run.done !== true) throw (run.done as { error: unknown }).error;
    };
  }

  /** Are any runs' losses still unread? */
  get pending(): boolean {
    return this.held !== null;
  }

  /** Reads every held loss in one host read and settles each run's share, oldest first. */
  readAll(): void {
    const { held, runs } = this;
    this.held = null;
    this.runs = [];
    if (!held) return;
    let values: ArrayLike<number>;
    try {
      values = held.read();
    } catch (error) {
      held.release();
      for (const run of runs) run.done = { error };
      throw error;
    }
    let at = 0;
    for (const run of runs) {
      // The values copied out: a run's settle keeps no view of the others'.
      run.settle(Array.prototype.slice.call(values, at, at + run.count) as number[]);
      at += run.count;
      run.done = true;
    }
  }

  /** Lets every held loss go unread (the learner is disposed and could not read them). */
  release(error: unknown): void {
    const held = this.held;
    this.fail(error);
    held?.release();
  }

  private fail(error: unknown) {
    for (const run of this.runs) run.done = { error };
    this.runs = [];
    this.held = null;
  }
}
