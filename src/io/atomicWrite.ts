/**
 * Crash-safe file replacement: after `writeFileAtomic(path, data)` returns, `path` holds
 * exactly `data`; if the process dies at any point before that, `path` still holds its
 * previous content (or still does not exist). At worst a stray temp file is left next to it,
 * which readers never look at.
 *
 * The recipe (what databases and editors do on POSIX):
 *   1. write the bytes to a temp file in the same directory (a rename is only atomic within
 *      one file system),
 *   2. fsync the temp file, so its bytes are on disk before its name can point at them,
 *   3. rename it over `path` (atomic: readers see the old file or the new one, never a mix),
 *   4. fsync the directory, so the rename itself survives a power cut.
 *
 * Synchronous on purpose: callback hooks are synchronous, so a SaveModel hook that returns
 * has finished its write, and the loop's next stage cannot overlap it.
 */
import fs from 'node:fs';
import { basename, dirname, join } from 'node:path';

let tempCounter = 0;

/** The temp name for `path`: hidden, in the same directory, unique per process and call. */
export function tempPathFor(path: string): string {
  tempCounter += 1;
  return join(dirname(path), `.${basename(path)}.${process.pid}.${tempCounter}.tmp`);
}

/** Is `name` (a file name, not a path) a temp file that `writeFileAtomic` makes for `target`? */
export function isTempFileOf(name: string, target: string): boolean {
  return name.startsWith(`.${basename(target)}.`) && name.endsWith('.tmp');
}

export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const temp = tempPathFor(path);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let fd: number | null = null;
  try {
    fd = fs.openSync(temp, 'w', 0o644);
    let written = 0;
    while (written < bytes.byteLength) {
      written += fs.writeSync(fd, bytes, written, bytes.byteLength - written);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(temp, path);
  } catch (error) {
    // A failure we live through (disk full, permissions): leave no temp file behind.
    if (fd !== null) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing; the original error is the one to report
      }
    }
    try {
      fs.unlinkSync(temp);
    } catch {
      // it may never have been created
    }
    throw error;
  }
  fsyncDirectory(dirname(path));
}

function fsyncDirectory(dir: string): void {
  let fd: number | null = null;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (error) {
    // Some platforms (Windows, some network file systems) cannot open or fsync a directory;
    // there the rename is as durable as the platform makes it, which is all we can ask.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EACCES') throw error;
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}
