/**
 * Ready-made models for MNIST-shaped data. Every random initializer gets its own seed derived
 * from `opts.seed`, so the same seed always yields bit-identical initial weights.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors.js';
import { Rng } from '../rng.js';
import { SeededDropout } from './seededDropout.js';

export interface MlpOptions {
  /** Seed of all initializers and dropout masks (default 0). */
  seed?: number;
  /** Shape of one example (default [28, 28, 1]); flattened first unless it is already rank 1. */
  inputShape?: number[];
  /** Widths of the relu hidden layers (default [256, 128]). */
  hidden?: number[];
  /** Number of output classes (default 10). */
  classes?: number;
  /** Dropout rate after each hidden layer (default 0: none). */
  dropout?: number;
}

export interface CnnOptions {
  /** Seed of all initializers and dropout masks (default 0). */
  seed?: number;
  /** Shape of one image, [height, width, channels] (default [28, 28, 1]). */
  inputShape?: number[];
  /** Number of output classes (default 10). */
  classes?: number;
  /** Dropout rate before the output layer (default 0.25; 0 for none). */
  dropout?: number;
}

const isPositiveInt = (v: number) => Number.isInteger(v) && v > 0;

function checkCommon(
  preset: string,
  seed: number,
  inputShape: number[],
  classes: number,
  dropout: number,
): void {
  if (!Number.isInteger(seed)) throw new ConfigError(`${preset}: seed must be an integer, got ${seed}.`);
  if (inputShape.length === 0 || !inputShape.every(isPositiveInt)) {
    throw new ConfigError(`${preset}: inputShape must be positive integers, got [${inputShape.join(', ')}].`);
  }
  if (!isPositiveInt(classes)) throw new ConfigError(`${preset}: classes must be a positive integer, got ${classes}.`);
  if (!(Number.isFinite(dropout) && dropout >= 0 && dropout < 1)) {
    throw new ConfigError(`${preset}: dropout must be in [0, 1), got ${dropout}.`);
  }
}

/** Distinct per-layer seeds from one model seed, always drawn in the same order. */
function seedStream(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.nextUint32();
}

/**
 * Flatten → dense relu layers (He-normal) → softmax output (Glorot-uniform). With a rank-1
 * inputShape there is nothing to flatten and the Flatten layer is left out.
 */
export function mlp(opts: MlpOptions = {}): tf.LayersModel {
  const { seed = 0, inputShape = [28, 28, 1], hidden = [256, 128], classes = 10, dropout = 0 } = opts;
  checkCommon('mlp', seed, inputShape, classes, dropout);
  if (!hidden.every(isPositiveInt)) {
    throw new ConfigError(`mlp: hidden must be positive integers, got [${hidden.join(', ')}].`);
  }
  const nextSeed = seedStream(seed);
  const model = tf.sequential({ name: 'mlp' });
  // tfjs's Flatten rejects rank-1 input, so already-flat examples go straight to the first dense layer.
  const flat = inputShape.length === 1;
  if (!flat) model.add(tf.layers.flatten({ inputShape, name: 'flatten' }));
  const firstInput = () => (flat && model.layers.length === 0 ? { inputShape } : {});
  hidden.forEach((units, i) => {
    model.add(
      tf.layers.dense({
        ...firstInput(),
        units,
        activation: 'relu',
        kernelInitializer: tf.initializers.heNormal({ seed: nextSeed() }),
        name: `dense${i + 1}`,
      }),
    );
    // The seed is drawn even when there is no dropout so that the output layer's seed does
    // not depend on the dropout rate.
    const dropoutSeed = nextSeed();
    if (dropout > 0) model.add(new SeededDropout({ rate: dropout, seed: dropoutSeed, name: `dropout${i + 1}` }));
  });
  model.add(
    tf.layers.dense({
      ...firstInput(),
      units: classes,
      activation: 'softmax',
      kernelInitializer: tf.initializers.glorotUniform({ seed: nextSeed() }),
      name: 'output',
    }),
  );
  return model;
}

/**
 * A small MNIST CNN: conv 3×3×16 relu → maxpool 2 → conv 3×3×32 relu → maxpool 2 → flatten →
 * dense 128 relu → SeededDropout → dense softmax. The conv layers keep their relu activation
 * (not a separate layer): with a non-linear activation tfjs-layers falls back, while computing
 * gradients, from the fused conv op to plain `Conv2D`, whose gradient trainchart replaces
 * (see backend/conv2dGradient.ts).
 */
export function cnn(opts: CnnOptions = {}): tf.LayersModel {
  const { seed = 0, inputShape = [28, 28, 1], classes = 10, dropout = 0.25 } = opts;
  checkCommon('cnn', seed, inputShape, classes, dropout);
  if (inputShape.length !== 3) {
    throw new ConfigError(`cnn: inputShape must be [height, width, channels], got [${inputShape.join(', ')}].`);
  }
  const nextSeed = seedStream(seed);
  const model = tf.sequential({ name: 'cnn' });
  model.add(
    tf.layers.conv2d({
      inputShape,
      filters: 16,
      kernelSize: 3,
      activation: 'relu',
      kernelInitializer: tf.initializers.heNormal({ seed: nextSeed() }),
      name: 'conv1',
    }),
  );
  model.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }));
  model.add(
    tf.layers.conv2d({
      filters: 32,
      kernelSize: 3,
      activation: 'relu',
      kernelInitializer: tf.initializers.heNormal({ seed: nextSeed() }),
      name: 'conv2',
    }),
  );
  model.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'pool2' }));
  model.add(tf.layers.flatten({ name: 'flatten' }));
  model.add(
    tf.layers.dense({
      units: 128,
      activation: 'relu',
      kernelInitializer: tf.initializers.heNormal({ seed: nextSeed() }),
      name: 'dense1',
    }),
  );
  const dropoutSeed = nextSeed();
  if (dropout > 0) model.add(new SeededDropout({ rate: dropout, seed: dropoutSeed, name: 'dropout' }));
  model.add(
    tf.layers.dense({
      units: classes,
      activation: 'softmax',
      kernelInitializer: tf.initializers.glorotUniform({ seed: nextSeed() }),
      name: 'output',
    }),
  );
  return model;
}
