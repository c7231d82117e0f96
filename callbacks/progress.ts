import { Callback } from '../src/loop/callback.js';
import type { TrainContext } from '../src/loop/context.js';

export interface ProgressOptions {
  /** Where to write (default process.stderr, so stdout stays clean for --json). */
  stream?: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean; columns?: number };
  /** Draw bars in place; default: when the stream is a TTY. Otherwise plain lines. */
  tty?: boolean;
}

const BAR = 30;
/** Least time between two redraws of a bar (the first and last batch of a pass are always drawn). */
const REDRAW_MS = 100;
/**
 * Least time between two reads of the smoothed loss for the bar: a read waits for the device
 * (src/loop/lossLog.ts), so the bar shows a loss at most a second old instead of reading every redraw.
 */
const LOSS_REFRESH_MS = 1000;

/**
 * Progress like fastprogress.
 *
 * On a terminal: one bar per pass (train, then validation), redrawn in place,
 *   `epoch 1/3 train |██████------| 50% [47/94 00:03<00:03 loss 0.3521]`
 * and, when the epoch ends, the bar is replaced by the epoch's row of a metrics table
 *   `epoch       train_loss  valid_loss  accuracy    time`
 *   `1           0.3412      0.2211      0.9372      00:07`
 * Elsewhere (a pipe, a CI log): the same table and nothing else — its rows are the per-epoch
 * progress summaries, so the table stays contiguous and a log is as short as the run is long
 * in epochs. (No lines within an epoch: they would land between the table's rows.)
 *
 * Epochs are counted as people count them, from 1, in the bar and in the table alike
 * (Keras's convention; `ctx.epoch`, the Recorder, CSVLogger and the JSON output stay 0-based).
 *
 * `train_loss` is the mean of the epoch's raw train losses (as the Recorder's), computed here
 * so the table does not depend on a Recorder being attached.
 */
export class Progress extends Callback {
  override order = 60;
  // Private (#) fields throughout: nothing here is run state to checkpoint, and a resumed run
  // must draw for the terminal it runs on, not the one the checkpoint was written from.
  readonly #out: NonNullable<ProgressOptions['stream']>;
  readonly #tty: boolean;
  #columns: string[] = [];
  #widths: number[] = [];
  #headerDone = false;
  #barShown = false;
  #lastDraw = 0;
  #lossShown = Number.NaN;
  #lossReadAt = Number.NEGATIVE_INFINITY;
  #passStart = 0;
  #epochStart = 0;
  #lossSum = 0;
  #lossCount = 0;
  #valid: Record<string, number> | null = null;
  protected override readonly stateKeys: readonly string[] = [];

  constructor(options: ProgressOptions = {}) {
    super();
    this.#out = options.stream ?? process.stderr;
    this.#tty = options.tty ?? Boolean(this.#out.isTTY);
  }

  onTrainBegin(): void {
    const valid = this.learn.data.valid ? ['valid_loss', ...this.learn.metrics.map((m) => snake(m.name))] : [];
    this.#columns = ['epoch', 'train_loss', ...valid, 'time'];
    this.#widths = this.#columns.map((c) => Math.max(12, c.length + 2));
    this.#headerDone = false;
    this.#barShown = false;
  }

  onEpochBegin(): void {
    this.#epochStart = this.#passStart = performance.now();
    this.#lossSum = 0;
    this.#lossCount = 0;
    this.#valid = null;
  }

  onValidateBegin(): void {
    this.#passStart = performance.now();
  }

  onValidateEnd(ctx: TrainContext): void {
    this.#valid = ctx.lastMetrics ? { ...ctx.lastMetrics } : null;
  }

  onBatchEnd(ctx: TrainContext): void {
    if (ctx.train) {
      // Summed when the loop reads the losses in bulk, by the epoch's end at the latest.
      ctx.readLossLater((loss) => {
        if (loss !== null && Number.isFinite(loss)) {
          this.#lossSum += loss;
          this.#lossCount += 1;
        }
      });
    }
    // Off a terminal the table's rows are the only progress lines (see the class comment).
    if (!this.#tty) return;
    const done = ctx.batchIndex + 1;
    const n = Math.max(1, ctx.nBatches);
    const now = performance.now();
    if (done !== 1 && done !== n && now - this.#lastDraw < REDRAW_MS) return;
    this.#lastDraw = now;
    const label = `epoch ${ctx.epoch + 1}/${ctx.nEpochs} ${ctx.train ? 'train' : 'valid'}`;
    const elapsed = (now - this.#passStart) / 1000;
    const width = this.barWidth();
    const filled = Math.min(width, Math.round((width * done) / n));
    const remaining = (elapsed / done) * (n - done);
    if (ctx.train && (done === n || now - this.#lossReadAt >= LOSS_REFRESH_MS)) {
      this.#lossShown = ctx.smoothLoss;
      this.#lossReadAt = now;
    }
    const smooth = ctx.train && Number.isFinite(this.#lossShown) ? ` loss ${this.#lossShown.toFixed(4)}` : '';
    const bar = `|${'█'.repeat(filled)}${'-'.repeat(width - filled)}|`;
    this.#out.write(
      `\r${label} ${bar} ${Math.floor((100 * done) / n)}% [${done}/${n} ${clock(elapsed)}<${clock(remaining)}${smooth}]\x1b[K`,
    );
    this.#barShown = true;
  }

  onEpochEnd(ctx: TrainContext): void {
    this.clearBar();
    if (!this.#headerDone) {
      this.#headerDone = true;
      this.writeRow(this.#columns);
    }
    const values: Record<string, string> = {
      epoch: String(ctx.epoch + 1), // 1-based, as the bar above it (and Keras): this table is read by people
      train_loss: this.#lossCount ? (this.#lossSum / this.#lossCount).toFixed(4) : '',
      time: clock((performance.now() - this.#epochStart) / 1000),
    };
    for (const [k, v] of Object.entries(this.#valid ?? {})) values[snake(k)] = v.toFixed(4);
    this.writeRow(this.#columns.map((c) => values[c] ?? ''));
  }

  onTrainEnd(): void {
    // A run stopped or failed mid-pass leaves its bar drawn; the next output starts clean.
    this.clearBar();
  }

  private clearBar(): void {
    if (this.#tty && this.#barShown) this.#out.write('\r\x1b[K');
    this.#barShown = false;
  }

  private writeRow(cells: string[]): void {
    this.#out.write(cells.map((c, i) => c.padEnd(this.#widths[i] ?? 12)).join('').trimEnd() + '\n');
  }

  /** Narrower bars on narrow terminals, so a bar never wraps. */
  private barWidth(): number {
    const columns = this.#out.columns;
    return typeof columns === 'number' && columns > 0 ? Math.max(10, Math.min(BAR, columns - 60)) : BAR;
  }
}

function snake(s: string) {
  return s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** mm:ss, as fastprogress prints times. */
function clock(seconds: number) {
  const s = Number.isFinite(seconds) ? Math.max(0, Math.round(seconds)) : 0;
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, '0')}:${String(s - m * 60).padStart(2, '0')}`;
}
