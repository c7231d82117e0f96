/**
 * `trainchart train --save-model [DIR]`: the trained model exported in tfjs's format, loaded
 * back with tf.loadLayersModel to the very weights the run reports (weightsSha256); a
 * directory that cannot take it is refused before any training. Also: the CLI's own Progress
 * replaces the Learner's default one, so the metrics table is printed once.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelFiles } from '../src/io/tfjsModelFiles.js';
import { weightsSha256 } from '../src/weightsHash.js';

const run = promisify(execFile);
const CLI = 'dist/src/cli/main.js';
let root: string;

beforeAll(async () => {
  await tf.setBackend('cpu');
  root = fs.mkdtempSync(join(tmpdir(), 'trainchart-cli-model-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('trainchart train --save-model', () => {
  it('bare --save-model exports to <out>/model; tf.loadLayersModel reads the weights the run reports; one table', async () => {
    const out = join(root, 'run');
    const args = ['train', '--epochs', '1', '--limit-train', '512', '--limit-valid', '256', '--backend', 'cpu', '--out', out, '--save-model', '--json'];
    const { stdout, stderr } = await run('node', [CLI, ...args], { maxBuffer: 1 << 24 });
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(summary.status).toBe('completed');
    expect(summary.modelDir).toBe(join(out, 'model'));
    expect(stderr).toContain(`exported the model (TensorFlow.js format) to ${join(out, 'model', 'model.json')}`);
    // Progress drawn once: the CLI's, not also the Learner's default one.
    expect(stderr.match(/^epoch\s+train_loss/gm)).toHaveLength(1);
    const loaded = await tf.loadLayersModel(loadModelFiles(join(out, 'model')));
    expect(weightsSha256(loaded)).toBe(summary.weightsSha256);
    loaded.dispose();
  }, 120_000);

  it('a directory that cannot take the model: exit 2 before training, with the reason and no stack trace', async () => {
    const file = join(root, 'a-file');
    fs.writeFileSync(file, '');
    for (const [dir, pattern] of [
      [file, /--save-model: .*a-file exists and is not a directory/],
      [join(file, 'model'), /--save-model: cannot write a model to .*a-file\/model/],
    ] as const) {
      const err = (await run('node', [CLI, 'train', '--epochs', '1', '--save-model', dir]).catch((e: unknown) => e)) as {
        code: number;
        stderr: string;
        stdout: string;
      };
      expect(err.code).toBe(2);
      expect(err.stderr).toMatch(pattern);
      expect(err.stderr).not.toMatch(/\n\s+at /);
      expect(err.stdout + err.stderr).not.toMatch(/data: MNIST|train_loss/); // nothing was trained
    }
  }, 60_000);
});
