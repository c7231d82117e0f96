import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = 'dist/src/cli/main.js';

describe('trainchart lr-find (the CLI, built by `npm test`)', () => {
  it('mlp on full MNIST (the acceptance command): the 100 exponential lrs, a valley between 1e-4 and 1e-1, an SVG and a PNG', async () => {
    const out = await mkdtemp(join(tmpdir(), 'trainchart-lr-find-'));
    try {
      const { stdout } = await run('node', [CLI, 'lr-find', '--model', 'mlp', '--out', out, '--json'], {
        maxBuffer: 1 << 24,
      });
      const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
        lrs: number[];
        losses: Array<number | null>;
        suggestions: Record<'valley' | 'steep' | 'minimum' | 'slide', number>;
        recommended: string;
        plot: { svg: string; png: string };
      };
      expect(result.lrs).toHaveLength(100);
      result.lrs.forEach((lr, i) => expect(lr).toBeCloseTo(1e-7 * (10 / 1e-7) ** (i / 100), 12));
      expect(result.losses).toHaveLength(100);
      expect(result.recommended).toBe('valley');
      expect(result.suggestions.valley).toBeGreaterThan(1e-4);
      expect(result.suggestions.valley).toBeLessThan(1e-1);
      for (const key of ['steep', 'minimum', 'slide'] as const) expect(result.suggestions[key]).toBeGreaterThan(0);
      expect(result.plot).toEqual({ svg: join(out, 'lr-find.svg'), png: join(out, 'lr-find.png') });
      const svg = await readFile(result.plot.svg, 'utf8');
      expect(svg).toContain('>Learning rate (log scale)<');
      expect(svg).toContain('>valley<');
      const png = await readFile(result.plot.png);
      expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
      expect(png.length).toBeGreaterThan(10_000);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }, 60_000);

  it('bad options exit with code 2 and a message naming the option', async () => {
    for (const [args, pattern] of [
      [['--num-it', '0'], /--num-it must be an integer ≥ 1/],
      [['--start-lr=-1'], /--start-lr must be a positive number/],
      [['--epochs', '2'], /Unknown option '--epochs'/],
    ] as const) {
      const err = (await run('node', [CLI, 'lr-find', ...args]).catch((e: unknown) => e)) as { code: number; stderr: string };
      expect(err.code).toBe(2);
      expect(err.stderr).toMatch(pattern);
    }
  }, 30_000);
});
