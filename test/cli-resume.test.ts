/**
 * The CLI's resume (issue 8): `trainchart train --out RUN --checkpoint-every N` killed with
 * SIGKILL at random moments and `trainchart resume RUN` in a new process ends with the
 * uninterrupted run's weightsSha256 (the soak, short mode); Ctrl-C stops after the current
 * batch, checkpoints and prints the resume command, a second Ctrl-C exits at once; the JSON
 * line of resume has train's keys plus resumedFrom; bad uses exit 2 with a message.
 */
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = 'dist/src/cli/main.js';
const TRAIN = ['--limit-train', '512', '--limit-valid', '128', '--epochs', '2', '--batch-size', '32', '--seed', '3', '--backend', 'wasm'];

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'trainchart-cli-resume-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;

async function cli(args: string[]) {
  const { stdout, stderr } = await run('node', [CLI, ...args], { maxBuffer: 1 << 24 });
  return { json: lastJson(stdout), stderr };
}

/**
 * Starts the CLI, sends `signals` once training is under way, and waits for the end. The CLI says
 * `training: …` once its Ctrl-C handler is in place, right before the fit starts; the handler runs
 * when the loop first yields to the event loop (every 25 ms), so by then batches have run and the
 * stop lands mid-epoch.
 */
function interrupted(args: string[], signals: number) {
  return new Promise<{ code: number | null; stdout: string; stderr: string; afterSignalMs: number }>((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sentAt = 0;
    let second = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      if (!sentAt && /^training: /m.test(stderr)) {
        sentAt = performance.now();
        child.kill('SIGINT');
      }
      // Signals do not queue: the second is sent once the first was handled.
      if (signals > 1 && sentAt && !second && /Ctrl-C: stopping/.test(stderr)) {
        second = true;
        child.kill('SIGINT');
      }
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, afterSignalMs: performance.now() - sentAt }));
  });
}

describe('trainchart train --checkpoint-every / trainchart resume', () => {
  let reference: Record<string, unknown>;

  it('the uninterrupted run: its --json line has resumedFrom null; run.json holds its arguments', async () => {
    const out = join(root, 'reference');
    ({ json: reference } = await cli(['train', ...TRAIN, '--out', out, '--checkpoint-every', '4', '--json']));
    expect(reference.status).toBe('completed');
    expect(reference.resumedFrom).toBeNull();
    const file = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { argv: string[] };
    expect(file.argv).toEqual(['train', ...TRAIN, '--out', out, '--checkpoint-every', '4'].slice(1));
    // Checkpointing does not change what is trained.
    const plain = await cli(['train', ...TRAIN, '--json']);
    expect(plain.json.weightsSha256).toBe(reference.weightsSha256);
  }, 120_000);

  it('resume of a finished run trains nothing and prints the same keys, plus resumedFrom', async () => {
    const { json } = await cli(['resume', join(root, 'reference'), '--json']);
    expect(Object.keys(json).sort()).toEqual(Object.keys(reference).sort());
    expect(json).toMatchObject({ status: 'completed', iterations: 0, weightsSha256: reference.weightsSha256 });
    expect(json.resumedFrom).toMatchObject({ epoch: 2, batchIndex: 0, iteration: 32 });
  }, 60_000);

  it('a run killed before its first checkpoint (only run.json) resumes from the start; a moved run directory resumes where it is', async () => {
    const moved = join(root, 'moved');
    mkdirSync(moved);
    copyFileSync(join(root, 'reference', 'run.json'), join(moved, 'run.json'));
    const { json } = await cli(['resume', moved, '--json']);
    expect(json.resumedFrom).toBeNull();
    expect(json.weightsSha256).toBe(reference.weightsSha256);
    // It trained into the directory it was given, not the one in run.json.
    expect(existsSync(join(moved, 'checkpoints', 'latest'))).toBe(true);
  }, 120_000);

  it('Ctrl-C stops after the current batch, checkpoints there and prints the resume command; resume ends bit-identically', async () => {
    const out = join(root, 'ctrl-c');
    const r = await interrupted(['train', ...TRAIN, '--out', out, '--checkpoint-every', '1000', '--json'], 1);
    expect(r.code).toBe(130);
    expect(r.stderr).toContain(`resume with  trainchart resume ${out}`);
    const stopped = lastJson(r.stdout);
    expect(stopped.status).toBe('stopped');
    const resumed = await cli(['resume', out, '--json']);
    // --checkpoint-every 1000 never fires in this run: the checkpoint resumed from is the stop's, mid-epoch.
    expect(resumed.json.resumedFrom).toMatchObject({ epoch: 0, iteration: stopped.iterations });
    expect((resumed.json.resumedFrom as { batchIndex: number }).batchIndex).toBeGreaterThan(0);
    expect(resumed.json.weightsSha256).toBe(reference.weightsSha256);
  }, 120_000);

  it('a second Ctrl-C exits at once, without a result', async () => {
    // A long validation pass (the whole test set) after the stop: the second Ctrl-C comes while the first is still being honoured.
    const r = await interrupted(['train', ...TRAIN, '--epochs', '20', '--limit-valid', '10000', '--out', join(root, 'twice'), '--checkpoint-every', '1000', '--json'], 2);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/interrupted again: exiting now/);
    expect(r.stdout.trim()).toBe('');
  }, 60_000);

  it('the soak, short mode: SIGKILL at random moments, resume in a new process, the uninterrupted weightsSha256 (3 cycles)', async () => {
    const { stdout } = await run('node', ['scripts/soak.mjs', '--cycles', '3', '--json'], { maxBuffer: 1 << 24 });
    const summary = lastJson(stdout) as { passed: number; failed: number; kills: number; failures: unknown[] };
    expect(summary.failures).toEqual([]);
    expect(summary.passed).toBe(3);
    expect(summary.kills).toBeGreaterThan(0);
  }, 240_000);

  it('bad uses exit 2 with a message that says what to do', async () => {
    const fail = async (args: string[]) => (await run('node', [CLI, ...args]).catch((e: unknown) => e)) as { code: number; stderr: string };
    let e = await fail(['train', '--checkpoint-every', '5']);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/--checkpoint-every needs --out RUN/);
    e = await fail(['train', '--out', join(root, 'zero'), '--checkpoint-every', '0']);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/--checkpoint-every must be an integer ≥ 1/);
    e = await fail(['train', ...TRAIN, '--out', join(root, 'reference'), '--checkpoint-every', '4']);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/already holds the checkpoints of a run: continue it with `trainchart resume/);
    e = await fail(['resume', join(root, 'nope')]);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/run\.json is missing: .* is not a run directory/);
    e = await fail(['resume']);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/give exactly one run directory/);
    expect(existsSync(join(root, 'nope'))).toBe(false);
  }, 60_000);
});
