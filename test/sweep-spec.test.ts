/**
 * Sweep specs: what is refused (the error names the field, and nothing reaches Redis), how a
 * spec expands (grid × seeded random search), and the refusals that need the queue — an
 * unreachable Redis, a runs directory that cannot be written, a sweep name that exists.
 *
 * References: the grid is the cartesian product (counted by hand); a log-uniform draw on
 * [a, b] has the CDF F(x) = ln(x/a) / ln(b/a), checked with a Kolmogorov–Smirnov bound; the
 * defaults are `trainchart train`'s documented ones.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, QueueError } from '../src/errors.js';
import { enqueueSweep } from '../src/sweep/enqueue.js';
import { expandSweep } from '../src/sweep/expand.js';
import { QUEUE_NAME } from '../src/sweep/names.js';
import { validateSpec, type SweepSpec } from '../src/sweep/spec.js';
import { cancelSweep } from '../src/sweep/cancel.js';
import { freePort, redisOrSkip, REDIS_MISSING, startRedis, type RedisServer } from './support/redisServer.js';

const run = promisify(execFile);
const CLI = 'dist/src/cli/main.js';

function refused(spec: unknown): ConfigError {
  try {
    expandSweep(validateSpec(spec));
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error(`not refused: ${JSON.stringify(spec)}`);
}

describe('a bad spec is refused, naming the field', () => {
  const cases: Array<[string, unknown, string[]]> = [
    ['not an object', [1, 2], ['must be a JSON object']],
    ['no name', { grid: { lr: [0.1] } }, ['name must be']],
    ['a name with a colon (BullMQ ids cannot hold it)', { name: 'a:b', grid: { lr: [0.1] } }, ['name must be', '"a:b"']],
    ['a name that climbs out of the runs dir', { name: '../x', grid: { lr: [0.1] } }, ['name must be']],
    ['an unknown top-level field', { name: 'a', grid: { lr: [0.1] }, grids: {} }, ['unknown field grids']],
    ['an unknown train option in base', { name: 'a', base: { lrr: 0.1 }, grid: { lr: [0.1] } }, ['base.lrr is not a train option', 'known']],
    ['a bad value in base', { name: 'a', base: { epochs: 0 }, grid: { lr: [0.1] } }, ['base.epochs must be an integer ≥ 1', '0']],
    ['a model that does not exist', { name: 'a', base: { model: 'resnet' }, grid: { lr: [0.1] } }, ['base.model must be one of', '"mlp"']],
    ['a negative lr in a grid list', { name: 'a', grid: { lr: [0.001, -1] } }, ['grid.lr[1] must be a positive number', '-1']],
    ['an empty grid list', { name: 'a', grid: { lr: [] } }, ['grid.lr must be a non-empty list']],
    ['a grid value given twice', { name: 'a', grid: { lr: [0.1, 0.1] } }, ['grid.lr has 0.1 twice']],
    ['nothing varies', { name: 'a', base: { lr: 0.1 } }, ['nothing varies']],
    ['random.n of 0', { name: 'a', random: { n: 0, space: { lr: [0.1] } } }, ['random.n must be an integer ≥ 1']],
    ['a negative random seed', { name: 'a', random: { n: 1, seed: -1, space: { lr: [0.1] } } }, ['random.seed must be an integer ≥ 0']],
    ['an empty space', { name: 'a', random: { n: 1, space: {} } }, ['random.space must be an object with at least one option']],
    ['a log range from 0', { name: 'a', random: { n: 1, space: { wd: { min: 0, max: 1e-2, log: true } } } }, ['random.space.wd.min must be > 0 when log is true']],
    ['min not below max', { name: 'a', random: { n: 1, space: { lr: { min: 0.1, max: 0.1 } } } }, ['random.space.lr.min must be below random.space.lr.max']],
    ['a range out of the option\'s domain', { name: 'a', random: { n: 1, space: { lr: { min: -1, max: 1 } } } }, ['random.space.lr.min must be a positive number']],
    ['a fractional bound of an integer option', { name: 'a', random: { n: 1, space: { batchSize: { min: 8.5, max: 64 } } } }, ['random.space.batchSize.min must be an integer']],
    ['a range over a non-numeric option', { name: 'a', random: { n: 1, space: { model: { min: 1, max: 2 } } } }, ['random.space.model is a range', 'list of choices']],
    ['an unknown range field', { name: 'a', random: { n: 1, space: { lr: { min: 0.1, max: 1, scale: 'log' } } } }, ['unknown field random.space.lr.scale']],
    ['an option both fixed and varied', { name: 'a', base: { lr: 0.1 }, grid: { lr: [0.2] } }, ['grid.lr is also set at base.lr']],
    ['an option in grid and random', { name: 'a', grid: { lr: [0.2] }, random: { n: 2, space: { lr: [0.1, 0.3] } } }, ['random.space.lr is also set at grid.lr']],
    ['lrMax without oneCycle', { name: 'a', base: { lrMax: 0.01 }, grid: { lr: [0.1] } }, ['lrMax sets the peak of the one-cycle schedule', 'oneCycle']],
    ['more than 10 000 runs', { name: 'a', grid: { seed: Array.from({ length: 200 }, (_, i) => i) }, random: { n: 100, space: { lr: { min: 1e-4, max: 1 } } } }, ['20000 runs', 'more than 10000']],
  ];
  for (const [what, spec, words] of cases) {
    it(what, () => {
      const e = refused(spec);
      expect(e.code).toBe('CONFIG');
      expect(e.message).toMatch(/^sweep spec: /);
      for (const w of words) expect(e.message).toContain(w);
    });
  }
});

describe('expansion: grid × seeded random search', () => {
  it('the grid is the cartesian product, the first key varying slowest, with train\'s defaults filled in', () => {
    const runs = expandSweep(validateSpec({ name: 'g', base: { epochs: 1 }, grid: { optimizer: ['adam', 'sgd'], lr: [0.001, 0.003, 0.01] } }));
    expect(runs.map((r) => r.params)).toEqual([
      { optimizer: 'adam', lr: 0.001 },
      { optimizer: 'adam', lr: 0.003 },
      { optimizer: 'adam', lr: 0.01 },
      { optimizer: 'sgd', lr: 0.001 },
      { optimizer: 'sgd', lr: 0.003 },
      { optimizer: 'sgd', lr: 0.01 },
    ]);
    // `trainchart train --help`'s defaults: mlp, batch 64, seed 1, no one-cycle, auto backend.
    expect(runs[0]!.config).toEqual({ model: 'mlp', epochs: 1, batchSize: 64, lr: 0.001, optimizer: 'adam', seed: 1, oneCycle: false, backend: 'auto', checkpointEvery: 50 });
    expect(new Set(runs.map((r) => r.id)).size).toBe(6);
    expect(runs.map((r) => r.id.slice(0, 4))).toEqual(['000-', '001-', '002-', '003-', '004-', '005-']);
  });

  const spec: SweepSpec = {
    name: 'r',
    base: { epochs: 1 },
    grid: { optimizer: ['adam', 'adamw'] },
    random: { n: 5, seed: 7, space: { wd: { min: 1e-5, max: 1e-2, log: true }, batchSize: [32, 64] } },
  };

  it('grid × random: every grid point gets the same n draws; the same seed gives the same configurations and ids', () => {
    const a = expandSweep(validateSpec(spec));
    expect(a).toHaveLength(10);
    const draws = (o: string) => a.filter((r) => r.params.optimizer === o).map(({ params: { optimizer: _o, ...rest } }) => rest);
    expect(draws('adam')).toEqual(draws('adamw'));
    expect(new Set(draws('adam').map((d) => d.wd)).size).toBe(5);
    // Another process, another object, the space's keys in another order: the same runs.
    const reordered = JSON.parse(JSON.stringify({ ...spec, random: { ...spec.random, space: { batchSize: [32, 64], wd: spec.random!.space.wd } } }));
    expect(expandSweep(validateSpec(reordered))).toEqual(a);
    const other = expandSweep(validateSpec({ ...spec, random: { ...spec.random!, seed: 8 } }));
    expect(other.map((r) => r.params.wd)).not.toEqual(a.map((r) => r.params.wd));
    // A changed setting changes the run's id (its directory): a replaced sweep never resumes another's checkpoints.
    const changed = expandSweep(validateSpec({ ...spec, base: { epochs: 2 } }));
    expect(changed.map((r) => r.id.slice(4))).not.toContain(a[0]!.id.slice(4));
  });

  it('a log-uniform range: every draw within bounds, distributed as F(x) = ln(x/a)/ln(b/a) (Kolmogorov–Smirnov)', () => {
    const [a, b, n] = [1e-5, 1e-2, 2000];
    const runs = expandSweep(validateSpec({ name: 'ks', random: { n, seed: 3, space: { wd: { min: a, max: b, log: true } } } }));
    const xs = runs.map((r) => r.params.wd as number).sort((p, q) => p - q);
    expect(xs[0]!).toBeGreaterThanOrEqual(a);
    expect(xs.at(-1)!).toBeLessThanOrEqual(b);
    const F = (x: number) => Math.log(x / a) / Math.log(b / a);
    const ks = Math.max(...xs.map((x, i) => Math.max(Math.abs((i + 1) / n - F(x)), Math.abs(i / n - F(x)))));
    // 1.63/√n is the 1% critical value: a correct sampler passes 99 times in 100, for a fixed seed always.
    expect(ks).toBeLessThan(1.63 / Math.sqrt(n));
    // And it is not uniform: a uniform draw would put ~90% of them in the top decade, log-uniform a third.
    const topDecade = xs.filter((x) => x >= 1e-3).length / n;
    expect(topDecade).toBeGreaterThan(0.28);
    expect(topDecade).toBeLessThan(0.39);
  });

  it('a uniform range, an integer range (both ends reachable) and a choice list', () => {
    const runs = expandSweep(
      validateSpec({ name: 'u', random: { n: 600, seed: 1, space: { lr: { min: 0.01, max: 0.02 }, batchSize: { min: 16, max: 20 }, optimizer: ['sgd', 'adam', 'adamw'] } } }),
    );
    const lrs = runs.map((r) => r.params.lr as number);
    expect(Math.min(...lrs)).toBeGreaterThanOrEqual(0.01);
    expect(Math.max(...lrs)).toBeLessThanOrEqual(0.02);
    expect(lrs.filter((x) => x < 0.015).length / 600).toBeCloseTo(0.5, 1);
    const sizes = runs.map((r) => r.params.batchSize as number);
    expect(sizes.every((s) => Number.isInteger(s) && s >= 16 && s <= 20)).toBe(true);
    expect(new Set(sizes)).toEqual(new Set([16, 17, 18, 19, 20]));
    for (const o of ['sgd', 'adam', 'adamw']) expect(runs.filter((r) => r.params.optimizer === o).length).toBeGreaterThan(150);
  });
});

const mode = redisOrSkip();

describe.skipIf(mode === 'skip')('refusals that involve the queue (a real redis-server)', () => {
  let redis: RedisServer;
  let tmp: string;
  const ok = { name: 'ok', base: { epochs: 1, limitTrain: 64 }, grid: { lr: [0.001, 0.003] } };

  beforeAll(async () => {
    if (mode === 'fail') throw new Error(REDIS_MISSING);
    redis = await startRedis();
    tmp = mkdtempSync(join(tmpdir(), 'sweep-spec-'));
  });
  afterAll(async () => {
    await redis?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('a bad spec enqueues nothing (API and CLI: exit 2, the field named, Redis empty)', async () => {
    await redis.client.flushall();
    const e = await enqueueSweep({ name: 'bad', grid: { lr: [0.001, -1] } }, { connection: redis.url }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toContain('grid.lr[1]');
    const file = join(tmp, 'bad.json');
    writeFileSync(file, JSON.stringify({ name: 'bad', random: { n: 2, space: { wd: { min: 0, max: 1, log: true } } } }));
    const cli = (await run('node', [CLI, 'sweep', file, '--redis', redis.url]).catch((x: unknown) => x)) as { code: number; stderr: string };
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('random.space.wd.min must be > 0 when log is true');
    expect(cli.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(await redis.client.dbsize()).toBe(0);
  });

  it('an unreachable Redis is a QueueError within the connect timeout, and nothing is enqueued', async () => {
    await redis.client.flushall();
    const nobody = `redis://127.0.0.1:${await freePort()}`;
    const t0 = Date.now();
    const e = await enqueueSweep(ok, { connection: nobody }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(QueueError);
    expect((e as QueueError).code).toBe('QUEUE');
    expect((e as Error).message).toContain('cannot reach Redis at redis://127.0.0.1:');
    expect((e as Error).message).toContain('ECONNREFUSED');
    expect(Date.now() - t0).toBeLessThan(5000);
    const file = join(tmp, 'ok.json');
    writeFileSync(file, JSON.stringify(ok));
    for (const args of [['sweep', file], ['sweep', 'status', 'ok'], ['sweep', 'results', 'ok'], ['sweep', 'cancel', 'ok'], ['worker', '--runs', join(tmp, 'runs')]]) {
      const cli = (await run('node', [CLI, ...args, '--redis', nobody]).catch((x: unknown) => x)) as { code: number; stderr: string };
      expect(cli.code, args.join(' ')).toBe(1);
      expect(cli.stderr).toContain('cannot reach Redis');
    }
    expect(await redis.client.dbsize()).toBe(0);
  });

  it('a runs directory that cannot be written: `sweep --runs` enqueues nothing, the worker exits 2 before taking a job', async () => {
    await redis.client.flushall();
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'not a directory');
    const e = await enqueueSweep(ok, { connection: redis.url, runsDir: join(file, 'runs') }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toContain('is not a writable directory');
    expect((e as Error).message).toContain('nothing was enqueued');
    const specFile = join(tmp, 'ok-runs.json');
    writeFileSync(specFile, JSON.stringify(ok));
    const enq = (await run('node', [CLI, 'sweep', specFile, '--redis', redis.url, '--runs', join(file, 'runs')]).catch((x: unknown) => x)) as { code: number; stderr: string };
    expect(enq.code).toBe(2);
    expect(enq.stderr).toContain('ENOTDIR');
    expect(await redis.client.dbsize()).toBe(0);
    await enqueueSweep(ok, { connection: redis.url });
    const cli = (await run('node', [CLI, 'worker', '--redis', redis.url, '--runs', join(file, 'runs')]).catch((x: unknown) => x)) as { code: number; stderr: string };
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('is not a writable directory');
    expect(cli.stderr).toContain('ENOTDIR');
    expect(cli.stderr).toContain('no job was taken');
    const queue = new Queue(QUEUE_NAME, { connection: redis.client });
    try {
      const counts = await queue.getJobCounts('wait', 'active', 'completed', 'failed');
      expect(counts).toEqual({ wait: 2, active: 0, completed: 0, failed: 0 });
      for (const job of await queue.getJobs(['wait'])) expect(job.attemptsStarted).toBe(0);
    } finally {
      await queue.close();
    }
  });

  it('an unknown sweep, a metric no run has, a --redis that is not a URL: exit 2 with what to type', async () => {
    await redis.client.flushall();
    await enqueueSweep(ok, { connection: redis.url });
    for (const [args, words] of [
      [['sweep', 'status', 'nope', '--redis', redis.url], ['no sweep named "nope"', 'there are: ok']],
      [['sweep', 'results', 'nope', '--redis', redis.url], ['no sweep named "nope"']],
      [['sweep', 'status', 'ok', '--redis', 'localhost:6379'], ['--redis must be a redis:// (or rediss://) URL']],
      [['sweep', 'results', 'ok', '--redis', 'not a url'], ['--redis must be a URL such as redis://127.0.0.1:6379']],
      [['sweep', 'status', '--redis', redis.url], ['give one sweep name']],
    ] as const) {
      const cli = (await run('node', [CLI, ...args]).catch((x: unknown) => x)) as { code: number; stderr: string };
      expect(cli.code, args.join(' ')).toBe(2);
      for (const w of words) expect(cli.stderr).toContain(w);
    }
    // No run has finished yet: nothing to rank, and no metric can be wrong.
    const { stdout } = await run('node', [CLI, 'sweep', 'results', 'ok', '--redis', redis.url, '--json', '--metric', 'f1']);
    expect(JSON.parse(stdout)).toMatchObject({ runs: [], best: null, pending: { waiting: 2 } });
  });

  it('an existing sweep name is refused unless replace; replace removes the old runs; cancel removes what has not run', async () => {
    await redis.client.flushall();
    const first = await enqueueSweep(ok, { connection: redis.url });
    const again = await enqueueSweep(ok, { connection: redis.url }).catch((x: unknown) => x);
    expect(again).toBeInstanceOf(ConfigError);
    expect((again as Error).message).toContain('sweep "ok" already exists');
    expect((again as Error).message).toContain('--replace');
    const queue = new Queue(QUEUE_NAME, { connection: redis.client });
    try {
      expect((await queue.getJobs(['wait'])).map((j) => j.id).sort()).toEqual([...first.jobIds].sort());
      const replaced = await enqueueSweep({ ...ok, grid: { lr: [0.01, 0.02, 0.03] } }, { connection: redis.url, replace: true });
      expect((await queue.getJobs(['wait'])).map((j) => j.id).sort()).toEqual([...replaced.jobIds].sort());
      expect(replaced.jobIds.some((id) => first.jobIds.includes(id))).toBe(false);
      // --name enqueues the same spec under another name beside it.
      const file = join(tmp, 'ok2.json');
      writeFileSync(file, JSON.stringify(ok));
      const { stdout } = await run('node', [CLI, 'sweep', file, '--redis', redis.url, '--name', 'other', '--json']);
      expect(JSON.parse(stdout.trim().split('\n').at(-1)!).jobIds).toHaveLength(2);
      expect(await queue.getJobCountByTypes('wait')).toBe(5);
      const cancelled = await cancelSweep('ok', { connection: redis.url });
      expect(cancelled.removed).toHaveLength(3);
      expect((await queue.getJobs(['wait'])).map((j) => j.id!.split('/')[0])).toEqual(['other', 'other']);
    } finally {
      await queue.close();
    }
  });
});
