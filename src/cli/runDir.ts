/**
 * A CLI run directory (`trainchart train --out RUN --checkpoint-every N`):
 *
 *   RUN/run.json       the train command's own arguments, written before the first batch,
 *                      so `trainchart resume RUN` needs no flags
 *   RUN/checkpoints/   the Checkpoint callback's directory (latest, ckpt-…)
 *   RUN/result.json, RUN/history.json   at the end, as without checkpoints
 *
 * and Ctrl-C: the first stops the run after the current batch (a checkpoint is written there),
 * the second exits at once.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { listCheckpoints } from '../checkpoint/list.js';
import { ConfigError } from '../errors.js';
import { writeFileAtomic } from '../io/atomicWrite.js';
import { makeDir } from '../io/makeDir.js';

export const RUN_FILE = 'run.json';
const RUN_FORMAT = 'trainchart-run';

interface RunFile {
  format: typeof RUN_FORMAT;
  version: 1;
  command: 'train';
  /** The train arguments, without --json (resume has its own). */
  argv: string[];
}

export function checkpointsDirOf(runDir: string): string {
  return join(runDir, 'checkpoints');
}

/** Does the run have a checkpoint yet? (A run killed early has no checkpoints directory at all.) */
export function hasCheckpoints(runDir: string): boolean {
  const dir = checkpointsDirOf(runDir);
  return fs.existsSync(dir) && listCheckpoints(dir).length > 0;
}

/** A fresh run may not go where another run's checkpoints are: they would be mixed. */
export function prepareRunDir(runDir: string): void {
  if (hasCheckpoints(runDir)) {
    throw new ConfigError(
      `${runDir} already holds the checkpoints of a run: continue it with \`trainchart resume ${runDir}\`, or give another --out`,
    );
  }
}

export function writeRunFile(runDir: string, argv: readonly string[]): void {
  makeDir(runDir, '--out');
  const file: RunFile = { format: RUN_FORMAT, version: 1, command: 'train', argv: argv.filter((a) => a !== '--json') };
  writeFileAtomic(join(runDir, RUN_FILE), JSON.stringify(file, null, 2) + '\n');
}

export function readRunFile(runDir: string): string[] {
  const path = join(runDir, RUN_FILE);
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch {
    throw new ConfigError(`${path} is missing: ${runDir} is not a run directory (train it with --out ${runDir} --checkpoint-every N)`);
  }
  let file: RunFile;
  try {
    file = JSON.parse(text) as RunFile;
  } catch (e) {
    throw new ConfigError(`${path} is not valid JSON (${(e as Error).message}): it is not a run file of trainchart train`);
  }
  if (file?.format !== RUN_FORMAT || file.command !== 'train' || !Array.isArray(file.argv) || !file.argv.every((a) => typeof a === 'string')) {
    throw new ConfigError(`${path} is not a run file of trainchart train (format ${JSON.stringify(file?.format)})`);
  }
  if (file.version > 1) throw new ConfigError(`${path} is run-file version ${file.version}; this trainchart reads version 1: upgrade trainchart`);
  return [...file.argv];
}

/** Ctrl-C handling for the duration of a fit: the first stops it after the current batch, the second exits. */
export function interruptible(learn: { stop(): void }, say: (line: string) => void): { readonly interrupted: boolean; dispose(): void } {
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) {
      process.stderr.write('\ninterrupted again: exiting now\n');
      process.exit(130);
    }
    interrupted = true;
    say('\nCtrl-C: stopping after the current batch (Ctrl-C again to quit at once)');
    learn.stop();
  };
  process.on('SIGINT', onSigint);
  return {
    get interrupted() {
      return interrupted;
    },
    dispose: () => void process.off('SIGINT', onSigint),
  };
}
