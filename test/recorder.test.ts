import * as tf from '@tensorflow/tfjs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Recorder } from '../callbacks/recorder.js';
import { Callback } from '../src/loop/callback.js';
import type { TrainContext } from '../src/loop/context.js';
import type { Learner } from '../src/learner.js';
import { plotFont, plotPaths, svgToPng } from '../src/plot/render.js';
import { tinyLearner } from './support/tracing.js';

let dir: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'trainchart-recorder-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cosV1 = (start: number, end: number, pct: number) => end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);
const oneCycle = (pos: number, a: number, peak: number, b: number) => (pos < 0.25 ? cosV1(a, peak, pos / 0.25) : cosV1(peak, b, (pos - 0.25) / 0.75));

/** Raw losses and validation results as the loop hands them out, independently of the Recorder. */
class LossProbe extends Callback {
  losses: number[][] = [];
  valid: Array<Record<string, number> | null> = [];
  iterations: number[] = [];
  onEpochBegin() {
    this.losses.push([]);
  }
  onBatchEnd(ctx: TrainContext) {
    if (ctx.train) this.losses.at(-1)!.push(ctx.lastLossValue!);
  }
  onValidateEnd(ctx: TrainContext) {
    this.valid.push(ctx.lastMetrics ? { ...ctx.lastMetrics } : null);
  }
  onEpochEnd(ctx: TrainContext) {
    this.iterations.push(ctx.iteration);
  }
}

/** A minimal PNG decoder: checks the signature and chunk CRC-free structure, inflates, undoes the row filters. */
function decodePng(buf: Buffer): { width: number; height: number; rgba: Uint8Array } {
  expect(buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  let off = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  let ended = false;
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('ascii', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect(data[8]).toBe(8); // bit depth
      expect(data[9]).toBe(6); // RGBA
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') ended = true;
    off += 12 + len;
  }
  expect(ended).toBe(true);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * 4;
  expect(raw.length).toBe(height * (stride + 1));
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x]!;
      const a = x >= 4 ? out[y * stride + x - 4]! : 0;
      const b = y > 0 ? out[(y - 1) * stride + x]! : 0;
      const c = x >= 4 && y > 0 ? out[(y - 1) * stride + x - 4]! : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[y * stride + x] = (v + pred) & 0xff;
    }
  }
  return { width, height, rgba: out };
}

/** Pixels whose r + g + b is below `limit` (765 is white). */
function pixelsDarkerThan(rgba: Uint8Array, limit: number): number {
  let n = 0;
  for (let i = 0; i < rgba.length; i += 4) if (rgba[i]! + rgba[i + 1]! + rgba[i + 2]! < limit) n++;
  return n;
}

async function expectChartFiles(files: { svg: string; png: string }, texts: string[]) {
  const svg = await readFile(files.svg, 'utf8');
  expect(svg.startsWith('<svg')).toBe(true);
  for (const t of texts) expect(svg, `SVG should contain "${t}"`).toContain(`>${t}<`);
  const png = decodePng(await readFile(files.png));
  // Rendered at 2× the chart's SVG size.
  const m = /width="(\d+)" height="(\d+)"/.exec(svg)!;
  expect(png.width).toBe(2 * Number(m[1]));
  expect(png.height).toBe(2 * Number(m[2]));
  expect(png.width).toBeGreaterThan(600);
  // Something is drawn: lines, grid and axes (text too, but that needs a font: see the last test).
  expect(pixelsDarkerThan(png.rgba, 700)).toBeGreaterThan(2000);
}

