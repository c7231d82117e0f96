import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = 'dist/src/cli/main.js';

async function train(args: string[]) {
  const { stdout } = await run('node', [CLI, 'train', ...args], { maxBuffer: 1 << 24 });
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines.at(-1)!) as Record<string, unknown>;
}

describe('trainchart train (the CLI, built by `npm test`)', () => {
  it('mlp, 1 epoch on 6000 images: ≥ 90% on the full test set, and the same seed gives the same weights', async () => {
    const args = ['--model', 'mlp', '--epochs', '1', '--limit-train', '6000', '--seed', '1', '--json'];
    const [a, b] = [await train(args), await train(args)];
    expect(a.status).toBe('completed');
    expect(a.epochs).toBe(1);
    expect(a.iterations).toBe(94);
    expect(a.accuracy as number).toBeGreaterThanOrEqual(0.9);
    for (const key of ['trainLoss', 'validLoss', 'backend', 'seconds', 'weightsSha256']) expect(a).toHaveProperty(key);
    expect(a.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(b.weightsSha256).toBe(a.weightsSha256);
    expect(b.accuracy).toBe(a.accuracy);
    const other = await train(['--model', 'mlp', '--epochs', '1', '--limit-train', '600', '--seed', '2', '--json']);
    expect(other.weightsSha256).not.toBe(a.weightsSha256);
  }, 120_000);

  it('bad options exit with code 2 and a message naming the option', async () => {
    for (const [args, pattern] of [
      [['--epochs', '0'], /--epochs must be an integer ≥ 1/],
      [['--lr=-1'], /--lr must be a positive number/],
      [['--model', 'resnet'], /--model must be one of mlp, cnn/],
      [['--bogus'], /Unknown option '--bogus'/],
    ] as const) {
      const err = (await run('node', [CLI, 'train', ...args]).catch((e: unknown) => e)) as { code: number; stderr: string };
      expect(err.code).toBe(2);
      expect(err.stderr).toMatch(pattern);
    }
  }, 60_000);
});
