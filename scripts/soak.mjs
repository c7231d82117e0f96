#!/usr/bin/env node
/**
 * The kill -9 soak (issue 8): train with checkpoints in a child process, SIGKILL it at a
 * random moment (1–3 times per cycle, the later kills hitting `trainchart resume` itself),
 * then `trainchart resume RUN` to the end in a new process, and compare its weightsSha256 with
 * the uninterrupted run's. Every cycle must match.
 *
 *   npm run soak                      # short mode: 3 cycles (what CI runs, test/cli-resume.test.ts)
 *   npm run soak -- --cycles 50       # the full soak
 *   options: --seed S (of the random kill times, default 1), --json (one summary line on stdout),
 *            --keep (leave the run directories in the temp dir)
 *
 * Uses the built CLI (dist/src/cli/main.js): `npm run soak` builds first.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
// Small enough for seconds per run, big enough for many checkpoints to be cut: 3 epochs of
// 16 batches, a checkpoint every 4 batches, one-cycle (the schedule must resume exactly).
const TRAIN = ['--limit-train', '512', '--limit-valid', '128', '--epochs', '3', '--batch-size', '32', '--seed', '1', '--backend', 'wasm', '--one-cycle', '--lr-max', '0.005'];
const EVERY = ['--checkpoint-every', '4'];

const { values } = parseArgs({
  options: { cycles: { type: 'string' }, seed: { type: 'string' }, json: { type: 'boolean' }, keep: { type: 'boolean' } },
  strict: true,
});
const cycles = Number(values.cycles ?? 3);
const seed = Number(values.seed ?? 1);
if (!Number.isInteger(cycles) || cycles < 1) throw new Error(`--cycles must be an integer ≥ 1, got ${values.cycles}`);
const log = (line) => (values.json ? process.stderr : process.stdout).write(line + '\n');

/** mulberry32: the kill times are reproducible from --seed. */
function prng(s) {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(seed);

/** Runs the CLI; with `killAfterMs`, SIGKILLs it then. Resolves with how it ended and its last stdout line. */
function cli(args, killAfterMs) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = killAfterMs === undefined ? null : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const last = out.trim().split('\n').at(-1) ?? '';
      let json = null;
      try {
        json = JSON.parse(last);
      } catch {
        json = null;
      }
      resolve({ code, signal, json, stderr: err, ms: performance.now() - started });
    });
  });
}

const work = mkdtempSync(join(tmpdir(), 'trainchart-soak-'));
const summary = { cycles, seed, passed: 0, failed: 0, kills: 0, killedBeforeRunFile: 0, resumedFromStart: 0, resumedFromCheckpoint: 0, reference: null, failures: [] };
try {
  // The uninterrupted run, with the same flags (checkpointing does not change the weights).
  const ref = await cli(['train', ...TRAIN, ...EVERY, '--out', join(work, 'reference'), '--json']);
  if (ref.code !== 0 || !ref.json) throw new Error(`the reference run failed (exit ${ref.code}): ${ref.stderr}`);
  summary.reference = ref.json.weightsSha256;
  const span = ref.ms;
  log(`reference: ${summary.reference} (${Math.round(span)} ms a run); kill times drawn with seed ${seed}`);

  for (let c = 0; c < cycles; c++) {
    const run = join(work, `run-${c}`);
    const kills = 1 + Math.floor(random() * 3);
    const times = [];
    for (let k = 0; k < kills; k++) {
      // Anywhere in a run's life, start-up and the last batches included.
      const at = Math.round(random() * span * 1.05);
      times.push(at);
      const started = existsSync(join(run, 'run.json'));
      const r = await cli(started ? ['resume', run, '--json'] : ['train', ...TRAIN, ...EVERY, '--out', run, '--json'], at);
      if (r.signal === 'SIGKILL') summary.kills++;
      if (!started && !existsSync(join(run, 'run.json'))) summary.killedBeforeRunFile++;
    }
    // Killed before the train command wrote RUN/run.json: there is nothing to resume yet; start it again.
    let final;
    if (!existsSync(join(run, 'run.json'))) {
      rmSync(run, { recursive: true, force: true });
      final = await cli(['train', ...TRAIN, ...EVERY, '--out', run, '--json']);
    } else {
      final = await cli(['resume', run, '--json']);
    }
    const got = final.json?.weightsSha256 ?? null;
    const from = final.json?.resumedFrom ?? null;
    if (from) summary.resumedFromCheckpoint++;
    else summary.resumedFromStart++;
    const ok = final.code === 0 && got === summary.reference;
    if (ok) summary.passed++;
    else {
      summary.failed++;
      summary.failures.push({ cycle: c, killsAtMs: times, exit: final.code, weightsSha256: got, stderr: final.stderr.slice(-2000) });
    }
    const where = from ? `resumed at epoch ${from.epoch} batch ${from.batchIndex} (iteration ${from.iteration})` : 'from the start';
    log(`cycle ${c + 1}/${cycles}: killed at ${times.join(', ')} ms, then ${where}: ${ok ? 'same weightsSha256' : `MISMATCH ${got}`}`);
    if (!values.keep && ok) rmSync(run, { recursive: true, force: true });
  }
} finally {
  if (!values.keep) {
    for (const entry of readdirSync(work)) if (entry === 'reference') rmSync(join(work, entry), { recursive: true, force: true });
    if (summary.failed === 0) rmSync(work, { recursive: true, force: true });
  }
}
log(`${summary.passed}/${cycles} cycles ended with the uninterrupted run's weights (${summary.kills} kills; ${summary.resumedFromCheckpoint} resumed from a checkpoint, ${summary.resumedFromStart} from the start)`);
if (values.json) process.stdout.write(JSON.stringify(summary) + '\n');
process.exitCode = summary.failed === 0 ? 0 : 1;
