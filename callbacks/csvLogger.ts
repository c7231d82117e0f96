import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import { makeDir } from '../src/io/makeDir.js';
import { writeFileAtomic } from '../src/io/atomicWrite.js';
import type { TrainContext } from '../src/loop/context.js';

export interface CSVLoggerOptions {
  /** The CSV file (its directory is created when missing). Default 'history.csv'. */
  path?: string;
  /**
   * Add rows to an existing file instead of starting a new one. The file's header must be
   * the one this run would write (same metrics); an empty or missing file gets a header.
   * Default false.
   */
  append?: boolean;
}

/**
 * Writes one CSV row per epoch (fastai's CSVLogger): `epoch` (0-based), `train_loss` (mean of
 * the epoch's raw train losses, as the Recorder's), `valid_loss` and one column per metric
 * (empty when the epoch had no validation pass), and `time` (the epoch's seconds).
 *
 * The header is written at trainBegin and each row is appended whole at epochEnd, so the file
 * is valid CSV at every epoch end.
 *
 * State: the rows this fit wrote (`rows`), how many lines of the file came before them
 * (`startLine`: the header, plus earlier fits' rows with `append`), and the running epoch's
 * sums; path and append are options. A resume at epoch N (`jumpToEpoch`, after setState)
 * rewrites the file as those first lines plus the saved rows of epochs < N: the rows an
 * interrupted run wrote after its checkpoint go, no epoch appears twice, and the rows before
 * the checkpoint come back even when the resumed fit started the file afresh.
 */
export class CSVLogger extends Callback {
  // After the Recorder (50): the row describes a finished epoch.
  override order = 55;
  readonly path: string;
  readonly append: boolean;
  /** The header's column names, fixed at trainBegin from the learner's metrics. */
  columns: string[] = [];
  /** The rows of this fit, in order: the epoch and the CSV record (without its newline). */
  rows: Array<{ epoch: number; line: string }> = [];
  /** Lines of the file before this fit's first row. */
  startLine = 0;
  protected lossSum = 0;
  protected lossCount = 0;
  protected epochValid: Record<string, number> | null = null;
  // A performance.now() reading means nothing in another process: not state.
  protected epochStart = performance.now();
  protected override readonly stateKeys: readonly string[] = ['rows', 'startLine', 'lossSum', 'lossCount', 'epochValid'];

  constructor(options: CSVLoggerOptions = {}) {
    super();
    const path = options.path ?? 'history.csv';
    if (typeof path !== 'string' || path === '') throw new ConfigError(`CSVLogger: path must be a file path, got ${String(path)}`);
    this.path = path;
    this.append = options.append ?? false;
  }

  onTrainBegin(): void {
    const valid = this.learn.data.valid ? ['valid_loss', ...this.learn.metrics.map((m) => snake(m.name))] : [];
    const columns = ['epoch', 'train_loss', ...valid, 'time'];
    const header = csvLine(columns);
    makeDir(dirname(this.path), 'CSVLogger path');
    const existing = this.append && existsSync(this.path) ? readFileSync(this.path, 'utf8') : '';
    if (existing.length > 0) {
      const first = existing.slice(0, existing.indexOf('\n') + 1 || undefined);
      if (first !== header) {
        throw new ConfigError(
          `CSVLogger: ${this.path} has the header ${JSON.stringify(first.trim())} but this run writes ${JSON.stringify(header.trim())}; ` +
            'log to another path, or pass append: false to start the file afresh',
        );
      }
    } else {
      writeFileSync(this.path, header);
    }
    this.columns = columns;
    this.rows = [];
    this.startLine = existing.length > 0 ? lines(existing).length : 1;
    this.lossSum = 0;
    this.lossCount = 0;
    this.epochValid = null;
  }

  onEpochBegin(): void {
    this.epochStart = performance.now();
    this.lossSum = 0;
    this.lossCount = 0;
    this.epochValid = null;
  }

  onBatchEnd(ctx: TrainContext): void {
    if (!ctx.train) return;
    // Summed when the loop reads the losses in bulk, by the epoch's end at the latest.
    ctx.readLossLater((loss) => {
      if (loss !== null && Number.isFinite(loss)) {
        this.lossSum += loss;
        this.lossCount += 1;
      }
    });
  }

  onValidateEnd(ctx: TrainContext): void {
    this.epochValid = ctx.lastMetrics ? { ...ctx.lastMetrics } : null;
  }

  onEpochEnd(ctx: TrainContext): void {
    const values: Record<string, string> = {
      epoch: String(ctx.epoch),
      train_loss: this.lossCount ? String(this.lossSum / this.lossCount) : '',
      time: ((performance.now() - this.epochStart) / 1000).toFixed(3),
    };
    for (const [key, value] of Object.entries(this.epochValid ?? {})) values[snake(key)] = String(value);
    const line = csvLine(this.columns.map((c) => values[c] ?? ''));
    appendFileSync(this.path, line);
    this.rows.push({ epoch: ctx.epoch, line: line.slice(0, -1) });
  }

  /** Resuming at `epoch`: the file's first `startLine` lines, then this fit's rows of earlier epochs. */
  jumpToEpoch(epoch: number): void {
    this.rows = this.rows.filter((r) => r.epoch < epoch);
    const before = existsSync(this.path) ? lines(readFileSync(this.path, 'utf8')).slice(0, this.startLine) : [];
    writeFileAtomic(this.path, [...before, ...this.rows.map((r) => r.line)].map((l) => l + '\n').join(''));
  }
}

/** The file's records (each ends with a newline; a torn last line without one is left out). */
function lines(text: string): string[] {
  const all = text.split('\n');
  all.pop();
  return all;
}

function snake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** One CSV record (RFC 4180: fields with a comma, quote or newline are quoted). */
function csvLine(fields: string[]): string {
  return fields.map((f) => (/[",\r\n]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f)).join(',') + '\n';
}
