import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CSVLogger } from '../callbacks/csvLogger.js';
import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import { tinyLearner } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const dirs: string[] = [];
function tempDir() {
  const d = mkdtempSync(join(tmpdir(), 'trainchart-csv-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Parses RFC 4180 CSV strictly enough for these files: every record must end with a newline. */
function parseCsv(text: string): string[][] {
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => line.split(','));
}

/** The raw train losses and the validation metrics of each epoch, and the file as it is at each epochEnd. */
class Probe extends Callback {
  override order = 90;
  losses: number[][] = [];
  metrics: Array<Record<string, number> | null> = [];
  fileAtEpochEnd: string[] = [];
  constructor(readonly path: string) {
    super();
  }
  onEpochBegin(ctx: TrainContext) {
    this.losses[ctx.epoch] = [];
    this.metrics[ctx.epoch] = null;
  }
  onBatchEnd(ctx: TrainContext) {
    if (ctx.train) this.losses[ctx.epoch]!.push(ctx.lastLossValue!);
  }
  onValidateEnd(ctx: TrainContext) {
    this.metrics[ctx.epoch] = { ...ctx.lastMetrics! };
  }
  onEpochEnd() {
    this.fileAtEpochEnd.push(readFileSync(this.path, 'utf8'));
  }
}

const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;

describe('CSVLogger', () => {
  it('header, then one row per epoch with the mean train loss and the validation metrics; valid CSV at every epoch end', async () => {
    const path = join(tempDir(), 'logs', 'history.csv');
    const probe = new Probe(path);
    const learn = tinyLearner([new CSVLogger({ path }), probe]);
    await learn.fit(3);
    const rows = parseCsv(readFileSync(path, 'utf8'));
    expect(rows[0]).toEqual(['epoch', 'train_loss', 'valid_loss', 'accuracy', 'time']);
    expect(rows.length).toBe(4);
    rows.slice(1).forEach((row, e) => {
      expect(row.length).toBe(5);
      expect(Number(row[0])).toBe(e);
      expect(Number(row[1])).toBe(mean(probe.losses[e]!));
      expect(Number(row[2])).toBe(probe.metrics[e]!.validLoss);
      expect(Number(row[3])).toBe(probe.metrics[e]!.accuracy);
      expect(Number(row[4])).toBeGreaterThanOrEqual(0);
    });
    probe.fileAtEpochEnd.forEach((text, e) => {
      const at = parseCsv(text);
      expect(at.length).toBe(e + 2);
      expect(at.every((r) => r.length === 5)).toBe(true);
    });
  });

  it('an epoch without validation leaves its valid cells empty', async () => {
    const path = join(tempDir(), 'h.csv');
    class SkipFirst extends Callback {
      onEpochBegin(ctx: TrainContext) {
        return ctx.epoch === 0 ? { skipValidate: true } : undefined;
      }
    }
    await tinyLearner([new SkipFirst(), new CSVLogger({ path })]).fit(2);
    const rows = parseCsv(readFileSync(path, 'utf8'));
    expect(rows[1]![2]).toBe('');
    expect(rows[1]![3]).toBe('');
    expect(rows[2]![2]).not.toBe('');
  });

  it('append adds rows under the existing header; without append a fit starts the file afresh', async () => {
    const path = join(tempDir(), 'h.csv');
    await tinyLearner([new CSVLogger({ path })]).fit(2);
    await tinyLearner([new CSVLogger({ path, append: true })]).fit(1);
    let rows = parseCsv(readFileSync(path, 'utf8'));
    expect(rows.map((r) => r[0])).toEqual(['epoch', '0', '1', '0']);
    await tinyLearner([new CSVLogger({ path })]).fit(1);
    rows = parseCsv(readFileSync(path, 'utf8'));
    expect(rows.map((r) => r[0])).toEqual(['epoch', '0']);
  });

  it('append to a file with another header is a ConfigError that says what to do', async () => {
    const path = join(tempDir(), 'h.csv');
    writeFileSync(path, 'a,b\n1,2\n');
    const err = await tinyLearner([new CSVLogger({ path, append: true })]).fit(1).catch((e: unknown) => e);
    expect((err as Error).cause).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/log to another path, or pass append: false/);
    expect(readFileSync(path, 'utf8')).toBe('a,b\n1,2\n');
  });

  it('jumpToEpoch(N) (resume) drops the rows of epochs ≥ N', async () => {
    const path = join(tempDir(), 'h.csv');
    const logger = new CSVLogger({ path });
    await tinyLearner([logger]).fit(3);
    logger.jumpToEpoch(1);
    expect(parseCsv(readFileSync(path, 'utf8')).map((r) => r[0])).toEqual(['epoch', '0']);
  });
});