describe('Recorder: what it records', () => {
  it('per batch the lr and momentum the step used under one-cycle, the raw and smoothed loss; per epoch train/valid results', async () => {
    const probe = new LossProbe();
    const learn = tinyLearner([probe], { recorder: true }, 16, 4);
    const rec = learn.recorder!;
    await learn.fitOneCycle(2, { lrMax: 0.05 });
    const total = 16;
    expect(rec.lrs).toHaveLength(total);
    expect(rec.iterations).toEqual(Array.from({ length: total }, (_, i) => i));
    rec.lrs.forEach((lr, i) => expect(lr).toBeCloseTo(oneCycle(i / total, 0.05 / 25, 0.05, 0.05 / 1e5), 14));
    rec.moms.forEach((m, i) => expect(m).toBeCloseTo(oneCycle(i / total, 0.95, 0.85, 0.95), 14));
    expect(rec.losses).toEqual(probe.losses.flat());
    // smoothLosses: fastai's debiased EMA of the raw losses.
    let avg = 0;
    rec.smoothLosses.forEach((s, i) => {
      avg = 0.98 * avg + 0.02 * rec.losses[i]!;
      expect(s).toBeCloseTo(avg / (1 - 0.98 ** (i + 1)), 12);
    });
    expect(rec.epochs.map((e) => e.epoch)).toEqual([0, 1]);
    rec.epochs.forEach((e, k) => {
      const ls = probe.losses[k]!;
      expect(e.trainLoss).toBeCloseTo(ls.reduce((a, b) => a + b, 0) / ls.length, 12);
      expect(e.valid).toEqual(probe.valid[k]);
      expect(e.iteration).toBe(probe.iterations[k]);
      expect(e.seconds).toBeGreaterThanOrEqual(0);
    });
    expect(Object.keys(rec.epochs[0]!.valid!)).toEqual(['validLoss', 'accuracy']);
  });

  it('exports CSV and JSON that carry every record exactly, and saveHistory writes them', async () => {
    const learn = tinyLearner([], { recorder: true }, 12, 4);
    const rec = learn.recorder!;
    await learn.fit(2, { lr: 0.05 });
    const json = rec.toJSON();
    expect(json.batches).toHaveLength(12);
    json.batches.forEach((b, i) => {
      expect(b).toEqual({ iteration: rec.iterations[i], lr: rec.lrs[i], mom: rec.moms[i], loss: rec.losses[i], smoothLoss: rec.smoothLosses[i] });
    });
    expect(json.epochs).toEqual(rec.epochs);
    const { batches, epochs } = rec.toCSV();
    const rows = batches.trim().split('\n').map((l) => l.split(','));
    expect(rows[0]).toEqual(['iteration', 'lr', 'mom', 'loss', 'smoothLoss']);
    rows.slice(1).forEach((r, i) => {
      expect(r.map(Number)).toEqual([rec.iterations[i], rec.lrs[i], rec.moms[i], rec.losses[i], rec.smoothLosses[i]]);
    });
    const erows = epochs.trim().split('\n').map((l) => l.split(','));
    expect(erows[0]).toEqual(['epoch', 'trainLoss', 'validLoss', 'accuracy', 'seconds', 'iteration']);
    erows.slice(1).forEach((r, k) => {
      const e = rec.epochs[k]!;
      expect(r.map(Number)).toEqual([e.epoch, e.trainLoss, e.valid!.validLoss, e.valid!.accuracy, e.seconds, e.iteration]);
    });
    const files = await rec.saveHistory(join(dir, 'hist', 'run1'));
    expect(files).toEqual({ json: join(dir, 'hist', 'run1.json'), batchesCsv: join(dir, 'hist', 'run1-batches.csv'), epochsCsv: join(dir, 'hist', 'run1-epochs.csv') });
    expect(JSON.parse(await readFile(files.json, 'utf8'))).toEqual(JSON.parse(JSON.stringify(json)));
    expect(await readFile(files.batchesCsv, 'utf8')).toBe(batches);
    expect(await readFile(files.epochsCsv, 'utf8')).toBe(epochs);
  });

  it('getState/setState round-trips everything, mid-epoch counters included', async () => {
    let captured: Record<string, unknown> | null = null;
    class GrabMidEpoch extends Callback {
      override order = 99;
      onBatchEnd(ctx: TrainContext) {
        if (ctx.train && ctx.epoch === 1 && ctx.batchIndex === 2) captured = (this.learn as Learner).recorder!.getState();
      }
    }
    const learn = tinyLearner([new GrabMidEpoch()], { recorder: true }, 12, 4);
    await learn.fit(2, { lr: 0.05 });
    const state = captured!;
    expect(Object.keys(state).sort()).toEqual(
      ['iterations', 'batchEpochs', 'lrs', 'moms', 'losses', 'smoothLosses', 'epochs', 'lossSum', 'lossCount', 'validMetrics'].sort(),
    );
    // A performance.now() reading means nothing in another process: never state.
    expect(state).not.toHaveProperty('epochStart');
    expect((state.lrs as number[]).length).toBe(9);
    expect(state.batchEpochs).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 1]);
    expect(state.lossCount).toBe(3);
    const copy = new Recorder();
    copy.setState(state);
    expect(copy.getState()).toEqual(state);
    // A copy, not shared arrays.
    (state.lrs as number[]).push(1);
    expect(copy.lrs).toHaveLength(9);
    const full = new Recorder();
    full.setState(learn.recorder!.getState());
    expect(full.toJSON()).toEqual(learn.recorder!.toJSON());
    expect(full.toCSV()).toEqual(learn.recorder!.toCSV());
  });
});

