/**
 * `npm run bench -- --quick` runs in CI so the benchmark cannot rot (issue 10). No timing is
 * asserted — speed lives in the benchmark's own output (docs/benchmarks.md) — only that every
 * contender ran on every backend and model and that the JSON it prints last has every part.
 *
 * It runs what the script runs after its build step (`npm test` has just built dist/): a second
 * build here would rewrite dist/ under the CLI tests running beside this one.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const run = promisify(execFile);

describe('npm run bench -- --quick', () => {
  it('the bench script is the build plus dist/bench/run.js', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.bench).toBe('npm run build && node --expose-gc dist/bench/run.js');
    expect(existsSync(join(root, 'dist/bench/run.js'))).toBe(true);
  });

  it('runs every contender on wasm and cpu, MLP and CNN, and ends stdout with the whole result as JSON', { timeout: 300_000 }, async () => {
    const { stdout } = await run(process.execPath, ['--expose-gc', 'dist/bench/run.js', '--quick', '--json'], {
      cwd: root,
      maxBuffer: 1 << 24,
      timeout: 290_000,
    });
    const lines = stdout.trimEnd().split('\n');
    const result = JSON.parse(lines.at(-1)!) as {
      quick: boolean;
      configs: Array<{ backend: string; kernels: string; model: string; batchSize: number; contenders: Record<string, { msPerBatch: { median: number; min: number; max: number } }>; ratios: Record<string, number> }>;
      machineAlone: Record<string, { median: number }>;
      memory: { epochs: Array<{ numTensors: number; rssMB: number }>; eventLoopLagP99Ms: number };
      checkpoint: { writeMs: { median: number } };
      hostReads: { defaults: { perTrainBatch: number }; none: { perTrainBatch: number } };
      checks: Record<string, { pass: boolean; limit: string }>;
      wasmThreads: {
        threads: number;
        error?: string;
        configs: Array<{ threads: number; model: string; contenders: Record<string, { msPerBatch: { median: number } }> }>;
        singleThreadConfigs: Array<{ threads: number; contenders: Record<string, { msPerBatch: { median: number } }> }>;
        speedupOfD: Array<{ speedup: number; singleMs: number; threadedMs: number }>;
      };
      machine: { cpus: number; node: string };
    };
    expect(result.quick).toBe(true);
    for (const backend of ['wasm', 'cpu']) {
      for (const model of ['mlp', 'cnn']) {
        const c = result.configs.find((x) => x.backend === backend && x.model === model && x.kernels === 'trainchart');
        expect(c, `${backend} ${model}`).toBeDefined();
        expect(Object.keys(c!.contenders).sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
        for (const k of Object.values(c!.contenders)) expect(k.msPerBatch.median).toBeGreaterThan(0);
        expect(Object.keys(c!.ratios).sort()).toEqual(['d/a', 'd/b', 'd/c', 'e/a', 'f/d']);
      }
    }
    expect(result.configs.some((c) => c.kernels === 'stock')).toBe(true);
    expect(result.machineAlone.usPerBatch10Callbacks!.median).toBeGreaterThan(0);
    expect(Number.isFinite(result.machineAlone.usPerBatch10CallbacksCacheCold!.median)).toBe(true);
    expect(result.memory.epochs.length).toBeGreaterThanOrEqual(2);
    expect(result.checkpoint.writeMs.median).toBeGreaterThan(0);
    // Counts, not times: these hold on any machine.
    expect(result.hostReads.defaults.perTrainBatch).toBeLessThanOrEqual(0.1);
    expect(result.checks['host reads per train batch, no callback reading the loss']!.pass).toBe(true);
    expect(result.checks['numTensors flat across epochs']!.pass).toBe(true);
    // The multithreaded wasm rows ran (in their child processes) with the threads asked for.
    expect(result.wasmThreads.error).toBeUndefined();
    expect(result.wasmThreads.configs.map((c) => [c.threads, c.model, Object.keys(c.contenders).sort().join()])).toEqual([
      [2, 'mlp', 'a,d'],
      [2, 'cnn', 'a,d'],
    ]);
    expect(result.wasmThreads.singleThreadConfigs.map((c) => c.threads)).toEqual([1, 1]);
    // d's speed-up is the 1-thread child's d over the 2-thread child's, row by row.
    for (const [i, s] of result.wasmThreads.speedupOfD.entries()) {
      expect(s.singleMs).toBe(result.wasmThreads.singleThreadConfigs[i]!.contenders.d!.msPerBatch.median);
      expect(s.threadedMs).toBe(result.wasmThreads.configs[i]!.contenders.d!.msPerBatch.median);
      expect(s.speedup).toBeCloseTo(s.singleMs / s.threadedMs, 2);
    }
    // The table is printed before the JSON.
    expect(lines.some((l) => l.startsWith('| backend | kernels | model |'))).toBe(true);
  });

  it('the decomposition script (bench/decompose.ts) runs its six contenders', { timeout: 120_000 }, async () => {
    const { stdout } = await run(process.execPath, ['--expose-gc', 'dist/bench/decompose.js', 'cpu', '64', '2'], { cwd: root, timeout: 110_000 });
    const rows = stdout.trim().split('\n');
    expect(rows.map((r) => r.split(/\s+/)[0])).toEqual(['a', 'engine', 'bare', 'fresh', 'fit', 'd']);
    for (const r of rows) expect(r).toMatch(/ \d+\.\d{3} ms\/batch {3}speed vs a \d+\.\d{3}$/);
  });
});
