/**
 * The losses of finished runs that nobody has read yet (issue 10: no host read nobody asked
 * for). A fit whose callbacks never read the loss leaves its losses on the device; its result's
 * smoothed loss is read when someone asks for it. Every unread run's losses are joined into one
 * held block (one tensor, however many fits), so asking for any of them reads them all in one
 * host read and settles each run's smoothed loss, in batch order, exactly as an eager read would.
 * A block larger than `MAX_HELD` losses is read at once: joining copies the block, so a bound
 * keeps a long series of unread fits linear in time and memory (one read per ~262k batches).
 */
import type { HeldLosses } from './engine.js';
import type { UnreadLosses } from './lossLog.js';

const MAX_HELD = 1 << 18;

interface Run {
  unread: UnreadLosses;
  /** How many of the block's losses are its own. */
  count: number;
  /** Why its losses could not be read (null: read, or not yet). */
  failure: { error: unknown } | null;
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
    const run: Run = { unread, count: unread.held.count, failure: null };
    const ensure = () => {
      if (!unread.settled) this.readAll();
      if (run.failure) throw run.failure.error;
    };
    if (unread.settled) return ensure;
    unread.ask = () => this.readAll();
    if (this.held) {
      try {
        this.held = this.held.join(unread.held);
      } catch {
        // Not joined (both intact): read the older runs' now, hold this one alone.
        this.readAll();
        this.held = unread.held;
      }
    } else {
      this.held = unread.held;
    }
    this.runs.push(run);
    if (this.held.count > MAX_HELD) this.readAll();
    return ensure;
  }

  /** Are any runs' losses still unread? */
  get pending(): boolean {
    return this.held !== null;
  }

  /** Reads every held loss in one host read and settles each run's share, oldest first; throws if the read fails (each run then says why). */
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
      this.lose(runs, error);
      throw error;
    }
    let at = 0;
    for (const { unread, count } of runs) {
      // Each run gets a copy of its own share only.
      unread.settle(Array.prototype.slice.call(values, at, at + count) as number[]);
      at += count;
    }
  }

  /** Lets every held loss go unread; asking for them then throws `error`. */
  release(error: unknown): void {
    const { held, runs } = this;
    this.held = null;
    this.runs = [];
    held?.release();
    this.lose(runs, error);
  }

  private lose(runs: Run[], error: unknown) {
    for (const run of runs) {
      run.failure = { error };
      run.unread.lose();
    }
  }
}
