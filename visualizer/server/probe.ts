/**
 * The visualizer's callback in the run. It reads what the charts need where the loop has it
 * (each train batch's loss, lr and momentum at batchEnd; each epoch's losses and metrics at
 * epochEnd), and its stopTraining guard is how a stop asked for from the page or by Ctrl-C
 * reaches the run: through the machine, as any callback's stop would.
 */
import { Callback } from '../../src/loop/callback.js';
import type { TrainContext } from '../../src/loop/context.js';
import { finite } from './contextView.js';
import type { BatchItem, EpochMessage } from './protocol.js';
import { STOP } from './sharedFlags.js';

export class VisualizerProbe extends Callback {
  // Last in every stage: it records what the stage's other callbacks left.
  override order = 1000;
  // Nothing to checkpoint: the page's record is rebuilt by the run that resumes.
  protected override readonly stateKeys: readonly string[] = [];
  override guards = { stopTraining: () => Atomics.load(this.flags, STOP) === 1 };
  private batches: BatchItem[] = [];
  private epochs: EpochMessage[] = [];
  private lossSum = 0;
  private lossCount = 0;
  private valid: Record<string, number> | null = null;
  private epochStart = 0;
  /** The context of a run whose latest batches wait for their losses. */
  private unread: TrainContext | null = null;

  constructor(private readonly flags: Int32Array) {
    super();
  }

  reset(): void {
    this.batches = [];
    this.epochs = [];
  }

  onEpochBegin(): void {
    this.lossSum = 0;
    this.lossCount = 0;
    this.valid = null;
    this.epochStart = performance.now();
  }

  onBatchEnd(ctx: TrainContext): void {
    if (!ctx.train) return;
    const learn = ctx.learn;
    const item: BatchItem = { iteration: ctx.iteration, epoch: ctx.epoch, loss: null, smoothLoss: null, lr: learn.lr, momentum: learn.momentum };
    this.batches.push(item);
    // The losses come in bulk (one host read per page update, not per batch: see take()).
    this.unread = ctx;
    ctx.readLossLater((loss, smooth) => {
      item.loss = finite(loss);
      item.smoothLoss = finite(smooth);
      if (loss !== null && Number.isFinite(loss)) {
        this.lossSum += loss;
        this.lossCount += 1;
      }
    });
  }

  onValidateEnd(ctx: TrainContext): void {
    this.valid = ctx.lastMetrics ? { ...ctx.lastMetrics } : null;
  }

  onEpochEnd(ctx: TrainContext): void {
    const { validLoss, ...metrics } = this.valid ?? {};
    this.epochs.push({
      type: 'epoch',
      epoch: ctx.epoch,
      // ctx.iteration counts the batches before the current one; at epochEnd that is all of them.
      iteration: ctx.iteration,
      trainLoss: this.lossCount ? this.lossSum / this.lossCount : null,
      validLoss: finite(validLoss),
      metrics: Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, finite(v)])),
      seconds: (performance.now() - this.epochStart) / 1000,
    });
  }

  /** The records since the last call, their losses read (one host read for all of them). */
  take(): { batches: BatchItem[]; epochs: EpochMessage[] } {
    if (this.unread) void this.unread.smoothLoss;
    this.unread = null;
    const out = { batches: this.batches, epochs: this.epochs };
    this.batches = [];
    this.epochs = [];
    return out;
  }
}
