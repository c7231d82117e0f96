/**
 * The on-disk checkpoint format, version 1 (documented in docs/checkpoints.md).
 *
 * A checkpoint is one flat directory:
 *
 *   manifest.json    everything that is not a big typed array, as JSON (src/io/stateCodec.ts's
 *                    encoding, so NaN, ±Infinity and -0 survive), plus the list of the binary
 *                    files beside it with each one's byte length and sha256, plus the sha256 of
 *                    the manifest itself
 *   weights.bin      the model's weights              ┐ raw little-endian values; the manifest
 *   optimizer.bin    the optimizer's slots            │ points into them with
 *   gradients.bin    gradients kept by skipZero       │ { "$blob": { file, offset, bytes, type } }
 *   callbacks.bin    typed arrays of callback states  ┘ (a file is only written when it has bytes)
 *
 * A run directory (the `dir` of the Checkpoint callback) holds checkpoints as subdirectories
 * named by position, and a `latest` file naming the newest; `.tmp-*` and `.trash-*` entries are
 * writes and deletions under way (or cut by a crash) and are never read.
 */
import { CheckpointError } from '../errors.js';

export const CHECKPOINT_FORMAT = 'trainchart-checkpoint';
/** Bump when a reader of the previous version could misread a new checkpoint. */
export const CHECKPOINT_FORMAT_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
export const LATEST_FILE = 'latest';
export const TEMP_PREFIX = '.tmp-';
export const TRASH_PREFIX = '.trash-';

/** The binary files, by the section of the run state whose typed arrays they hold. */
export const SECTION_FILES: Readonly<Record<string, string>> = {
  model: 'weights.bin',
  optimizer: 'optimizer.bin',
  engine: 'gradients.bin',
  callbacks: 'callbacks.bin',
};
/** Typed arrays of any other section (none today; kept so nothing is ever refused for lack of a file). */
export const OTHER_FILE = 'state.bin';

export interface CheckpointPosition {
  /** The epoch a resumed run continues in. */
  epoch: number;
  /** Train batches the run had done. */
  iteration: number;
  /** The next train batch of `epoch` (> 0 mid-epoch, 0 at the start of the epoch). */
  batchIndex: number;
  /** The run's total epochs. */
  nEpochs: number;
}

export interface FileEntry {
  name: string;
  bytes: number;
  sha256: string;
}

export interface Manifest {
  format: typeof CHECKPOINT_FORMAT;
  formatVersion: number;
  library: { name: string; version: string };
  writtenAt: string;
  position: CheckpointPosition;
  files: FileEntry[];
  /** The run state (CapturedRun without its typed arrays), encoded with encodeState. */
  run: unknown;
  /** sha256 of JSON.stringify of this object without this field. */
  manifestSha256?: string;
}

/** `ckpt-<iteration>-e<epoch>-b<batchIndex>`: unique per position, and sorts by iteration. */
export function checkpointName(p: Pick<CheckpointPosition, 'epoch' | 'iteration' | 'batchIndex'>): string {
  return `ckpt-${String(p.iteration).padStart(9, '0')}-e${p.epoch}-b${p.batchIndex}`;
}

/** A checkpoint error about `file` (a path), with `problem` for programs to branch on. */
export function checkpointError(
  problem: NonNullable<CheckpointError['problem']>,
  file: string,
  message: string,
  cause?: unknown,
): CheckpointError {
  return new CheckpointError(message, { file, problem, ...(cause === undefined ? {} : { cause }) });
}
