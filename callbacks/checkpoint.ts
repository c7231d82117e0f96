import fs from 'node:fs';
import { Callback } from '../src/loop/callback.js';
import { asCapturedRun } from '../src/checkpoint/capture.js';
import { writeCheckpoint, type WriteCheckpointOptions, type WrittenCheckpoint } from '../src/checkpoint/write.js';
import { ConfigError } from '../src/errors.js';
import type { QuietPoint } from '../src/loop/quietPoint.js';
import { makeDir } from '../src/io/makeDir.js';

export interface CheckpointOptions {
  /** The run directory; each checkpoint is a subdirectory of it (created when missing). */
  dir: string;
  /** Also write after every `everyBatches` train batches of the run (at a batchEnd, so mid-epoch). Default: never. */
  everyBatches?: number;
  /** Write at the end of every `everyEpochs`-th epoch (default 1; Infinity: never). */
  everyEpochs?: number;
  /** How many of the newest checkpoints stay in `dir` (default 3; Infinity: all). */
  keep?: number;
  /** Write when the run stops (stopTraining, `learn.stop()`, a signal, Ctrl-C) at the boundary where the stop took effect. Default true. */
  onStop?: boolean;
  /** @internal Test seam of the writer (simulated crashes). */
  writeOptions?: Pick<WriteCheckpointOptions, 'beforeStep'>;
}

const KEYS = ['dir', 'everyBatches', 'everyEpochs', 'keep', 'onStop', 'writeOptions'];

const isCount = (v: unknown) => v === Infinity || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 1);

/**
 * Saves the whole run so that `fit(n, { resumeFrom: dir })` in a brand-new Learner (another
 * process, after a crash or a kill -9) continues it bit-identically (docs/checkpoints.md).
 *
 * It writes at the loop's quiet points only (after a train batch's batchEnd, after epochEnd),
 * and there **after every hook and guard of that stage has run**, whatever this callback's
 * order: the driver calls `atQuietPoint` once the stage is done, so the Recorder's entry for
 * that batch is in the checkpoint. Writes are crash-safe (temp dir, fsync, rename, then the
 * `latest` pointer, then pruning to `keep`).
 *
 * When the run stops, the stop checkpoint is taken at the boundary where the stop took effect
 * (for a stop during a train batch: after that batch, before the stopped epoch's validation),
 * and nothing is written after it, so resuming continues as if the run had never stopped.
 *
 * State: none (when to write follows from the position; dir, keep, … are options, so a
 * resumed run may write elsewhere — it writes and prunes only its own dir).
 */
export class Checkpoint extends Callback {
  override order = 90;
  readonly dir: string;
  readonly everyBatches: number | null;
  readonly everyEpochs: number;
  readonly keep: number;
  readonly onStop: boolean;
  protected override readonly stateKeys: readonly string[] = [];
  readonly #writeOptions: Pick<WriteCheckpointOptions, 'beforeStep'>;
  #written: WrittenCheckpoint[] = [];
  #lastKey: string | null = null;
  #stopped = false;

  constructor(options: CheckpointOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new ConfigError("Checkpoint(options): give { dir: 'runs/a', everyBatches?, everyEpochs?, keep?, onStop? }");
    for (const key of Object.keys(options)) {
      if (!KEYS.includes(key)) throw new ConfigError(`Checkpoint: unknown option "${key}"; known options: ${KEYS.slice(0, -1).join(', ')}`);
    }
    const { dir, everyBatches, everyEpochs = 1, keep = 3, onStop = true } = options;
    if (typeof dir !== 'string' || dir === '') throw new ConfigError(`Checkpoint: dir must be a directory path, got ${JSON.stringify(dir)}`);
    if (everyBatches !== undefined && !isCount(everyBatches)) {
      throw new ConfigError(`Checkpoint: everyBatches must be an integer ≥ 1 (train batches between checkpoints), got ${String(everyBatches)}`);
    }
    if (!isCount(everyEpochs)) throw new ConfigError(`Checkpoint: everyEpochs must be an integer ≥ 1 or Infinity (never), got ${String(everyEpochs)}`);
    if (!isCount(keep)) throw new ConfigError(`Checkpoint: keep must be an integer ≥ 1 or Infinity (all), got ${String(keep)}`);
    if (typeof onStop !== 'boolean') throw new ConfigError(`Checkpoint: onStop must be true or false, got ${String(onStop)}`);
    this.dir = dir;
    this.everyBatches = everyBatches === undefined || everyBatches === Infinity ? null : everyBatches;
    this.everyEpochs = everyEpochs;
    this.keep = keep;
    this.onStop = onStop;
    this.#writeOptions = options.writeOptions ?? {};
  }

  /** The checkpoints this callback wrote during the last fit, in order. */
  get written(): readonly WrittenCheckpoint[] {
    return this.#written;
  }

  onTrainBegin(): void {
    this.#written = [];
    this.#lastKey = null;
    this.#stopped = false;
    makeDir(this.dir, 'Checkpoint dir');
  }

  atQuietPoint(point: QuietPoint): void {
    if (this.#stopped) return;
    const { resume } = point;
    const due =
      point.stage === 'batchEnd'
        ? this.everyBatches !== null && resume.iteration % this.everyBatches === 0 // batches done
        : this.everyEpochs !== Infinity && resume.epoch % this.everyEpochs === 0; // epochs done
    const stopping = point.stopping;
    // After a stop nothing more is written: the stopped epoch's validation and end are not the
    // run's, and a checkpoint of them would resume another run than the one that was stopped.
    if (stopping) this.#stopped = true;
    if (!due && !(stopping && this.onStop)) return;
    // The same point seen again (a stop asked for while the loop rested there) is written once.
    const key = `${resume.iteration}:${resume.epoch}:${resume.batchIndex}`;
    if (key === this.#lastKey) return;
    this.#lastKey = key;
    const run = asCapturedRun(point.capture());
    this.#written.push(writeCheckpoint(this.dir, run, { keep: this.keep, ...this.#writeOptions }));
  }
}
