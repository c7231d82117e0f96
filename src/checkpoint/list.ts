import fs from 'node:fs';
import { join } from 'node:path';
import { checkpointError, MANIFEST_FILE, TEMP_PREFIX, TRASH_PREFIX, type CheckpointPosition } from './format.js';

export interface CheckpointInfo {
  /** The checkpoint's directory: give it to `fit(n, { resumeFrom })`. */
  path: string;
  /** The epoch a resumed run continues in. */
  epoch: number;
  /** Train batches the run had done. */
  iteration: number;
  /** The next train batch of `epoch` (> 0 when taken mid-epoch). */
  batchIndex: number;
}

/**
 * The checkpoints in `dir` (the directory given to the Checkpoint callback), oldest first (by
 * iteration, then position). Reads each one's position from its manifest without verifying its
 * files — that happens when it is resumed from; entries that are not checkpoints (no readable
 * manifest, a hidden write or deletion under way) are left out.
 */
export function listCheckpoints(dir: string): CheckpointInfo[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw checkpointError('missing', dir, `listCheckpoints: ${dir} does not exist (no checkpoint was written there)`);
    if (code === 'ENOTDIR') throw checkpointError('missing', dir, `listCheckpoints: ${dir} is a file, not a checkpoint directory`);
    throw e;
  }
  const found: CheckpointInfo[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith(TEMP_PREFIX) || entry.name.startsWith(TRASH_PREFIX)) continue;
    const path = join(dir, entry.name);
    const position = readPosition(path);
    if (position) found.push({ path, epoch: position.epoch, iteration: position.iteration, batchIndex: position.batchIndex });
  }
  return found.sort((a, b) => a.iteration - b.iteration || a.epoch - b.epoch || a.batchIndex - b.batchIndex || (a.path < b.path ? -1 : 1));
}

/** The position a checkpoint's manifest records, or null when it has no readable one. */
export function readPosition(path: string): CheckpointPosition | null {
  try {
    const manifest = JSON.parse(fs.readFileSync(join(path, MANIFEST_FILE), 'utf8')) as { position?: Partial<CheckpointPosition> };
    const p = manifest.position;
    const ok = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
    if (!p || !ok(p.epoch) || !ok(p.iteration) || !ok(p.batchIndex) || !ok(p.nEpochs)) return null;
    return { epoch: p.epoch!, iteration: p.iteration!, batchIndex: p.batchIndex!, nEpochs: p.nEpochs! };
  } catch {
    return null;
  }
}
