/**
 * A sweep on a real queue, with preemption (issue 11's acceptance): a real redis-server on a
 * free loopback port; `trainchart sweep` enqueues 6 tiny runs; workers run as child processes
 * (`trainchart worker`). Worker A is SIGKILLed in the middle of a run, and worker C started;
 * later worker B gets SIGTERM in the middle of a run, and worker D is started. Asserted:
 *
 * - every run finishes, and none twice to completion (one BullMQ `completed` event per job,
 *   one line in each run's completions.log, no failed attempt);
 * - the killed worker leaves no process behind (its sandboxed child exits with it);
 * - the SIGKILLed run is resumed by another worker from a checkpoint it wrote, and the SIGTERMed
 *   run from the checkpoint written where it stopped (no earlier than the batch it had reached):
 *   both end with the `weightsSha256` of the same run done uninterrupted by `trainchart train`
 *   in a process of its own (the independent reference: the sweep's runs are `train`'s runs);
 * - `sweep results --json` ranks the six by validation loss, best first, with the best's config.
 *
 * Lock and stalled-check timings are seconds here (30 s each by default): see docs/sweeps.md.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Queue, QueueEvents, type Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunJobData, SweepRunResult } from '../src/sweep/names.js';
import type { RunProgressReport } from '../src/sweep/runResult.js';
import { QUEUE_NAME } from '../src/sweep/names.js';
import { redisOrSkip, REDIS_MISSING, startRedis, type RedisServer } from './support/redisServer.js';

const run = promisify(execFile);
const CLI = 'dist/src/cli/main.js';
// Long enough (~1 s of training) that a worker can be caught and signalled mid-run: with 32
// batches a run took ~0.1 s once the loop stopped reading every loss, and a SIGTERM sent at a
// progress report could land after the last batch.
const BATCHES = 256; // limitTrain 4096 / batchSize 16
const EVERY = 16; // checkpointEvery

const SPEC = {
  name: 'preempt',
  base: { model: 'mlp', epochs: 1, batchSize: 16, limitTrain: 4096, limitValid: 200, seed: 1, checkpointEvery: EVERY, backend: 'wasm' },
  grid: { optimizer: ['adam', 'sgd'] },
  random: { n: 3, seed: 7, space: { lr: { min: 1e-3, max: 1e-2, log: true } } },
};

interface WorkerProc {
  name: string;
  proc: ChildProcess;
  log: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Live (not zombie) processes of a process group, read from /proc. */
