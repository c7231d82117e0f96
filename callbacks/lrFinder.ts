import * as tf from '@tensorflow/tfjs';
import { Callback, type HookResult } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import { rngStatefulLayers, type RngStatefulLayer } from '../src/models/seededDropout.js';
import type { RngState } from '../src/rng.js';
import { ParamScheduler } from './paramScheduler.js';

export interface LRFinderOptions {
  /** Learning rate of the first batch (default 1e-7); must be below endLr. */
  startLr?: number;
  /** The rate the exponential schedule heads for (default 10); see `lrAt`. */
  endLr?: number;
  /** Batches to run (default 100; fewer than 6 become 6, as fastai). */
  numIt?: number;
  /** Stop once the smoothed loss exceeds 4× the best smoothed loss, or is NaN (default true). */
  stopDiv?: boolean;
}

export type LRFinderStop = 'numIt' | 'diverged' | 'nan';

/** What the search may disturb, copied at trainBegin and put back at trainEnd. */
interface Snapshot {
  weights: Array<{ values: tf.TypedArray; shape: number[]; dtype: tf.DataType }>;
  optimizer: object;
  /** Every random stream of the model, nested models' included (`rngStatefulLayers`). */
  layerRngs: Array<{ layer: RngStatefulLayer; state: RngState }>;
  rng: RngState;
  /** The data loaders' order state (epoch, seed), for those that have one. */
  loaders: Array<{ loader: StatefulLoader; state: unknown }>;
}

/** A data loader whose order can be saved and put back (DataLoader's getState/setState). */
interface StatefulLoader {
  getState(): unknown;
  setState(state: unknown): void;
}

function isStatefulLoader(loader: unknown): loader is StatefulLoader {
  const l = loader as Partial<StatefulLoader> | null;
  return typeof l?.getState === 'function' && typeof l.setState === 'function';
}

/**
 * A mock training with an exponentially growing learning rate (fastai v2's LRFinder),
 * usually run through `learn.lrFind()`.
 *
 * - The batch with train iteration i (0-based) uses `lr = startLr · (endLr/startLr)^(i/numIt)`:
 *   fastai v2's `SchedExp` at `train_iter/num_it`, so the last of the numIt batches uses
 *   startLr·(endLr/startLr)^((numIt−1)/numIt), just under endLr.
 * - It stops after numIt batches, or (stopDiv) at the first batch whose smoothed loss is
 *   > 4× the best smoothed loss so far or NaN (fastai v1's NaN check; v2 misses a NaN).
 * - No validation pass runs.
 * - At trainEnd, success or failure, the weights (all of them, trainable or not), the whole
 *   optimizer state (buffers, hyper-parameters — so the lr too —, per-variable step counts), every random
 *   stream of the model (`rngStatefulLayers`: nested models' layers too), `learn.rng` and the
 *   data loaders' order state are put back exactly as they were. An optimizer that had no
 *   buffers yet loses the ones the search created.
 * - The finder's own order is 0, so that its lr is set early in each batchBegin; a callback
 *   with a higher order could still change the weights at trainEnd after that restore
 *   (EarlyStopping's restoreBest does). Put `finder.restorer` in the same fit, and the restore
 *   moves to it: it runs after every other trainEnd hook. `learn.lrFind()` does so.
 */
export class LRFinder extends ParamScheduler {
  readonly startLr: number;
  readonly endLr: number;
  readonly numIt: number;
  readonly stopDiv: boolean;
  /** Per train batch: the lr used, the smoothed loss (what fastai plots and suggests from), the raw loss. */
  lrs: number[] = [];
  losses: number[] = [];
  rawLosses: number[] = [];
  bestLoss = Number.POSITIVE_INFINITY;
  /** Why the search ended; null when the fit ran out of epochs first. */
  stopReason: LRFinderStop | null = null;
  // The scheduler's state, then the search's record; startLr, endLr, numIt and stopDiv are options.
  // ParamScheduler's initializer has run when this one does, so its list is there to extend
  // (TypeScript cannot tell, hence the cast).
  protected override readonly stateKeys: readonly string[] = [
    ...((this as unknown as { stateKeys?: readonly string[] }).stateKeys ?? []),
    'lrs',
    'losses',
    'rawLosses',
    'bestLoss',
    'stopReason',
  ];
  /** Add it to the fit beside the finder to make the restore the last thing at trainEnd. */
  readonly restorer: LRFinderRestore = new LRFinderRestore(this);
  #saved: Snapshot | null = null;
  /** Set when the restorer is part of this fit: the restore is then its job, not onTrainEnd's. */
  #restoreLater = false;

