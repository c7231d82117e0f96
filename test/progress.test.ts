import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Progress } from '../callbacks/progress.js';
import { Callback } from '../src/loop/callback.js';
import type { TrainContext } from '../src/loop/context.js';
import { tinyLearner } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function capture(isTTY: boolean, columns?: number) {
  const chunks: string[] = [];
  return { chunks, stream: { write: (s: string) => chunks.push(s), isTTY, ...(columns ? { columns } : {}) } };
}

/** The raw train losses and validation metrics per epoch, to check the table's values against. */
class Truth extends Callback {
  losses: number[][] = [];
  metrics: Array<Record<string, number>> = [];
  onEpochBegin(ctx: TrainContext) {
    this.losses[ctx.epoch] = [];
  }
  onBatchEnd(ctx: TrainContext) {
    if (ctx.train) this.losses[ctx.epoch]!.push(ctx.lastLossValue!);
  }
  onValidateEnd(ctx: TrainContext) {
    this.metrics[ctx.epoch] = { ...ctx.lastMetrics! };
  }
}

const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;

describe('Progress', () => {
  it('not a TTY: the metrics table alone, contiguous (header, then one row per epoch, nothing between), epochs 1-based', async () => {
    const { chunks, stream } = capture(false);
    const truth = new Truth();
    // 8 train batches per epoch, 3 epochs: plenty of batches whose progress lines could interleave.
    await tinyLearner([truth, new Progress({ stream })], {}, 16, 4).fit(3);
    const text = chunks.join('');
    expect(text).not.toMatch(/\r|\x1b/);
    const lines = text.trimEnd().split('\n');
    // Every line is the table: nothing before the header, between the rows or after them.
    expect(lines).toHaveLength(4);
    expect(lines[0]!.split(/\s+/)).toEqual(['epoch', 'train_loss', 'valid_loss', 'accuracy', 'time']);
    lines.slice(1).forEach((row, e) => {
      const cells = row.split(/\s+/);
      expect(cells[0]).toBe(String(e + 1)); // 1-based, as people count epochs (Keras), like the TTY bar's "epoch 1/3"
      expect(cells[1]).toBe(mean(truth.losses[e]!).toFixed(4));
      expect(cells[2]).toBe(truth.metrics[e]!.validLoss!.toFixed(4));
      expect(cells[3]).toBe(truth.metrics[e]!.accuracy!.toFixed(4));
      expect(cells[4]).toMatch(/^\d\d:\d\d$/);
    });
    // Columns line up: every cell starts where its header does.
    const starts = (l: string) => [...l.matchAll(/\S+/g)].map((m) => m.index);
    expect(starts(lines[1]!)).toEqual(starts(lines[0]!));
  });

  it('the bar and the table name an epoch alike: the row after the bar "epoch 2/2" says 2', async () => {
    const { chunks, stream } = capture(true, 120);
    await tinyLearner([new Progress({ stream })]).fit(2);
    const rowAfter = (e: number) => {
      const lastBar = chunks.map((c) => c.startsWith(`\repoch ${e}/2 `)).lastIndexOf(true);
      return chunks.slice(lastBar).find((c) => /^\d+\s/.test(c))!;
    };
    expect(rowAfter(1)).toMatch(/^1\s/);
    expect(rowAfter(2)).toMatch(/^2\s/);
  });

  it('a TTY: bars redrawn in place (\\r … \\x1b[K) for the train and validation passes, cleared before each table row', async () => {
    const { chunks, stream } = capture(true, 120);
    const truth = new Truth();
    await tinyLearner([truth, new Progress({ stream })]).fit(2);
    const bars = chunks.filter((c) => c.startsWith('\r') && c.length > 4);
    // The first and last batch of every pass are always drawn (3 train, 2 valid batches per epoch).
    for (const e of [1, 2]) {
      expect(bars).toContainEqual(expect.stringMatching(new RegExp(`^\\repoch ${e}/2 train \\|█{30}\\| 100% \\[3/3 \\d\\d:\\d\\d<00:00 loss \\d\\.\\d{4}\\]\\x1b\\[K$`)));
      expect(bars).toContainEqual(expect.stringMatching(new RegExp(`^\\repoch ${e}/2 valid \\|█{30}\\| 100% \\[2/2 \\d\\d:\\d\\d<00:00\\]\\x1b\\[K$`)));
      expect(bars).toContainEqual(expect.stringMatching(new RegExp(`^\\repoch ${e}/2 train \\|█{10}-{20}\\| 33% \\[1/3 `)));
    }
    for (const b of bars) expect(b).not.toContain('\n');
    // Each table row comes right after a clear of the bar line.
    const rows = chunks.map((c, i) => [c, i] as const).filter(([c]) => /^\d+\s/.test(c));
    expect(rows.length).toBe(2);
    for (const [, i] of rows) {
      const lastRedraw = chunks.slice(0, i).filter((c) => c.startsWith('\r')).at(-1);
      expect(lastRedraw).toBe('\r\x1b[K');
    }
    expect(chunks.at(-1)).toMatch(/^2\s/); // nothing drawn after the last row (epoch 2 of 2)
  });

  it('a TTY stream is detected without the tty option; tty: false forces plain lines', async () => {
    const a = capture(true);
    await tinyLearner([new Progress({ stream: a.stream })]).fit(1);
    expect(a.chunks.some((c) => c.startsWith('\r'))).toBe(true);
    const b = capture(true);
    await tinyLearner([new Progress({ stream: b.stream, tty: false })]).fit(1);
    expect(b.chunks.some((c) => c.includes('\r'))).toBe(false);
  });

  it('a run stopped mid-pass on a TTY leaves no bar behind', async () => {
    const { chunks, stream } = capture(true);
    class Fail extends Callback {
      onBatchEnd(ctx: TrainContext) {
        if (ctx.train && ctx.batchIndex === 1) throw new Error('boom');
      }
    }
    await tinyLearner([new Progress({ stream }), new Fail()]).fit(1).catch(() => undefined);
    expect(chunks.at(-1)).toBe('\r\x1b[K');
  });
});
