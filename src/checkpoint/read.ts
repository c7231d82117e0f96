/**
 * Reading a checkpoint back: every file is verified — present, of the length the manifest
 * records, of its sha256 — and the manifest against its own checksum and format version,
 * **before** anything is decoded, let alone loaded into a model. Each failure is a
 * CheckpointError naming the file and what differs. Nothing read here is ever evaluated: the
 * manifest is JSON data and the binary files are raw numbers.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { decodeState, typedArrayFromLittleEndian, type BlobRef } from '../io/stateCodec.js';
import type { CapturedRun } from './capture.js';
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_FORMAT_VERSION,
  LATEST_FILE,
  MANIFEST_FILE,
  checkpointError,
  type Manifest,
} from './format.js';
import { listCheckpoints } from './list.js';
import { sha256 } from './write.js';

export interface LoadedCheckpoint {
  /** The checkpoint's directory. */
  path: string;
  manifest: Manifest;
  run: CapturedRun;
}

/**
 * The checkpoint directory `resumeFrom` means: a checkpoint's own directory (it holds a
 * manifest.json), or a run directory (the Checkpoint callback's `dir`), whose `latest` file
 * names its newest checkpoint — or, when a crash came before `latest` was first written, the
 * newest complete checkpoint in it.
 */
export function resolveCheckpoint(resumeFrom: string): string {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(resumeFrom);
  } catch {
    throw checkpointError('missing', resumeFrom, `resumeFrom: ${resumeFrom} does not exist; give a checkpoint directory or the Checkpoint callback's dir`);
  }
  if (!stat.isDirectory()) {
    throw checkpointError('missing', resumeFrom, `resumeFrom: ${resumeFrom} is a file; give a checkpoint directory or the Checkpoint callback's dir`);
  }
  if (fs.existsSync(join(resumeFrom, MANIFEST_FILE))) return resumeFrom;
  const latestFile = join(resumeFrom, LATEST_FILE);
  if (fs.existsSync(latestFile)) {
    const name = fs.readFileSync(latestFile, 'utf8').trim();
    const path = join(resumeFrom, name);
    if (name === '' || name.includes('/') || name.includes('\\') || name.startsWith('.')) {
      throw checkpointError('corrupt', latestFile, `${latestFile} does not name a checkpoint of ${resumeFrom} (it holds ${JSON.stringify(name)})`);
    }
    if (!fs.existsSync(path)) {
      const others = listCheckpoints(resumeFrom);
      const hint = others.length ? `; the checkpoints there are ${others.map((c) => c.path).join(', ')}` : '';
      throw checkpointError('missing', path, `${latestFile} names ${name}, which is missing from ${resumeFrom}${hint}`);
    }
    return path;
  }
  const all = listCheckpoints(resumeFrom);
  if (all.length === 0 && fs.readdirSync(resumeFrom).some((f) => f.endsWith('.bin'))) {
    // A checkpoint's files without its manifest: the manifest is what was lost.
    const manifestPath = join(resumeFrom, MANIFEST_FILE);
    throw checkpointError('missing', manifestPath, `${manifestPath} is missing: ${resumeFrom} is not a complete checkpoint`);
  }
  if (all.length === 0) {
    throw checkpointError('missing', resumeFrom, `resumeFrom: ${resumeFrom} holds no checkpoint (no manifest.json, no ${LATEST_FILE}, no checkpoint directory)`);
  }
  return all.at(-1)!.path;
}

