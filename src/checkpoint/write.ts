/**
 * Writing a checkpoint so that a crash at any instant leaves the previous one whole:
 *
 *   1. every file goes into a hidden temporary directory `<dir>/.tmp-<name>-<pid>-<n>`, each
 *      fsynced, then the temporary directory itself is fsynced;
 *   2. it is renamed to `<dir>/<name>` (atomic: the checkpoint appears whole or not at all)
 *      and `<dir>` is fsynced, so the rename survives a power cut;
 *   3. `<dir>/latest` is replaced atomically (src/io/atomicWrite.ts) to name it;
 *   4. only then are checkpoints beyond `keep` deleted, oldest first — each renamed to a
 *      hidden `.trash-*` name first, so a crash mid-delete never leaves a half-deleted
 *      checkpoint that looks like a real one.
 *
 * A write cut short leaves at most a `.tmp-*` or `.trash-*` entry, which readers never look
 * at and the next write sweeps away. Synchronous on purpose: the loop waits at the quiet point
 * until the checkpoint is on disk, so nothing moves under it.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomicWrite.js';
import { encodeState, toLittleEndianBytes, type BlobRef, type SupportedTypedArray } from '../io/stateCodec.js';
import type { CapturedRun } from './capture.js';
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_FORMAT_VERSION,
  LATEST_FILE,
  MANIFEST_FILE,
  OTHER_FILE,
  SECTION_FILES,
  TEMP_PREFIX,
  TRASH_PREFIX,
  checkpointName,
  type FileEntry,
  type Manifest,
} from './format.js';
import { listCheckpoints, type CheckpointInfo } from './list.js';
import { libraryVersion } from './version.js';
import { makeDir } from '../io/makeDir.js';

/** The steps of a write, in order; a test may fail one to see what a crash there leaves. */
export type WriteStep = 'files' | 'manifest' | 'syncTemp' | 'rename' | 'latest' | 'prune';

export interface WriteCheckpointOptions {
  /** How many checkpoints of `dir` to keep, newest by position (default 3; Infinity: all). */
  keep?: number;
  /** Test seam: called before each step (and before each file, with its name); throwing there is a crash at that point. */
  beforeStep?: (step: WriteStep, file?: string) => void;
}

export interface WrittenCheckpoint extends CheckpointInfo {
  name: string;
}

let tempCounter = 0;

/** Writes `run` as a new checkpoint in `dir` (created if missing), updates `latest`, prunes to `keep`. */
export function writeCheckpoint(dir: string, run: CapturedRun, options: WriteCheckpointOptions = {}): WrittenCheckpoint {
  const keep = options.keep ?? 3;
  const step = options.beforeStep ?? (() => {});
  makeDir(dir, 'checkpoint directory');
  sweep(dir);
  const name = checkpointName(run.position);
  const temp = join(dir, `${TEMP_PREFIX}${name}-${process.pid}-${++tempCounter}`);
  fs.mkdirSync(temp);

  const { manifest, files } = encodeRun(run);
  step('files');
  for (const [file, bytes] of files) {
    step('files', file);
    writeSynced(join(temp, file), bytes);
  }
  step('manifest');
  writeSynced(join(temp, MANIFEST_FILE), Buffer.from(JSON.stringify(manifest, null, 1) + '\n', 'utf8'));
  step('syncTemp');
  fsyncDir(temp);

  step('rename');
  const target = join(dir, name);
  // The same position written again (a resume from an older checkpoint into the same dir):
  // the old one is moved aside first, since a directory cannot be renamed over a full one.
  if (fs.existsSync(target)) fs.renameSync(target, join(dir, `${TRASH_PREFIX}${name}-${process.pid}-${tempCounter}`));
  fs.renameSync(temp, target);
  fsyncDir(dir);

  step('latest');
  writeFileAtomic(join(dir, LATEST_FILE), name + '\n');

  step('prune');
  prune(dir, keep, name);
  sweep(dir);
  return { name, path: target, epoch: run.position.epoch, iteration: run.position.iteration, batchIndex: run.position.batchIndex };
}

/** The manifest (JSON, typed arrays replaced by references) and the binary files' bytes. */
export function encodeRun(run: CapturedRun): { manifest: Manifest; files: Map<string, Uint8Array> } {
  const chunks = new Map<string, Uint8Array[]>();
  const sizes = new Map<string, number>();
  const blob = (array: SupportedTypedArray, path: string): BlobRef => {
    const section = path.split(/[.[]/)[0]!;
    const file = SECTION_FILES[section] ?? OTHER_FILE;
    const bytes = toLittleEndianBytes(array);
    const offset = sizes.get(file) ?? 0;
    // Every array starts 8-byte aligned, so a reader could map any of them in place.
    const pad = (8 - (bytes.byteLength % 8)) % 8;
    const list = chunks.get(file) ?? [];
    list.push(bytes.slice(), new Uint8Array(pad));
    chunks.set(file, list);
    sizes.set(file, offset + bytes.byteLength + pad);
    return { file, offset, bytes: bytes.byteLength, type: array.constructor.name };
  };
  const { kind: _kind, ...state } = run;
  const encoded = encodeState(state, '', { blob });
  const files = new Map<string, Uint8Array>();
  const entries: FileEntry[] = [];
  for (const [file, list] of chunks) {
    const bytes = Buffer.concat(list);
    files.set(file, bytes);
    entries.push({ name: file, bytes: bytes.byteLength, sha256: sha256(bytes) });
  }
  const body: Manifest = {
    format: CHECKPOINT_FORMAT,
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    library: { name: 'trainchart', version: libraryVersion() },
    writtenAt: new Date().toISOString(),
    position: { ...run.position },
    files: entries,
    run: encoded,
  };
  return { manifest: { ...body, manifestSha256: sha256(Buffer.from(JSON.stringify(body), 'utf8')) }, files };
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function writeSynced(path: string, bytes: Uint8Array): void {
  const fd = fs.openSync(path, 'wx', 0o644);
  try {
    let written = 0;
    while (written < bytes.byteLength) written += fs.writeSync(fd, bytes, written, bytes.byteLength - written);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (error) {
    // Some platforms cannot fsync a directory; there the rename is as durable as they make it.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EACCES') throw error;
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}

/** Keeps the newest `keep` checkpoints of `dir` (by position), and always `protect`. */
function prune(dir: string, keep: number, protect: string): void {
  if (keep === Infinity) return;
  const all = listCheckpoints(dir);
  const excess = all.length - keep;
  if (excess <= 0) return;
  let removed = 0;
  for (const c of all) {
    if (removed >= excess) break;
    const name = c.path.slice(dir.length).replace(/^[\\/]+/, '');
    if (name === protect) continue;
    const trash = join(dir, `${TRASH_PREFIX}${name}-${process.pid}-${++tempCounter}`);
    fs.renameSync(c.path, trash);
    fs.rmSync(trash, { recursive: true, force: true });
    removed++;
  }
  fsyncDir(dir);
}

/** Removes what writes and deletions cut short left behind (hidden `.tmp-*` / `.trash-*` entries). */
function sweep(dir: string): void {
  for (const entry of fs.readdirSync(dir)) {
    if (entry.startsWith(TEMP_PREFIX) || entry.startsWith(TRASH_PREFIX)) {
      fs.rmSync(join(dir, entry), { recursive: true, force: true });
    }
  }
}
