/**
 * Inverted dropout whose masks come from a trainchart `Rng`.
 *
 * tfjs's `tf.layers.dropout({seed})` re-seeds with the same value on every call, so it applies
 * the *same* mask at every step; without a seed it draws from an unseeded source, so runs
 * cannot be reproduced or resumed exactly. This layer draws a fresh seed for each mask from
 * its own generator, whose state can be saved in a checkpoint and restored.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors.js';
import { Rng, type RngState } from '../rng.js';

export interface SeededDropoutArgs {
  /** Fraction of the inputs to drop, in [0, 1). */
  rate: number;
  /** Seed of the layer's mask stream (default 0). */
  seed?: number;
  name?: string;
  inputShape?: number[];
  batchInputShape?: number[];
  trainable?: boolean;
}

/** A model part whose random stream can be checkpointed. */
export interface RngStatefulLayer {
  name: string;
  getRngState(): RngState;
  setRngState(s: RngState): void;
}

export class SeededDropout extends tf.layers.Layer implements RngStatefulLayer {
  static className = 'SeededDropout';
  readonly rate: number;
  readonly seed: number;
  private readonly rng: Rng;

  constructor(args: SeededDropoutArgs) {
    const { rate, seed = 0, ...layerArgs } = args;
    super(layerArgs);
    if (!(Number.isFinite(rate) && rate >= 0 && rate < 1)) {
      throw new ConfigError(`SeededDropout: rate must be in [0, 1), got ${rate}.`);
    }
    if (!Number.isInteger(seed)) {
      throw new ConfigError(`SeededDropout: seed must be an integer, got ${seed}.`);
    }
    this.rate = rate;
    this.seed = seed;
    this.rng = new Rng(seed);
    this.supportsMasking = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    if (kwargs.training !== true || this.rate === 0) return x;
    // One draw per call, so the stream advances exactly once per training step.
    const maskSeed = this.rng.nextUint32();
    return tf.tidy(() => {
      const keep = 1 - this.rate;
      // u + keep ≥ 1 with probability keep, so floor() gives a 0/1 mask.
      const mask = tf.floor(tf.add(tf.randomUniform(x.shape, 0, 1, 'float32', maskSeed), keep));
      return tf.mul(x, tf.div(mask, keep));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate, seed: this.seed };
  }

  /** The mask stream's state, as four unsigned 32-bit words (stable across save/restore). */
  getRngState(): RngState {
    return this.rng.getState().map((v) => v >>> 0) as RngState;
  }

  setRngState(s: RngState): void {
    this.rng.setState(s);
  }
}

tf.serialization.registerClass(SeededDropout);

/** Does `layer` own a random stream that can be saved and restored (SeededDropout, or a user's own)? */
function hasRngState(layer: unknown): layer is tf.layers.Layer & Omit<RngStatefulLayer, 'name'> {
  const l = layer as Partial<RngStatefulLayer> | null;
  return typeof l?.getRngState === 'function' && typeof l.setRngState === 'function';
}

/**
 * Every layer of `model` that owns a random stream, so a checkpoint (or the LR finder) can
 * save and restore them all. Any layer with `getRngState`/`setRngState` qualifies (duck-typed:
 * a user's own noise layer too, and a SeededDropout from another copy of this package).
 * It looks inside nested models (a LayersModel used as a layer, at any depth) and inside
 * wrapper layers (`tf.layers.timeDistributed`, `bidirectional`: their `layer`), and lists a
 * layer reached twice (shared between branches) once. Names of layers inside nested models
 * are prefixed with the nested model's name ("inner/dropout").
 */
export function rngStatefulLayers(model: tf.LayersModel): RngStatefulLayer[] {
  const found: RngStatefulLayer[] = [];
  const seen = new Set<unknown>();
  const visit = (layer: tf.layers.Layer, prefix: string) => {
    if (seen.has(layer)) return;
    seen.add(layer);
    if (hasRngState(layer)) {
      found.push({
        name: prefix + layer.name,
        getRngState: () => layer.getRngState(),
        setRngState: (s) => layer.setRngState(s),
      });
    }
    if (layer instanceof tf.LayersModel) {
      for (const inner of layer.layers) visit(inner, `${prefix}${layer.name}/`);
    }
    // Wrappers (TimeDistributed, Bidirectional) hold the layer they apply; Bidirectional two.
    const wrapped = layer as unknown as { layer?: unknown; forwardLayer?: unknown; backwardLayer?: unknown };
    for (const inner of [wrapped.layer, wrapped.forwardLayer, wrapped.backwardLayer]) {
      if (inner instanceof tf.layers.Layer) visit(inner, `${prefix}${layer.name}/`);
    }
  };
  for (const layer of model.layers) visit(layer, '');
  return found;
}
