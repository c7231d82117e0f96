/**
 * The run's train losses, read from the device only when someone needs them. Reading a tensor's
 * value stalls until every queued kernel has run (`dataSync`: on a GPU backend, the whole
 * pipeline), so the loop does not read a batch's loss just because it exists: the engine keeps
 * each final loss on the device, and this log reads all of them in one host read when
 *
 * - a hook or guard reads `ctx.lastLossValue` or `ctx.smoothLoss` (on demand), or
 * - callbacks asked for them with `ctx.readLossLater(fn)` and an epoch ends (before its hooks),
 *   or the run's state is captured (a checkpoint), or the run ends.
 *
 * At a run's end with nobody waiting, `hold` hands the losses still unread to the run's owner
 * instead (src/loop/unreadLosses.ts): the Learner reads them only when the smoothed loss of that
 * fit is asked for, so a run nobody reads makes no host read at all.
 *
 * The values and the smoothed loss are exactly what an eager read gave: the same float32 values,
 * smoothed in float64 in batch order.
 */
import type { HeldLosses, LoopEngine } from './engine.js';
import type { SmoothLoss } from './smoothLoss.js';

/** Called with a train batch's loss (null: the batch computed none) and the smoothed loss after it. */
export type LossReader = (loss: number | null, smoothLoss: number) => void;

/**
 * A run's losses that nobody read, held on the device past its end (`LossLog.hold`). The run's
 * owner keeps them (src/loop/unreadLosses.ts) and sets `ask`; a late reader of the run's own
 * context (an observer reading `ctx.smoothLoss` after trainEnd) settles them through it, or
 * reads them directly while nobody owns them yet. References only the smoother: a kept result
 * does not keep its run alive.
 */
export class UnreadLosses {
  /** Set by the owner: has them read (perhaps with other runs' in the same read). */
  ask: (() => void) | null = null;
  private done = false;
  /** Why they can never be read (a failed read; the owner let them go). */
  private failure: { error: unknown } | null = null;
  /** The last of them once read (the run's latest loss). */
  last: number | null = null;

  constructor(
    readonly held: HeldLosses,
    private readonly smooth: SmoothLoss,
  ) {}

  /** Read, or lost, already? */
  get settled(): boolean {
    return this.done;
  }

  /** Their values, read: smoothed in batch order, exactly as `LossLog.flush` smooths. */
  settle(values: ArrayLike<number>): void {
    if (this.done) return;
    this.done = true;
    for (let i = 0; i < values.length; i++) this.smooth.add(values[i]!);
    if (values.length) this.last = values[values.length - 1]!;
  }

  /**
   * Someone asks for the run's smoothed loss: read them now (through the owner if there is one).
   * Throws why when they could not be read: a stale loss is never passed off as the latest.
   */
  readNow(): void {
    if (!this.done) {
      if (this.ask) {
        this.ask();
      } else {
        let values: ArrayLike<number>;
        try {
          values = this.held.read();
        } catch (error) {
          this.held.release();
          this.lose(error);
          throw error;
        }
        this.settle(values);
      }
    }
    if (this.failure) throw this.failure.error;
  }

  /** Their block is gone unread (a failed read, or the owner let it go): asking for them throws `error`. */
  lose(error: unknown): void {
    if (this.done) return;
    this.done = true;
    this.failure = { error };
  }

  /** Let go unread (the run failed after all, or the loop could not finish). */
  release(): void {
    if (this.done) return;
    this.lose(new Error('these losses were let go unread'));
    this.held.release();
  }
}

export class LossLog {
  /** Losses kept on the device, not read yet. */
  private kept = 0;
  /** Losses read so far in this run. */
  private read = 0;
  private lastRead: number | null = null;
  /** Readers waiting for the losses up to their batch (`upTo` losses read). */
  private waiting: Array<{ upTo: number; withLoss: boolean; fn: LossReader }> = [];
  /** The losses `hold` took out at the run's end (read through it if asked for after). */
  private heldOut: UnreadLosses | null = null;
  /** Host reads done (the benchmark and the tests count them). */
  reads = 0;

  constructor(
    private readonly engine: Pick<LoopEngine, 'keepLoss' | 'readKeptLosses' | 'holdKeptLosses'>,
    private readonly smooth: SmoothLoss,
  ) {}

  /** The current train batch's loss is final: keep it (on the device) in the log. */
  keep(): void {
    this.engine.keepLoss(true);
    this.kept += 1;
  }

  /** Are any readers waiting, i.e. will an epoch's end read the log? */
  get wanted(): boolean {
    return this.waiting.length > 0;
  }

  /** The last loss read, by this log or (held past the run) by its owner. */
  private get latestRead(): number | null {
    return this.heldOut?.last ?? this.lastRead;
  }

  /** The latest loss kept (read now if needed). */
  latest(): number | null {
    this.flush();
    return this.latestRead;
  }

  /** The smoothed loss after every loss kept so far (read now if needed). */
  smoothed(): number {
    this.flush();
    return this.smooth.value;
  }

  /**
   * `fn` gets the current batch's loss (`withLoss`: the batch kept one) and the smoothed loss
   * after it, once read; at once when nothing is waiting to be read.
   */
  later(withLoss: boolean, fn: LossReader): void {
    if (this.kept === 0) {
      this.heldOut?.readNow();
      fn(withLoss ? this.latestRead : null, this.smooth.value);
      return;
    }
    this.waiting.push({ upTo: this.read + this.kept, withLoss, fn });
  }

  /**
   * The run is over and nobody waits for its losses: the ones still unread, taken from the engine
   * on the device (null: none, or readers are waiting, or the engine cannot hold them — then
   * `flush`). Their values go through `settle` later, smoothed exactly as `flush` would have.
   */
  hold(): UnreadLosses | null {
    if (this.kept === 0 || this.waiting.length > 0 || !this.engine.holdKeptLosses) return null;
    const held = this.engine.holdKeptLosses();
    if (!held) return null;
    this.kept = 0;
    this.heldOut = new UnreadLosses(held, this.smooth);
    return this.heldOut;
  }

  /** Reads every kept loss in one host read, smooths them in order and calls the readers waiting for them. */
  flush(): void {
    if (this.kept === 0) {
      // Held past the run's end: a late reader still gets every loss.
      this.heldOut?.readNow();
      return;
    }
    const values = this.engine.readKeptLosses();
    this.reads += 1;
    this.kept = 0;
    const waiting = this.waiting;
    this.waiting = [];
    // Every loss is smoothed and every reader called even if one reader throws: the first
    // error is rethrown after, so one broken callback loses no other's records.
    let failure: { error: unknown } | null = null;
    const call = (fn: LossReader, loss: number | null) => {
      try {
        fn(loss, this.smooth.value);
      } catch (error) {
        failure ??= { error };
      }
    };
    let w = 0;
    for (let i = 0; i < values.length; i++) {
      const value = values[i]!;
      this.smooth.add(value);
      this.read += 1;
      this.lastRead = value;
      for (; w < waiting.length && waiting[w]!.upTo === this.read; w++) call(waiting[w]!.fn, waiting[w]!.withLoss ? value : null);
    }
    // Readers of batches that kept no loss, registered after the last one that did.
    for (; w < waiting.length; w++) call(waiting[w]!.fn, null);
    if (failure) throw (failure as { error: unknown }).error;
  }
}
