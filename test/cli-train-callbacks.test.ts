import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { readWeights } from '../src/io/weightsFile.js';
import { mlp } from '../src/models/presets.js';

const run = promisify(execFile);
const CLI = 'dist/src/cli/main.js';
const dir = mkdtempSync(join(tmpdir(), 'trainchart-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('trainchart train --one-cycle / --early-stopping / --save-best (the CLI, built by `npm test`)', () => {
  it('trains one-cycle, saves the best weights into --out, and reports them in the JSON summary', async () => {
    const out = join(dir, 'run');
    const args = ['train', '--epochs', '2', '--limit-train', '600', '--limit-valid', '500', '--backend', 'cpu', '--seed', '3'];
    const { stdout, stderr } = await run(
      'node',
      [CLI, ...args, '--one-cycle', '--lr-max', '0.005', '--early-stopping', '1', '--save-best', '--out', out, '--json'],
      { maxBuffer: 1 << 24 },
    );
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(['completed', 'stopped']).toContain(summary.status);
    expect(summary.lrMax).toBe(0.005);
    expect(summary.bestWeights).toBe(join(out, 'best.weights'));
    expect(existsSync(join(out, 'best.weights'))).toBe(true);
    expect(stderr).toMatch(/saved the best weights \(epoch \d of 2, validLoss \d\.\d{4}\) to /);
    // The file holds weights of the CLI's model architecture.
    const { header } = readWeights(join(out, 'best.weights'));
    await tf.setBackend('cpu');
    const model = mlp({ seed: 3 });
    expect(header.weights.map((w) => w.shape)).toEqual(model.weights.map((w) => w.shape));
    model.dispose();
  }, 120_000);

  it('bad uses of the new options exit with code 2 and say what to do', async () => {
    for (const [args, pattern] of [
      [['--lr-max', '0.01'], /--lr-max sets the peak of the one-cycle schedule: add --one-cycle/],
      [['--early-stopping', '0'], /--early-stopping must be an integer ≥ 1/],
      [['--one-cycle', '--lr-max', 'x'], /--lr-max must be a positive number/],
    ] as const) {
      const err = (await run('node', [CLI, 'train', ...args]).catch((e: unknown) => e)) as { code: number; stderr: string };
      expect(err.code).toBe(2);
      expect(err.stderr).toMatch(pattern);
    }
    const { stdout } = await run('node', [CLI, 'train', '--help']);
    for (const flag of ['--one-cycle', '--lr-max X', '--early-stopping P', '--save-best']) expect(stdout).toContain(flag);
  }, 60_000);
});
