/**
 * The wasm backend's multithreaded build (`selectBackend(…, { threads })`, `--threads N`; issue
 * 10: "adopt it when it is faster and still bit-deterministic run to run").
 *
 * Reference: the single-threaded build. XNNPACK hands each thread whole tiles of a kernel's
 * output and never splits a sum between threads, so the same training run must end with
 * byte-identical weights whatever the thread count (checked on the MLP, matrix products, and the
 * CNN, convolutions and their gradients). Each run is its own process (`trainchart train`, built
 * by `npm test`): a process's wasm backend has its thread count fixed when it first starts, and
 * the process must end by itself (the thread pool's workers may not keep it alive). Speed is not
 * asserted here: it is the benchmark's (`npm run bench`, the `wasmThreads` part).
 */
import * as tf from '@tensorflow/tfjs';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../src/backend/selectBackend.js';
import { BackendError, ConfigError } from '../src/errors.js';

const run = promisify(execFile);
const CLI = 'dist/src/cli/main.js';

interface Summary {
  status: string;
  backend: string;
  threads?: number;
  weightsSha256: string;
  accuracy: number;
}

async function train(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Summary> {
  // A timeout well above a run's few seconds: a process kept alive by the thread pool fails here.
  const { stdout } = await run('node', [CLI, 'train', '--backend', 'wasm', '--epochs', '1', '--limit-valid', '500', '--json', ...args], {
    maxBuffer: 1 << 24,
    timeout: 90_000,
    env,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Summary;
}

describe('trainchart train --threads N: the multithreaded wasm build, bit-identical to one thread', () => {
  for (const [model, limitTrain] of [
    ['mlp', '1920'],
    ['cnn', '384'],
  ] as const) {
    it(`${model}: the same weights (sha256) with 2 threads as with 1, and the process ends by itself`, async () => {
      const args = ['--model', model, '--limit-train', limitTrain, '--seed', '3'];
      const [one, two] = await Promise.all([train([...args, '--threads', '1']), train([...args, '--threads', '2'])]);
      expect(one.status).toBe('completed');
      expect(two.status).toBe('completed');
      expect([one.backend, one.threads]).toEqual(['wasm', 1]);
      expect([two.backend, two.threads]).toEqual(['wasm', 2]);
      expect(two.weightsSha256).toBe(one.weightsSha256);
      expect(two.accuracy).toBe(one.accuracy);
      // Without --threads the summary is as it always was.
      const plain = await train(args);
      expect(plain).not.toHaveProperty('threads');
      expect(plain.weightsSha256).toBe(one.weightsSha256);
    }, 180_000);
  }

  it('bad --threads exit with code 2 and a message naming the option; an unwritable TMPDIR is a backend error', async () => {
    const fail = async (args: string[], env?: NodeJS.ProcessEnv) =>
      (await train(args, env).then(
        () => ({ code: 0, stderr: '' }),
        (e: unknown) => e,
      )) as { code: number; stderr: string };
    for (const [args, pattern] of [
      [['--threads', '0'], /--threads must be an integer ≥ 1, got "0"/],
      [['--threads', '1.5'], /--threads must be an integer ≥ 1, got "1\.5"/],
      [['--threads', '9'], /threads must be an integer from 1 to 8/],
      [['--threads', '2', '--backend', 'cpu'], /threads \(2\) apply to the wasm backend only, not 'cpu'/],
    ] as const) {
      const err = await fail([...args]);
      expect(err.code, args.join(' ')).toBe(2);
      expect(err.stderr).toMatch(pattern);
    }
    // The pthread worker's script is written to the temp directory: where it cannot be, the run
    // fails before training with what to do, not with a worker's crash.
    const dir = mkdtempSync(join(tmpdir(), 'trainchart-threads-'));
    try {
      const notADir = join(dir, 'file');
      writeFileSync(notADir, '');
      const err = await fail(['--threads', '2', '--limit-train', '64'], { ...process.env, TMPDIR: join(notADir, 'sub') });
      expect(err.code).not.toBe(0);
      expect(err.stderr).toMatch(/cannot start the threaded wasm backend: its worker script could not be written to .*set TMPDIR to a writable directory/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('selectBackend(choice, log, { threads })', () => {
  it('rejects a bad thread count, and threads on a backend other than wasm, before anything starts', async () => {
    for (const threads of [0, 1.5, 9, Number.NaN]) {
      await expect(selectBackend('wasm', undefined, { threads }), String(threads)).rejects.toThrow(ConfigError);
    }
    await expect(selectBackend('cpu', undefined, { threads: 2 })).rejects.toThrow(/apply to the wasm backend only/);
    await expect(selectBackend('tensorflow', undefined, { threads: 2 })).rejects.toThrow(ConfigError);
  });

  it('once wasm runs single-threaded, asking for 2 threads is a BackendError that leaves it as it was', async () => {
    const lines: string[] = [];
    const first = await selectBackend('wasm', (l) => lines.push(l));
    expect([first.name, first.threads]).toEqual(['wasm', 1]);
    expect(lines[0]).toBe('backend: wasm');
    const error = await selectBackend('wasm', undefined, { threads: 2 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as Error).message).toMatch(/already runs with 1 thread\(s\) in this process.*ask for 2 at the first selectBackend call/);
    expect(tf.getBackend()).toBe('wasm');
    // Asking for what runs, or not asking, is fine.
    expect((await selectBackend('wasm', undefined, { threads: 1 })).threads).toBe(1);
    expect((await selectBackend('wasm')).threads).toBe(1);
    expect(tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0])).toBe(3);
    const cpu = await selectBackend('cpu');
    expect([cpu.name, cpu.threads]).toEqual(['cpu', 1]);
  });
});