function liveInGroup(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // state ppid pgrp …
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

const mode = redisOrSkip();


describe.skipIf(mode === 'skip')('a sweep on BullMQ survives SIGKILL and SIGTERM of its workers', () => {
  let redis: RedisServer;
  let tmp: string;
  let runsDir: string;
  let queue: Queue<RunJobData, SweepRunResult>;
  let events: QueueEvents;
  const workers: WorkerProc[] = [];
  const completedEvents = new Map<string, number>();

  function startWorker(name: string): WorkerProc {
    const log = join(tmp, `worker-${name}.log`);
    const fd = openSync(log, 'a');
    const proc = spawn(
      'node',
      [CLI, 'worker', '--redis', redis.url, '--runs', runsDir, '--lock-duration', '6000', '--stalled-interval', '1000', '--name', name],
      { stdio: ['ignore', fd, fd], detached: true }, // its own process group: what a machine is
    );
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    const w = { name, proc, log, exited };
    workers.push(w);
    return w;
  }

  const activeMidRun = (worker: string, exclude?: string) =>
    waitFor(
      `worker ${worker} in the middle of a run`,
      async () => {
        for (const job of await queue.getJobs(['active'])) {
          const p = job.progress as unknown as RunProgressReport | number;
          if (job.processedBy !== worker || job.id === exclude || typeof p !== 'object' || p === null) continue;
          // Room on both sides: a checkpoint to resume from before, and batches left after the signal lands.
          if (p.iteration >= 2 * EVERY && p.iteration <= BATCHES - 3 * EVERY) return { job, iteration: p.iteration };
        }
        return null;
      },
      60_000,
      25,
    );

  beforeAll(async () => {
    if (mode === 'fail') throw new Error(REDIS_MISSING);
    redis = await startRedis();
    tmp = mkdtempSync(join(tmpdir(), 'sweep-queue-'));
    runsDir = join(tmp, 'runs');
    queue = new Queue(QUEUE_NAME, { connection: redis.client });
    events = new QueueEvents(QUEUE_NAME, { connection: { host: '127.0.0.1', port: redis.port } });
    events.on('completed', ({ jobId }) => completedEvents.set(jobId, (completedEvents.get(jobId) ?? 0) + 1));
    await events.waitUntilReady();
  });

  afterAll(async () => {
    for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
    await events?.close();
    await queue?.close();
    await redis?.stop();
    if (tmp && !process.env.KEEP_SWEEP_TMP) rmSync(tmp, { recursive: true, force: true });
  });

  it('every run finishes once, the interrupted ones bit-identical to uninterrupted `train` runs, and `sweep results` ranks them', async () => {
    const specFile = join(tmp, 'spec.json');
    writeFileSync(specFile, JSON.stringify(SPEC));
    const enq = await run('node', [CLI, 'sweep', specFile, '--redis', redis.url, '--json']);
    const { jobIds } = JSON.parse(enq.stdout.trim().split('\n').at(-1)!) as { jobIds: string[] };
    expect(jobIds).toHaveLength(6);

    const a = startWorker('A');
    startWorker('B');
    // SIGKILL: worker A dies with its run half done; its lock stops being renewed.
    const killed = await activeMidRun('A');
    a.proc.kill('SIGKILL');
    expect(await a.exited).toEqual({ code: null, signal: 'SIGKILL' });
    // Its sandboxed child notices the closed IPC channel and exits too: no orphan keeps training.
    await waitFor('the killed worker\'s process group to be empty', async () => liveInGroup(a.proc.pid!).length === 0, 5000);
    startWorker('C');

    // SIGTERM: worker B stops its run at the next batch boundary, checkpoints, gives it back, exits 0.
    const termed = await activeMidRun('B', killed.job.id);
    const b = workers.find((w) => w.name === 'B')!;
    b.proc.kill('SIGTERM');
    expect(await b.exited).toEqual({ code: 0, signal: null });
    const given = await queue.getJob(termed.job.id!);
    expect(['waiting', 'active', 'completed']).toContain(await given!.getState());
    startWorker('D');

    await waitFor('all six runs completed', async () => (await queue.getJobCountByTypes('completed')) === 6, 120_000, 200);
    await sleep(300); // the last completed events
    for (const w of workers.filter((x) => x.proc.exitCode === null && x.proc.signalCode === null)) w.proc.kill('SIGTERM');
    for (const w of workers.filter((x) => x.name !== 'A')) expect((await w.exited).code, `worker ${w.name} exit code`).toBe(0);

    // None twice to completion, none failed.
    const jobs = (await queue.getJobs(['completed'])) as Array<Job<RunJobData, SweepRunResult>>;
    expect(jobs.map((j) => j.id).sort()).toEqual([...jobIds].sort());
    expect(await queue.getJobCountByTypes('failed')).toBe(0);
    for (const id of jobIds) expect(completedEvents.get(id), `completed events of ${id}`).toBe(1);
    for (const job of jobs) {
      const dir = join(runsDir, job.data.sweep, job.data.runId);
      const lines = readFileSync(join(dir, 'completions.log'), 'utf8').trim().split('\n');
      expect(lines, `completions of ${job.id}`).toHaveLength(1);
      expect(JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')).weightsSha256).toBe(job.returnvalue.weightsSha256);
    }

    const byId = new Map(jobs.map((j) => [j.id!, j]));
    const victim = byId.get(killed.job.id!)!;
    const stopped = byId.get(termed.job.id!)!;
    // The SIGKILLed run: handed over (a second delivery), resumed from a checkpoint it had written.
    expect(victim.returnvalue.attempts).toBeGreaterThanOrEqual(2);
    expect(victim.returnvalue.worker).not.toBe('A');
    expect(victim.returnvalue.resumedFrom).not.toBeNull();
    expect(victim.returnvalue.resumedFrom!.iteration).toBeGreaterThanOrEqual(EVERY);
    expect(victim.returnvalue.resumedFrom!.iteration % EVERY).toBe(0);
    // The SIGTERMed run: given back, not failed, resumed where it stopped (not before the batch it had reached).
    expect(stopped.returnvalue.attempts).toBeGreaterThanOrEqual(2);
    expect(stopped.returnvalue.resumedFrom).not.toBeNull();
    expect(stopped.returnvalue.resumedFrom!.iteration).toBeGreaterThanOrEqual(termed.iteration);
    expect(stopped.returnvalue.resumedFrom!.iteration).toBeLessThan(BATCHES);
    expect(stopped.returnvalue.worker).not.toBe('B');

    // The reference: the same runs done uninterrupted, by `trainchart train` in a process of its own.
    const untouched = jobs.find((j) => j.id !== victim.id && j.id !== stopped.id && j.returnvalue.resumedFrom === null)!;
    for (const job of [victim, stopped, untouched]) {
      const c = job.data.config;
      const args = ['train', '--model', c.model, '--epochs', String(c.epochs), '--batch-size', String(c.batchSize), '--lr', String(c.lr)];
      args.push('--optimizer', c.optimizer, '--seed', String(c.seed), '--limit-train', String(c.limitTrain), '--limit-valid', String(c.limitValid));
      const { stdout } = await run('node', [CLI, ...args, '--backend', 'wasm', '--json'], { maxBuffer: 1 << 24 });
      const reference = JSON.parse(stdout.trim().split('\n').at(-1)!) as { weightsSha256: string; iterations: number; validLoss: number };
      expect(reference.iterations).toBe(BATCHES);
      expect(job.returnvalue.weightsSha256, `run ${job.id}`).toBe(reference.weightsSha256);
      expect(job.returnvalue.validLoss).toBe(reference.validLoss);
    }

    // `sweep results` ranks the six by validation loss, lowest first, the best spelled out.
    const res = await run('node', [CLI, 'sweep', 'results', 'preempt', '--redis', redis.url, '--json']);
    const results = JSON.parse(res.stdout.trim().split('\n').at(-1)!) as {
      runs: Array<{ id: string; config: { lr: number }; status: string; metrics: Record<string, number>; weightsSha256: string; attempts: number; resumedFrom: unknown }>;
      best: { id: string; config: { lr: number }; value: number };
    };
    expect(results.runs).toHaveLength(6);
    for (const r of results.runs) for (const key of ['id', 'config', 'status', 'metrics', 'weightsSha256', 'attempts', 'resumedFrom']) expect(r).toHaveProperty(key);
    const losses = results.runs.map((r) => r.metrics.validLoss!);
    expect(losses).toEqual([...losses].sort((x, y) => x - y));
    const lowest = jobs.reduce((m, j) => (j.returnvalue.validLoss! < m.returnvalue.validLoss! ? j : m));
    expect(results.best.id).toBe(lowest.data.runId);
    expect(results.best.value).toBe(lowest.returnvalue.validLoss);
    expect(results.best.config).toEqual(lowest.data.config);
    const victimRow = results.runs.find((r) => `preempt/${r.id}` === victim.id)!;
    expect(victimRow.resumedFrom).toEqual(victim.returnvalue.resumedFrom);
    const byAccuracy = await run('node', [CLI, 'sweep', 'results', 'preempt', '--redis', redis.url, '--csv', '--metric', 'accuracy']);
    const csv = byAccuracy.stdout.trim().split('\n');
    expect(csv).toHaveLength(7);
    const col = csv[0]!.split(',').indexOf('accuracy');
    const accs = csv.slice(1).map((l) => Number(l.split(',')[col]));
    expect(accs).toEqual([...accs].sort((x, y) => y - x));
    // The plot: the metric against each swept option, one panel per option (optimizer, lr).
    const plotted = await run('node', [CLI, 'sweep', 'results', 'preempt', '--redis', redis.url, '--plot', join(tmp, 'plot'), '--json']);
    expect(plotted.stderr).toContain(`wrote ${join(tmp, 'plot')}.svg and ${join(tmp, 'plot')}.png`);
    const svg = readFileSync(join(tmp, 'plot.svg'), 'utf8');
    for (const text of ['preempt: validLoss across the sweep', 'optimizer', 'lr (log scale)']) expect(svg).toContain(text);
    expect(readFileSync(join(tmp, 'plot.png')).subarray(1, 4).toString()).toBe('PNG');
    const noMetric = (await run('node', [CLI, 'sweep', 'results', 'preempt', '--redis', redis.url, '--metric', 'f1']).catch((x: unknown) => x)) as { code: number; stderr: string };
    expect(noMetric.code).toBe(2);
    expect(noMetric.stderr).toContain('has the metric "f1"; its runs have: accuracy, bestValidLoss, trainLoss, validLoss');
    const status = await run('node', [CLI, 'sweep', 'status', 'preempt', '--redis', redis.url]);
    expect(status.stdout).toContain('6 runs (6 completed)');
  }, 180_000);
});
