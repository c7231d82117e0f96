import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('the main job (`npm start` = `trainchart train` with its defaults)', () => {
  it('trains the MLP on all 60k MNIST images and reaches ≥ 97% on the full 10k test set', async () => {
    const { stdout } = await run('node', ['dist/src/cli/main.js', 'train', '--json'], { maxBuffer: 1 << 24 });
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, number | string>;
    expect(result.status).toBe('completed');
    expect(result.epochs).toBe(3);
    expect(result.iterations).toBe(3 * 938);
    expect(result.accuracy as number).toBeGreaterThanOrEqual(0.97);
  }, 600_000);
});