describe('Recorder: plots (Vega-Lite → SVG, resvg → PNG)', () => {
  it('plotPaths: a stem or either extension names the pair', () => {
    expect(plotPaths('a/b')).toEqual({ svg: 'a/b.svg', png: 'a/b.png' });
    expect(plotPaths('a/b.svg')).toEqual({ svg: 'a/b.svg', png: 'a/b.png' });
    expect(plotPaths('a/b.PNG')).toEqual({ svg: 'a/b.svg', png: 'a/b.png' });
  });

  it('plotLoss and plotLr write labelled SVG and decodable PNG', async () => {
    const learn = tinyLearner([], { recorder: true }, 40, 6);
    await learn.fitOneCycle(2, { lrMax: 0.05 });
    const rec = learn.recorder!;
    const loss = await rec.plotLoss(join(dir, 'loss.svg'));
    expect(loss).toEqual({ svg: join(dir, 'loss.svg'), png: join(dir, 'loss.png') });
    await expectChartFiles(loss, ['Loss', 'Iteration (train batches)', 'train (smoothed)', 'valid']);
    const lr = await rec.plotLr(join(dir, 'lr'));
    await expectChartFiles(lr, ['Learning rate', 'Momentum', 'Iteration (train batches)', 'Hyper-parameter schedule']);
  });

  it('plotLrFind: loss against lr on a log axis (tick labels 1e-6, 1e-4, 1e-2), suggestions marked and named', async () => {
    const learn = tinyLearner([], { recorder: true, optimizer: 'adam' }, 40, 0);
    const res = await learn.lrFind({ startLr: 1e-6, endLr: 1, numIt: 60, stopDiv: false });
    const rec = learn.recorder!;
    // The Recorder holds the search, as fastai's does after lr_find.
    expect(rec.lrs).toEqual(res.lrs);
    expect(rec.smoothLosses).toEqual(res.losses);
    const files = await rec.plotLrFind(join(dir, 'find.png'), { suggestions: { valley: 1e-3, steep: 1e-4 } });
    await expectChartFiles(files, ['Learning rate (log scale)', 'Loss (smoothed)', 'LR finder', '1e-6', '1e-4', '1e-2', 'valley', 'steep']);
    const svg = await readFile(files.svg, 'utf8');
    expect(svg).toContain('valley: 1.00e-3');
  });

  // Skipped only on a developer machine without any font; CI (which installs one) always runs it.
  it.skipIf(!plotFont().available && process.env.CI !== 'true')('the PNG has its text drawn (a font was found on this machine)', async () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="60"><text x="10" y="40" font-family="sans-serif" font-size="30" fill="black">Loss 1e-3</text></svg>';
    const png = decodePng(await svgToPng(svg));
    expect(png.width).toBe(400);
    // Black glyphs; an empty white image without a usable font.
    expect(pixelsDarkerThan(png.rgba, 300)).toBeGreaterThan(200);
  });
});