  constructor(options: LRFinderOptions = {}) {
    const { startLr = 1e-7, endLr = 10, numIt = 100, stopDiv = true } = options;
    if (!(Number.isFinite(startLr) && startLr > 0)) throw new ConfigError(`LRFinder: startLr must be a positive number, got ${startLr}`);
    if (!(Number.isFinite(endLr) && endLr > 0)) throw new ConfigError(`LRFinder: endLr must be a positive number, got ${endLr}`);
    if (!(Number.isInteger(numIt) && numIt > 0)) throw new ConfigError(`LRFinder: numIt must be a positive integer, got ${numIt}`);
    // A range that does not grow would search downwards or stand still: nothing to suggest from.
    if (!(startLr < endLr)) {
      throw new ConfigError(
        `LRFinder: startLr (${startLr}) must be below endLr (${endLr}): the search raises the lr from startLr towards endLr (defaults 1e-7 and 10)`,
      );
    }
    super({ lr: (pos) => startLr * (endLr / startLr) ** pos });
    this.startLr = startLr;
    this.endLr = endLr;
    this.numIt = Math.max(6, numIt);
    this.stopDiv = stopDiv;
  }

  /** The learning rate of train iteration `i`. */
  lrAt(i: number): number {
    return this.startLr * (this.endLr / this.startLr) ** (i / this.numIt);
  }

  protected override position(ctx: TrainContext): number {
    return ctx.iteration / this.numIt;
  }

  override onTrainBegin(ctx: TrainContext): void {
    super.onTrainBegin(ctx);
    this.lrs = [];
    this.losses = [];
    this.rawLosses = [];
    this.bestLoss = Number.POSITIVE_INFINITY;
    this.stopReason = null;
    this.#restoreLater = false;
    this.#saved = this.snapshot();
  }

  onEpochBegin(): HookResult {
    return { skipValidate: true };
  }

  override onBatchEnd(ctx: TrainContext): HookResult {
    super.onBatchEnd(ctx);
    if (!ctx.train) return;
    const smooth = ctx.smoothLoss;
    this.lrs.push(this.learn.lr);
    this.losses.push(smooth);
    this.rawLosses.push(ctx.lastLossValue ?? Number.NaN);
    if (smooth < this.bestLoss) this.bestLoss = smooth;
    // The smoothed loss decides, as in fastai: the raw loss is too shaky.
    if (this.stopDiv && Number.isNaN(smooth)) this.stopReason = 'nan';
    else if (this.stopDiv && smooth > 4 * this.bestLoss) this.stopReason = 'diverged';
    else if (ctx.iteration + 1 >= this.numIt) this.stopReason = 'numIt';
    return this.stopReason ? { stopTraining: true } : undefined;
  }

  onTrainEnd(): void {
    if (!this.#restoreLater) this.restoreSnapshot();
  }

  /** @internal — the restorer's onTrainBegin (it runs after this finder's: its order is the largest). */
  deferRestore(): void {
    this.#restoreLater = true;
  }

  /** Puts back what onTrainBegin saved, once; a no-op when nothing is saved. */
  restoreSnapshot(): void {
    const saved = this.#saved;
    this.#saved = null;
    this.#restoreLater = false;
    if (saved) this.restore(saved);
  }

  private snapshot(): Snapshot {
    const learn = this.learn;
    return {
      // Copies: on the cpu backend dataSync returns the tensor's own storage.
      weights: learn.model.weights.map((w) => {
        const v = w.read();
        return { values: v.dataSync().slice(), shape: [...v.shape], dtype: v.dtype };
      }),
      optimizer: learn.optimizer.getState(),
      layerRngs: rngStatefulLayers(learn.model).map((layer) => ({ layer, state: structuredClone(layer.getRngState()) })),
      rng: learn.rng.getState(),
      loaders: [learn.data.train, learn.data.valid].flatMap((loader: unknown) =>
        isStatefulLoader(loader) ? [{ loader, state: structuredClone(loader.getState()) }] : [],
      ),
    };
  }

  private restore(saved: Snapshot): void {
    const learn = this.learn;
    learn.model.weights.forEach((w, i) => {
      const s = saved.weights[i]!;
      // Assigned to the variable itself: LayerVariable.write would re-apply a weight constraint.
      tf.tidy(() => (w.read() as tf.Variable).assign(tf.tensor(s.values, s.shape, s.dtype)));
    });
    learn.optimizer.setState(saved.optimizer);
    for (const { layer, state } of saved.layerRngs) layer.setRngState(state);
    learn.rng.setState(saved.rng);
    for (const { loader, state } of saved.loaders) loader.setState(state);
  }
}

/**
 * The LR finder's restore, as a callback of its own whose order is the largest there is, so
 * it runs after every other trainEnd hook of the fit (ties run in the order given: put it
 * last). Nothing a callback does at trainEnd can then undo it.
 */
export class LRFinderRestore extends Callback {
  override order = Number.MAX_VALUE;
  readonly #finder: LRFinder;

  constructor(finder: LRFinder) {
    super();
    this.#finder = finder;
  }

  onTrainBegin(): void {
    this.#finder.deferRestore();
  }

  onTrainEnd(): void {
    this.#finder.restoreSnapshot();
  }
}
