/**
 * The losses of finished runs that nobody has read yet (issue 10: no host read nobody asked
 * for). A fit whose callbacks never read the loss leaves its losses on the device; its result's
 * smoothed loss is read when someone asks for it. Every unread run's losses are joined into one
 * held block (one tensor, however many fits), so asking for any of them reads them all in one
 * host read and settles each run's smoothed loss, in batch order, exactly as an eager read would.
 * Joining copies the block: before a join would pass `MAX_HELD` losses, the older runs' are read,
 * so a long series of unread fits stays linear in time and memory (one read per 65,536 batches).
 */
import type { HeldLosses } from './engine.js';
import type { UnreadLosses } from './lossLog.js';

const MAX_HELD = 1 << 16;

interface Run {
  unread: UnreadLosses;
  /** How many of the block's losses are its own. */
  count: number;
}

export class UnreadLossBacklog {
  private held: HeldLosses | null = null;
  /** Each run's share of `held`, in order. */
  private runs: Run[] = [];

  /**
   * Keeps a run's unread losses; never throws (the fit they come from went well). The function
   * it returns makes sure they are read and settled (reading the whole backlog if they are not
   * yet), and throws why if they could not be.
   */
  add(unread: UnreadLosses): () => void {
    const ensure = () => unread.readNow();
    if (unread.settled) return ensure;
    unread.ask = () => this.readAll();
    const count = unread.held.count;
    // Joining copies the block: past the bound, the older runs' are read first (linear, not quadratic).
    if (this.held && this.held.count + count > MAX_HELD) this.readAllOrRecord();
    if (this.held) {
      try {
        this.held = this.held.join(unread.held);
      } catch {
        // Not joined (both intact): read the older runs' now, hold this one alone.
        this.readAllOrRecord();
        this.held = unread.held;
      }
    } else {
      this.held = unread.held;
    }
    this.runs.push({ unread, count });
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
      for (const run of runs) run.unread.lose(error);
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
    for (const run of runs) run.unread.lose(error);
  }

  /** readAll for a caller the failure is not for (each run it lost throws it when asked). */
  readAllOrRecord(): void {
    try {
      this.readAll();
    } catch {
      // Recorded on each run it lost.
    }
  }
}
