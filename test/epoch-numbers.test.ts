/**
 * One convention for epoch numbers: what a person reads counts from 1 ("epoch 1 of 2", the
 * progress bar, the table), what a program reads counts from 0 (`ctx.epoch`, the Recorder,
 * history.json, CSVLogger's column, SaveModel's file names). Off a terminal the table is
 * contiguous: no progress lines between its rows.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSVLogger } from '../callbacks/csvLogger.js';
import { Progress } from '../callbacks/progress.js';
import { tinyLearner } from './support/tracing.js';

const run = promisify(execFile);
const CLI = 'dist/src/cli/main.js';
const dir = mkdtempSync(join(tmpdir(), 'trainchart-epochs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(async () => {
  await tf.setBackend('cpu');
});

const QUICK = ['--epochs', '2', '--limit-train', '128', '--limit-valid', '64', '--backend', 'cpu'];

/** The table's lines: the header and what follows it up to the first line that is not a row. */
function table(text: string): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^epoch\s+train_loss/.test(l));
  expect(start).toBeGreaterThanOrEqual(0);
  const rows = [lines[start]!];
  for (const l of lines.slice(start + 1)) {
    if (!/^\d+\s/.test(l)) break;
    rows.push(l);
  }
  return rows;
}

describe('trainchart train, piped (not a TTY)', () => {
  it('prints the table contiguous with epochs 1 and 2, no progress line anywhere; history.json keeps 0 and 1', async () => {
    const out = join(dir, 'plain');
    const { stdout } = await run('node', [CLI, 'train', ...QUICK, '--out', out], { maxBuffer: 1 << 24 });
    const rows = table(stdout);
    expect(rows.slice(1).map((r) => r.split(/\s+/)[0])).toEqual(['1', '2']);
    expect(stdout).not.toMatch(/^epoch \d+\/\d+/m);
    const history = JSON.parse(readFileSync(join(out, 'history.json'), 'utf8')) as Array<{ epoch: number }>;
    expect(history.map((e) => e.epoch)).toEqual([0, 1]);
  }, 60_000);

  it('with --json: the table (1-based) on stderr, the JSON line on stdout counts epochs run', async () => {
    const { stdout, stderr } = await run('node', [CLI, 'train', ...QUICK, '--json'], { maxBuffer: 1 << 24 });
    expect(table(stderr).slice(1).map((r) => r.split(/\s+/)[0])).toEqual(['1', '2']);
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as { epochs: number };
    expect(summary.epochs).toBe(2);
  }, 60_000);
});

describe('the API: Progress counts from 1, CSVLogger (machine-facing) from 0, in the same run', () => {
  it('Progress rows 1, 2; the CSV epoch column 0, 1', async () => {
    const chunks: string[] = [];
    const path = join(dir, 'history.csv');
    await tinyLearner([new Progress({ stream: { write: (s: string) => chunks.push(s), isTTY: false } }), new CSVLogger({ path })]).fit(2);
    expect(table(chunks.join('')).slice(1).map((r) => r.split(/\s+/)[0])).toEqual(['1', '2']);
    const csv = readFileSync(path, 'utf8').trim().split('\n');
    expect(csv[0]!.split(',')[0]).toBe('epoch');
    expect(csv.slice(1).map((l) => l.split(',')[0])).toEqual(['0', '1']);
  });
});
