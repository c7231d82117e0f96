import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import { TrackerCallback, type TrackerOptions } from './tracker.js';

export interface EarlyStoppingOptions extends TrackerOptions {
  /** Epochs without improvement (by more than minDelta) after which training stops. Default 1, as fastai. */
  patience?: number;
  /** Keep a copy of the weights of the best epoch and put them back at trainEnd. Default false. */
  restoreBest?: boolean;
}

interface WeightCopy {
  shape: number[];
  dtype: 'float32' | 'int32';
  values: Float32Array | Int32Array;
}

/**
 * Stops training when the monitored value has not improved for `patience` epochs
 * (fastai's EarlyStoppingCallback): at each epochEnd an improvement resets the count,
 * anything else adds one, and when the count reaches `patience` the hook returns
 * `{ stopTraining: true }`, so that epochEnd is the run's last and fit resolves 'stopped'.
 *
 * With `restoreBest`, the weights at the end of the best epoch are copied into typed arrays
 * (not tensors, so nothing can leak while they wait) and written back at trainEnd — also
 * when the run ended for another reason, since the best weights are what was asked for.
 *
 * State: the tracker's, `wait`, `stoppedEpoch` and the best weights' copy (`bestWeights`:
 * shape, dtype and a typed array per weight), so a resumed run can still restore them.
 */
export class EarlyStopping extends TrackerCallback {
  // After the Recorder (50) and Progress (60), so the last epoch is recorded and printed first.
  override order = 70;
  readonly patience: number;
  readonly restoreBest: boolean;
  /** Epochs since the last improvement. */
  wait = 0;
  /** The epoch at whose end training was stopped, or null. */
  stoppedEpoch: number | null = null;
  #bestWeights: WeightCopy[] | null = null;
  // bestWeights lives in a #private field: getState and setState below carry it themselves.
  protected override readonly stateKeys = [...TrackerCallback.STATE_KEYS, 'wait', 'stoppedEpoch', 'bestWeights'];

  constructor(options: EarlyStoppingOptions = {}) {
    super(options);
    const patience = options.patience ?? 1;
    if (!Number.isInteger(patience) || patience < 1) {
      throw new ConfigError(
        `EarlyStopping: patience must be an integer ≥ 1 (epochs without improvement before stopping), got ${String(patience)}`,
      );
    }
    this.patience = patience;
    this.restoreBest = options.restoreBest ?? false;
  }

  protected override reset(): void {
    super.reset();
    this.wait = 0;
    this.stoppedEpoch = null;
    this.#bestWeights = null;
  }

  onEpochEnd(ctx: TrainContext) {
    const outcome = this.track(ctx);
    if (outcome === 'missing') return;
    if (outcome === 'improved') {
      this.wait = 0;
      if (this.restoreBest) this.#bestWeights = this.copyWeights();
      return;
    }
    this.wait += 1;
    if (this.wait >= this.patience) {
      this.stoppedEpoch = ctx.epoch;
      return { stopTraining: true };
    }
  }

  onTrainEnd(): void {
    if (!this.restoreBest || !this.#bestWeights) return;
    const copies = this.#bestWeights;
    if (copies.length !== this.learn.model.weights.length) {
      throw new ConfigError('EarlyStopping: the model has a different number of weights than when the best ones were copied; cannot restore them');
    }
    // One tensor per weight: setWeights assigns them (the variables share their data), so they are freed right after.
    const tensors = copies.map((c) => tf.tensor(c.values, c.shape, c.dtype));
    try {
      this.learn.model.setWeights(tensors);
    } finally {
      tf.dispose(tensors);
    }
  }

  /** Has a copy of the best weights been kept? */
  get hasBestWeights(): boolean {
    return this.#bestWeights !== null;
  }

  private copyWeights(): WeightCopy[] {
    return this.learn.model.weights.map((w) => {
      const t = w.read();
      return {
        shape: [...t.shape],
        dtype: t.dtype as 'float32' | 'int32',
        values: (t.dataSync() as Float32Array | Int32Array).slice(),
      };
    });
  }

  /** Resuming at `epoch`: a stop recorded at that epoch or later has not happened yet. */
  jumpToEpoch(epoch: number): void {
    if (this.stoppedEpoch !== null && this.stoppedEpoch >= epoch) this.stoppedEpoch = null;
  }

  /** The tracker's state, `wait`, `stoppedEpoch`, and `bestWeights` (copies of the typed arrays, or null). */
  override getState(): Record<string, unknown> {
    const state = super.getState();
    state.bestWeights = this.#bestWeights?.map((c) => ({ shape: [...c.shape], dtype: c.dtype, values: c.values.slice() })) ?? null;
    return state;
  }

  override setState(state: Record<string, unknown>): void {
    let rest = state;
    let copies: WeightCopy[] | null | undefined;
    if (typeof state === 'object' && state !== null && 'bestWeights' in state) {
      const { bestWeights, ...others } = state;
      // Checked before anything is set, so a bad state changes nothing.
      copies = this.readWeightCopies(bestWeights);
      rest = others;
    }
    super.setState(rest);
    if (copies !== undefined) this.#bestWeights = copies;
  }

  private readWeightCopies(saved: unknown): WeightCopy[] | null {
    if (saved === null) return null;
    const bad = (what: string) =>
      new ConfigError(`EarlyStopping.setState: bestWeights ${what}; it must be null or, per weight, { shape, dtype: 'float32' | 'int32', values }`);
    if (!Array.isArray(saved)) throw bad('is not an array');
    return saved.map((c: unknown, i): WeightCopy => {
      const { shape, dtype, values } = (c ?? {}) as Partial<WeightCopy>;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw bad(`[${i}] has no valid shape`);
      if (dtype !== 'float32' && dtype !== 'int32') throw bad(`[${i}] has dtype ${JSON.stringify(dtype)}`);
      const Ctor = dtype === 'int32' ? Int32Array : Float32Array;
      if (!(values instanceof Ctor)) throw bad(`[${i}] values are not a ${Ctor.name}`);
      const size = shape.reduce((a, d) => a * d, 1);
      if (values.length !== size) throw bad(`[${i}] holds ${values.length} values for shape [${shape.join(', ')}]`);
      return { shape: [...shape], dtype, values: values.slice() };
    });
  }
}
