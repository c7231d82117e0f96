import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../src/errors.js';
import { makeDir } from '../src/io/makeDir.js';
import { saveWeights } from '../src/io/weightsFile.js';
import type { TrainContext } from '../src/loop/context.js';
import { TrackerCallback, type TrackerOptions } from './tracker.js';

export interface SaveModelOptions extends TrackerOptions {
  /**
   * 'improvement' (default): write `<dir>/<name>.weights` at every epochEnd where the monitored
   * value improved, so the file always holds the best weights so far.
   * 'epoch': write `<dir>/<name>_<epoch>.weights` at every epochEnd (0-based epoch), as fastai's
   * `every_epoch`.
   */
  every?: 'epoch' | 'improvement';
  /** Directory of the files, created when missing. Default 'models'. */
  dir?: string;
  /** Base name of the files. Default 'model'. */
  name?: string;
}

/**
 * Saves the model's weights at epochEnd (fastai's SaveModelCallback), with `saveWeights`:
 * the file is written to a temp file, fsynced and renamed over the old one, so a crash while
 * saving leaves the previous file whole, and a torn file is refused on load. Load a file back
 * with `loadWeights(model, path)` from `src/io/weightsFile.ts`.
 *
 * State: the tracker's, and the files written (`saved`, `savedEpochs`, `lastSaved`); every,
 * dir and name are options. A resume at epoch N forgets the saves of epochs ≥ N (the files
 * stay: the resumed run writes them again as it reaches those epochs).
 */
export class SaveModel extends TrackerCallback {
  // After the Recorder (50) and before EarlyStopping (70), so the epoch that stops a run is saved first.
  override order = 65;
  readonly every: 'epoch' | 'improvement';
  readonly dir: string;
  readonly fileName: string;
  /** The last file written, or null. */
  lastSaved: string | null = null;
  /** Files written this run, in order. */
  saved: string[] = [];
  /** The epoch of each file in `saved`. */
  savedEpochs: number[] = [];
  protected override readonly stateKeys = [...TrackerCallback.STATE_KEYS, 'lastSaved', 'saved', 'savedEpochs'];

  constructor(options: SaveModelOptions = {}) {
    super(options);
    const every = options.every ?? 'improvement';
    if (every !== 'epoch' && every !== 'improvement') {
      throw new ConfigError(`SaveModel: every must be 'epoch' or 'improvement', got ${JSON.stringify(every)}`);
    }
    const dir = options.dir ?? 'models';
    const name = options.name ?? 'model';
    if (typeof dir !== 'string' || dir === '') throw new ConfigError(`SaveModel: dir must be a directory path, got ${String(dir)}`);
    if (typeof name !== 'string' || name === '' || /[/\\]/.test(name)) {
      throw new ConfigError(`SaveModel: name must be a file base name without slashes (put directories in dir), got ${String(name)}`);
    }
    this.every = every;
    this.dir = dir;
    this.fileName = name;
  }

  /** Where the best weights go (every: 'improvement'). */
  get bestPath(): string {
    return join(this.dir, `${this.fileName}.weights`);
  }

  /** Where epoch `epoch`'s weights go (every: 'epoch'). */
  epochPath(epoch: number): string {
    return join(this.dir, `${this.fileName}_${epoch}.weights`);
  }

  override onTrainBegin(ctx: TrainContext): void {
    // Only the improvement mode reads a monitored value; per-epoch saving needs no validation data.
    if (this.every === 'improvement') super.onTrainBegin(ctx);
    else this.reset();
    makeDir(this.dir, 'SaveModel dir');
  }

  protected override reset(): void {
    super.reset();
    this.lastSaved = null;
    this.saved = [];
    this.savedEpochs = [];
  }

  /** Resuming at `epoch`: the saves of that epoch and later have not happened yet. */
  jumpToEpoch(epoch: number): void {
    const kept = this.savedEpochs.filter((e) => e < epoch).length;
    this.saved = this.saved.slice(0, kept);
    this.savedEpochs = this.savedEpochs.slice(0, kept);
    this.lastSaved = this.saved.at(-1) ?? null;
  }

  onEpochEnd(ctx: TrainContext): void {
    // Weights that are not all finite (a NaN or infinite loss stepped into them) are never
    // written, nor is such an epoch counted as an improvement: the files keep the last good
    // weights, whatever stopped the run (TerminateOnNaN lets epochEnd run) or did not.
    if (!allFinite(this.learn.model)) return;
    if (this.every === 'epoch') {
      this.write(this.epochPath(ctx.epoch), ctx.epoch);
      return;
    }
    if (this.track(ctx) === 'improved') this.write(this.bestPath, ctx.epoch);
  }

  private write(path: string, epoch: number): void {
    saveWeights(this.learn.model, path);
    this.lastSaved = path;
    this.saved.push(path);
    this.savedEpochs.push(epoch);
  }
}

/** Is every weight of `model` (trainable or not) finite? One read from the device. */
function allFinite(model: tf.LayersModel): boolean {
  const weights = model.weights.map((w) => w.read());
  if (weights.length === 0) return true;
  const bad = tf.tidy(() => tf.addN(weights.map((w) => tf.sum(tf.cast(tf.logicalNot(tf.isFinite(w)), 'int32')))));
  const n = bad.dataSync()[0]!;
  bad.dispose();
  return n === 0;
}
