/**
 * Creating a directory, safely. `mkdirSync(…, { recursive: true })` under /proc does not fail on
 * Node 20: it never returns (100% CPU, the event loop blocked). Every place that creates a
 * directory from a path a user gave goes through here, so such a path is refused by its name —
 * and, for a symlink, by where the nearest existing part of it really leads — before the file
 * system is touched.
 */
import { existsSync, mkdirSync, realpathSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { ConfigError } from '../errors.js';

/** Virtual file systems that hold no user files. */
export const VIRTUAL_ROOTS: readonly string[] = ['/proc'];

const under = (path: string, root: string) => path === root || path.startsWith(root + sep);

/**
 * Why `dir` must not be created or written (a virtual file system), or null. `what` names the
 * path in the message (an option, a callback's field).
 */
export function virtualRootProblem(dir: string): string | null {
  const abs = resolve(dir);
  for (const root of VIRTUAL_ROOTS) if (under(abs, root)) return `${root} is a virtual file system, not a place for output files`;
  let existing = abs;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  const real = realpathSync(existing);
  for (const root of VIRTUAL_ROOTS) {
    if (under(real, root)) return `${existing} leads to ${real}, under ${root}, a virtual file system`;
  }
  return null;
}

/** `mkdir -p dir`, refusing a path under a virtual file system with a ConfigError that names `what`. */
export function makeDir(dir: string, what: string): void {
  const problem = virtualRootProblem(dir);
  if (problem) throw new ConfigError(`${what} ${dir}: ${problem}; choose another directory`);
  mkdirSync(dir, { recursive: true });
}
