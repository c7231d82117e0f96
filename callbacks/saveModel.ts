import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../src/errors.js';
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
    mkdirSync(this.dir, { recursive: true });
  }

  protected override reset(): void {
    super.reset();
    this.lastSaved = null;
    this.saved = [];
  }

  onEpochEnd(ctx: TrainContext): void {
    if (this.every === 'epoch') {
      this.write(this.epochPath(ctx.epoch));
      return;
    }
    if (this.track(ctx) === 'improved') this.write(this.bestPath);
  }

  private write(path: string): void {
    saveWeights(this.learn.model, path);
    this.lastSaved = path;
    this.saved.push(path);
  }
}
