import { Callback } from '../src/callback.js';
import type { TrainContext } from '../src/loop/context.js';
import type { Recorder } from './recorder.js';

export interface ProgressOptions {
  /** Where to write (default process.stderr, so stdout stays clean for --json). */
  stream?: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean; columns?: number };
  /** Draw bars in place; default: when the stream is a TTY. Otherwise plain lines. */
  tty?: boolean;
}

const BAR = 30;

/**
 * Progress like fastprogress: a bar per epoch while it runs (plain lines when not a TTY),
 * then one table row of metrics per epoch.
 */
export class Progress extends Callback {
  override order = 60;
  private readonly out: NonNullable<ProgressOptions['stream']>;
  private readonly tty: boolean;
  private columns: string[] = [];
  private lastDraw = 0;
  private lastPlainPct = -1;

  constructor(options: ProgressOptions = {}) {
    super();
    this.out = options.stream ?? process.stderr;
    this.tty = options.tty ?? Boolean(this.out.isTTY);
  }

  onTrainBegin(): void {
    this.columns = [];
  }

  onBatchEnd(ctx: TrainContext): void {
    const done = ctx.batchIndex + 1;
    const pct = Math.floor((100 * done) / Math.max(1, ctx.nBatches));
    const label = ctx.train ? `epoch ${ctx.epoch + 1}/${ctx.nEpochs} train` : `epoch ${ctx.epoch + 1}/${ctx.nEpochs} valid`;
    if (this.tty) {
      const now = performance.now();
      if (done !== ctx.nBatches && now - this.lastDraw < 100) return;
      this.lastDraw = now;
      const filled = Math.round((BAR * done) / Math.max(1, ctx.nBatches));
      const loss = ctx.train && Number.isFinite(ctx.smoothLoss) ? ` loss ${ctx.smoothLoss.toFixed(4)}` : '';
      this.out.write(`\r${label} [${'█'.repeat(filled)}${' '.repeat(BAR - filled)}] ${done}/${ctx.nBatches}${loss}\x1b[K`);
    } else if (ctx.train && pct % 25 === 0 && pct !== this.lastPlainPct) {
      this.lastPlainPct = pct;
      this.out.write(`${label} ${pct}% (${done}/${ctx.nBatches}) smooth loss ${ctx.smoothLoss.toFixed(4)}\n`);
    }
  }

  onEpochBegin(): void {
    this.lastPlainPct = -1;
  }

  onEpochEnd(ctx: TrainContext): void {
    if (this.tty) this.out.write('\r\x1b[K');
    const recorder = (this.learn as { recorder: Recorder | null }).recorder;
    const record = recorder?.epochs.at(-1);
    const row: Record<string, string> = { epoch: String(ctx.epoch + 1) };
    if (record) {
      row.train_loss = record.trainLoss.toFixed(4);
      for (const [k, v] of Object.entries(record.valid ?? {})) row[snake(k)] = v.toFixed(4);
      row.time = formatSeconds(record.seconds);
    } else {
      row.smooth_loss = ctx.smoothLoss.toFixed(4);
    }
    if (this.columns.length === 0) {
      this.columns = Object.keys(row);
      this.out.write(this.columns.map((c) => c.padEnd(12)).join('') + '\n');
    }
    this.out.write(this.columns.map((c) => (row[c] ?? '').padEnd(12)).join('') + '\n');
  }
}

function snake(s: string) {
  return s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function formatSeconds(s: number) {
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, '0')}:${(s - m * 60).toFixed(0).padStart(2, '0')}`;
}