/** Reads and verifies the checkpoint in `path` (a checkpoint's own directory), then decodes it. */
export function readCheckpoint(path: string): LoadedCheckpoint {
  const manifestPath = join(path, MANIFEST_FILE);
  if (!fs.existsSync(path)) throw checkpointError('missing', path, `checkpoint ${path} does not exist`);
  let text: string;
  try {
    text = fs.readFileSync(manifestPath, 'utf8');
  } catch {
    throw checkpointError('missing', manifestPath, `${manifestPath} is missing: ${path} is not a complete checkpoint`);
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(text) as Manifest;
  } catch (e) {
    throw checkpointError('corrupt', manifestPath, `${manifestPath} is not valid JSON (truncated or damaged): ${(e as Error).message}`, e);
  }
  if (typeof manifest !== 'object' || manifest === null || manifest.format !== CHECKPOINT_FORMAT) {
    throw checkpointError('format', manifestPath, `${manifestPath} is not a trainchart checkpoint manifest (format ${JSON.stringify((manifest as { format?: unknown } | null)?.format)})`);
  }
  if (!Number.isInteger(manifest.formatVersion) || manifest.formatVersion < 1) {
    throw checkpointError('corrupt', manifestPath, `${manifestPath} has no valid formatVersion (${JSON.stringify(manifest.formatVersion)})`);
  }
  if (manifest.formatVersion > CHECKPOINT_FORMAT_VERSION) {
    throw checkpointError(
      'version',
      manifestPath,
      `${manifestPath} is checkpoint format version ${manifest.formatVersion} (written by trainchart ${manifest.library?.version ?? '?'}); ` +
        `this trainchart reads format version ${CHECKPOINT_FORMAT_VERSION} and older: upgrade trainchart to resume from it`,
    );
  }
  const { manifestSha256, ...body } = manifest;
  const actual = sha256(Buffer.from(JSON.stringify(body), 'utf8'));
  if (manifestSha256 !== actual) {
    throw checkpointError('corrupt', manifestPath, `${manifestPath} is damaged: its content's sha256 is ${actual}, but it records ${String(manifestSha256)}`);
  }

  // Every file, before anything is decoded.
  const blobs = new Map<string, Buffer>();
  for (const entry of manifest.files) {
    const file = join(path, entry.name);
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(file);
    } catch {
      throw checkpointError('missing', file, `${file} is missing (${MANIFEST_FILE} lists it, ${entry.bytes} bytes)`);
    }
    if (bytes.byteLength < entry.bytes) {
      throw checkpointError('truncated', file, `${file} is truncated: it has ${bytes.byteLength} bytes, ${MANIFEST_FILE} records ${entry.bytes}`);
    }
    if (bytes.byteLength > entry.bytes) {
      throw checkpointError('corrupt', file, `${file} has ${bytes.byteLength} bytes, but ${MANIFEST_FILE} records ${entry.bytes}`);
    }
    const digest = sha256(bytes);
    if (digest !== entry.sha256) {
      throw checkpointError('corrupt', file, `${file} is corrupted: its sha256 is ${digest}, ${MANIFEST_FILE} records ${entry.sha256}`);
    }
    blobs.set(entry.name, bytes);
  }

  const blob = (ref: BlobRef, where: string) => {
    const bytes = blobs.get(ref.file);
    if (!bytes || ref.offset + ref.bytes > bytes.byteLength) {
      throw checkpointError('corrupt', manifestPath, `${manifestPath}: ${where} points at bytes ${ref.offset}…${ref.offset + ref.bytes} of ${ref.file}, which it does not have`);
    }
    return typedArrayFromLittleEndian(ref.type, bytes.subarray(ref.offset, ref.offset + ref.bytes));
  };
  let state: Record<string, unknown>;
  try {
    state = decodeState(manifest.run, 'run', { blob }) as Record<string, unknown>;
  } catch (e) {
    if ((e as { file?: unknown }).file) throw e;
    throw checkpointError('corrupt', manifestPath, `${manifestPath}: ${(e as Error).message}`, e);
  }
  const run = { kind: 'trainchart-run', ...state } as CapturedRun;
  const missing = ['position', 'resume', 'snapshot', 'recipe', 'learner', 'model', 'optimizer', 'callbacks', 'smoothLoss', 'random', 'data', 'engine', 'context'].filter(
    (k) => !(k in state),
  );
  if (missing.length) throw checkpointError('corrupt', manifestPath, `${manifestPath} lacks ${missing.join(', ')}: it is not a complete checkpoint`);
  return { path, manifest, run };
}
