/**
 * The work of one training loop, as the machine names it. The Learner's tfjs engine
 * implements it for real; the property tests implement it with plain numbers. Every method
 * is one small step the machine places: nothing here decides what comes next.
 */
export interface LoopEngine {
  /** epochBegin: fix the order of this epoch's train batches (seeded shuffle). */
  orderEpoch(epoch: number): void;
  /**
   * batchBegin: make the batch's input and target (ctx.lastInput, ctx.lastTarget). The batch
   * is a function of (epoch, batchIndex) alone, so a run resumed mid-epoch, whose epochBegin
   * does not run again, is served the very batches the uninterrupted run was.
   */
  loadBatch(train: boolean, batchIndex: number, epoch: number): void;
  /** lossBegin: the forward pass (ctx.lastOutput). */
  forward(train: boolean): void;
  /** The loss of the batch (ctx.lastLoss), without reading its value: a hook may still replace it. */
  computeLoss(train: boolean): void;
  /**
   * The batch's loss (ctx.lastLoss as the hooks left it) is final: check it is a scalar and keep
   * it on the device, without reading it. The loop calls it once per batch, once the loss can no
   * longer change. A train batch's loss joins those `readKeptLosses` reads; a validation batch's
   * is the one its metrics are accumulated with and `readLoss` reads.
   */
  keepLoss(train: boolean): void;
  /** Every train loss kept since the last call, in batch order, in one host read; they are let go. */
  readKeptLosses(): ArrayLike<number>;
  /**
   * At a run's end, when nobody has asked for them: every train loss kept and not read yet, taken
   * out of the engine unread (on the device, no host read), or null when none is kept. Optional:
   * an engine without it has its losses read at the run's end.
   */
  holdKeptLosses?(): HeldLosses | null;
  /** The value of the validation batch's kept loss, read now (someone asked for ctx.lastLossValue). */
  readLoss(): number;
  /** This batch's loss is the one to differentiate when the tape closes. */
  markLossForBackward(): void;
  /**
   * Runs `run` (which moves the machine from batchBegin to the `gradients` state) while
   * recording for gradients, then takes the gradients of the marked loss, if one was marked.
   * Throws when taking them fails.
   */
  underTape(run: () => void): void;
  /** backwardEnd: add the fresh gradients to the ones kept from earlier batches (skipZero). */
  accumulateGradients(): void;
  /** cancelBatch: forget this batch's gradients (kept ones from earlier batches stay). */
  dropGradients(): void;
  /** The optimizer step with the current hyper-parameters. */
  step(): void;
  /** skipZero: keep the gradients for the next batch to add to. */
  keepGradients(): void;
  zeroGradients(): void;
  startValidation(): void;
  accumulateMetrics(): void;
  /** validateEnd: the validation loss and metrics of the pass. */
  finalizeMetrics(): Record<string, number>;
  /** Leaving batchEnd: dispose what the batch made. */
  releaseBatch(): void;
  /** trainEnd: dispose what the run made (kept gradients, …). */
  releaseRun(): void;
}

/**
 * Train losses left on the device after their run (src/loop/unreadLosses.ts): read in one host
 * read when someone asks for them, or let go unread.
 */
export interface HeldLosses {
  /** How many losses, in batch order. */
  readonly count: number;
  /** Their values, in one host read; they are let go. */
  read(): ArrayLike<number>;
  /** Lets them go unread. */
  release(): void;
  /** These losses then `later`'s, as one (on the device, no host read); both are used up. If it throws, both are as they were. */
  join(later: HeldLosses): HeldLosses;
}
