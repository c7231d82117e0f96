/**
 * Output directories are checked before any training starts: a run that can only fail to
 * write its results at the end must fail at once, with a message, not after an hour with a
 * stack trace and nothing saved.
 */
import { existsSync, mkdirSync, realpathSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { virtualRootProblem } from '../io/makeDir.js';


/**
 * Makes sure `dir` is a directory this process can write files in, creating it (and its
 * parents) when missing; returns its absolute path. `option` names where the path came from
 * (`--out`), `hint` what to do instead. Refused with a ConfigError naming the
 * option and the path: a path under /proc (also through a symlink), a path that is or goes
 * through a regular file, a directory that cannot be created, one that cannot be written
 * (tried for real with a probe file, since permission bits say nothing for root or on a
 * read-only mount).
 */
export function prepareOutputDir(dir: string, option: string, hint = `choose another directory with ${option} DIR`): string {
  if (dir.trim() === '') throw new ConfigError(`${option} needs a directory, got an empty string; ${hint}`);
  const abs = resolve(dir);
  const refuse = (why: string, cause?: unknown) =>
    new ConfigError(`${option} ${dir}: ${why}; ${hint}`, cause === undefined ? undefined : { cause });
  // mkdir under /proc hangs Node 20: refused by name (and by where a symlink leads) first.
  const virtual = virtualRootProblem(abs);
  if (virtual) throw refuse(virtual);

  // The nearest part of the path that exists decides: a file there is no place for a directory.
  let existing = abs;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  const real = realpathSync(existing);
  if (!statSync(real).isDirectory()) {
    throw refuse(existing === abs ? 'is a file, not a directory' : `${existing} is a file, not a directory`);
  }

  try {
    mkdirSync(abs, { recursive: true });
  } catch (e) {
    throw refuse(`cannot be created (${(e as NodeJS.ErrnoException).code ?? String(e)})`, e);
  }
  const probe = resolve(abs, `.trainchart-write-check.${process.pid}`);
  try {
    writeFileSync(probe, '');
  } catch (e) {
    throw refuse(`is not writable (${(e as NodeJS.ErrnoException).code ?? String(e)})`, e);
  }
  try {
    unlinkSync(probe);
  } catch {
    // Written but not removable: the directory is writable, which is what was asked.
  }
  return abs;
}
