import type * as tf from '@tensorflow/tfjs';

/**
 * What a callback may use of the learner it is attached to (`this.learn`, `ctx.learn`).
 *
 * Callbacks program against this interface, never against the `Learner` class: the class sits
 * above the callbacks in the layering (it composes them, and its default callback list holds the
 * always-on Recorder), so a callback that imported it would close a circle. Everything here is a
 * structural view; the `Learner` implements it, and a test may hand a callback any object that
 * does.
 *
 * The views are deliberately narrow: a callback reads the data's shape of things, not its
 * samples, and reaches the optimizer only to snapshot and restore it (the LR finder).
 */
export interface LearnerApi {
  /** The model being trained. */
  readonly model: tf.LayersModel;
  /** The data of the fit; callbacks look at whether there is a validation set and at its size. */
  readonly data: { readonly train: DataView; readonly valid?: DataView | null };
  /** The loss function, by name ('categoricalCrossentropy', … or a custom function's name). */
  readonly loss: { readonly name: string; readonly fn: (yPred: tf.Tensor, yTrue: tf.Tensor) => tf.Scalar };
  /** The validation metrics, by name, in the order `ctx.lastMetrics` reports them. */
  readonly metrics: readonly { readonly name: string }[];
  /** The optimizer: its kind, live hyper-parameters and whole state (snapshot/restore). */
  readonly optimizer: OptimizerView;
  /** The learner's random stream for callbacks (MixUp's λ, …): seeded, checkpointed. */
  readonly rng: RandomStream;

  /** Hyper-parameters for the next optimizer step; a hook may set them. */
  lr: number;
  /** SGD momentum, or Adam's β1 (fastai's `mom`); `beta1` is the same value. */
  momentum: number;
  beta1: number;
  wd: number;

  /** The current batch's gradients, keyed by variable name; a backwardEnd hook may replace them. */
  grads: tf.NamedTensorMap | null;
  /** The trainable variables, in the model's order. */
  readonly params: tf.Variable[];

  /**
   * Ends the running fit after its current batch through the machine's stopTraining path, as
   * Ctrl-C or an AbortSignal does (a hook may as well return `{ stopTraining: true }`).
   */
  stop(): void;
}

/** What callbacks see of a DataLoader. */
export interface DataView {
  /** Batches per pass. */
  readonly nBatches: number;
  /** Samples. */
  readonly length: number;
  /** 'int32' for sparse class labels, else 'float32'. */
  readonly targetDtype: 'float32' | 'int32';
}

/** What callbacks see of the optimizer. */
export interface OptimizerView {
  readonly kind: string;
  readonly hp: { lr: number; momentum: number; wd: number };
  /** A deep copy of the whole state (buffers, step counts, hyper-parameters). */
  getState(): object;
  /** Restores a state from `getState` exactly. */
  setState(state: object): void;
}

/** A seeded random stream whose whole state can be saved and restored (src/rng.ts implements it). */
export interface RandomStream {
  /** Uniform in [0, 1). */
  nextFloat(): number;
  /** Uniform integer in [0, n). */
  nextInt(n: number): number;
  /** In-place Fisher–Yates shuffle drawing from this stream. */
  shuffle<T extends { length: number; [i: number]: number }>(arr: T): T;
  getState(): [number, number, number, number];
  setState(state: [number, number, number, number]): void;
}
