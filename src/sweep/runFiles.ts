/**
 * A run's directory, `<runs>/<sweep>/<run id>`: the Checkpoint callback's directory (its
 * checkpoints are subdirectories, its `latest` pointer a file) with three files of the sweep's
 * beside them:
 *
 *   sweep-run.json    the run's configuration, written before the first batch; a directory that
 *                     holds another configuration is refused (never resumed into)
 *   result.json       the finished run's result, written atomically once training completed:
 *                     a job delivered again (at-least-once) returns it instead of training again
 *   completions.log   one line per training that ran to its end in this directory (appended):
 *                     how a test, or a person, sees that no run was trained twice to completion
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { writeFileAtomic } from '../io/atomicWrite.js';
import { canonicalJson } from './expand.js';
import type { RunJobData } from './names.js';
import { makeDir } from '../io/makeDir.js';

export const RUN_FILE = 'sweep-run.json';
export const RESULT_FILE = 'result.json';
export const COMPLETIONS_FILE = 'completions.log';

/** The run's directory exists and holds this run (and no other). */
export function prepareRunDir(dir: string, data: RunJobData): void {
  makeDir(dir, 'run directory');
  const path = join(dir, RUN_FILE);
  const mine = { sweep: data.sweep, runId: data.runId, config: data.config };
  if (fs.existsSync(path)) {
    const theirs = JSON.parse(fs.readFileSync(path, 'utf8')) as typeof mine;
    const same = canonicalJson(theirs.config as unknown as Record<string, unknown>) === canonicalJson(mine.config as unknown as Record<string, unknown>);
    if (!same) {
      throw new ConfigError(
        `run directory ${dir} holds another configuration (${RUN_FILE}: ${JSON.stringify(theirs.config)}); ` +
          `this job is ${JSON.stringify(mine.config)}: remove the directory or use another --runs`,
      );
    }
    return;
  }
  writeFileAtomic(path, JSON.stringify(mine, null, 2) + '\n');
}

export function readResult<T>(dir: string): T | null {
  try {
    return JSON.parse(fs.readFileSync(join(dir, RESULT_FILE), 'utf8')) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

export function writeResult(dir: string, result: unknown): void {
  writeFileAtomic(join(dir, RESULT_FILE), JSON.stringify(result, null, 2) + '\n');
}

/** One line (O_APPEND: lines from two processes never interleave within a line this short). */
export function recordCompletion(dir: string, entry: Record<string, unknown>): void {
  fs.appendFileSync(join(dir, COMPLETIONS_FILE), JSON.stringify(entry) + '\n');
}

export function readCompletions(dir: string): Array<Record<string, unknown>> {
  try {
    return fs
      .readFileSync(join(dir, COMPLETIONS_FILE), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/**
 * The runs directory exists (created if missing) and takes a file: checked before a worker
 * takes any job (and before a sweep given --runs is enqueued), so a bad --runs fails at once
 * instead of failing every run.
 */
export function checkRunsDir(runsDir: string, consequence = 'no job was taken'): void {
  const probe = join(runsDir, `.trainchart-probe-${process.pid}`);
  try {
    makeDir(runsDir, '--runs');
    fs.writeFileSync(probe, 'probe');
    fs.unlinkSync(probe);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(
      `--runs ${runsDir} is not a writable directory (${code}: ${(e as Error).message}): ` +
        `give a directory that can be created and written (on several machines: one the workers share); ${consequence}`,
      { cause: e },
    );
  }
}
