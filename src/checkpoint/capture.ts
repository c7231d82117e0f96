/**
 * The whole state of a run at a quiet point, in memory (typed arrays copied out of the
 * tensors): what a checkpoint writes and a resume puts back. Everything a hook could see
 * later is here — weights, optimizer slots, every callback's state, the smoothed loss, every
 * random stream (data order, `learn.rng`, each seeded layer), gradients carried by skipZero,
 * the last validation metrics — plus what must match for a resume to be the same run (model
 * architecture, optimizer kind, callbacks, data, seed, loss, metrics, the fit's recipe).
 */
import * as tf from '@tensorflow/tfjs';
import type { ResumePoint } from '../../machines/trainLoop.js';
import type { DataOrder } from '../data/dataLoader.js';
import type { SmoothLossState } from '../loop/smoothLoss.js';
import type { RngState } from '../rng.js';
import type { CheckpointPosition } from './format.js';

/** How the run was started: `fit`, or `fitOneCycle` with its schedule (resuming needs the same). */
export type FitRecipe =
  | { kind: 'fit' }
  | { kind: 'fitOneCycle'; lrMax: number; divFactor: number; pctStart: number; finalDiv: number; moms: [number, number, number] };

/** One layer as far as "is this the same architecture" goes: class, output shape, weights, plain config. */
export interface LayerSignature {
  /** `inner/dense_1`-style path, for messages only (tfjs numbers layer names per process). */
  name: string;
  className: string;
  outputShape: unknown;
  weights: Array<{ shape: Array<number | null>; dtype: string }>;
  /** The layer's config values that are numbers, strings or booleans, except its name and seeds. */
  config: Record<string, number | string | boolean | null>;
}

export interface WeightArray {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  values: Float32Array | Int32Array;
}

export interface CarriedGradient {
  /** Position of the parameter in the model's trainable weights. */
  index: number;
  name: string;
  shape: number[];
  values: Float32Array;
}

export interface CapturedRun {
  kind: 'trainchart-run';
  position: CheckpointPosition;
  /** Where a resumed run continues (read from `snapshot` by the machine's own rules). */
  resume: ResumePoint;
  /** The loop machine's persisted snapshot at the quiet point. */
  snapshot: unknown;
  recipe: FitRecipe;
  learner: { seed: number; loss: string; metrics: string[] };
  model: { topology: unknown; architecture: LayerSignature[]; weights: WeightArray[] };
  optimizer: { kind: string; config: Record<string, number>; state: unknown };
  callbacks: { names: string[]; states: Record<string, Record<string, unknown>> };
  smoothLoss: SmoothLossState;
  random: {
    /** The data order is a function of (seed, epoch): its seeds are its whole state. */
    dataOrder: { train: { seed: number; shuffle: boolean }; valid: { seed: number; shuffle: boolean } | null };
    learner: RngState;
    /** Every layer with its own stream (SeededDropout …), in model order. */
    layers: Array<{ name: string; state: RngState }>;
  };
  data: { train: DataOrder; valid: DataOrder | null };
  engine: { carriedGradients: CarriedGradient[] | null };
  context: { lastMetrics: Record<string, number> | null };
}

/** Checks that what a quiet point's `capture()` gave is a run state (and says so plainly if not). */
export function asCapturedRun(value: unknown): CapturedRun {
  if (typeof value !== 'object' || value === null || (value as { kind?: unknown }).kind !== 'trainchart-run') {
    throw new TypeError('the quiet point did not capture a trainchart run state (is the loop run by a Learner?)');
  }
  return value as CapturedRun;
}

const DROPPED_CONFIG = new Set(['name', 'seed', 'trainable']);

/** Leaf layers of `model`, nested models walked into, with `outer/inner` names. */
function leafLayers(model: tf.LayersModel): Array<{ name: string; layer: tf.layers.Layer }> {
  const out: Array<{ name: string; layer: tf.layers.Layer }> = [];
  const visit = (m: tf.LayersModel, prefix: string) => {
    for (const layer of m.layers) {
      if (layer instanceof tf.LayersModel) visit(layer, `${prefix}${layer.name}/`);
      else out.push({ name: prefix + layer.name, layer });
    }
  };
  visit(model, '');
  return out;
}

/**
 * What makes two models "the same architecture": per leaf layer (nested models walked into),
 * its class, output shape, weight shapes and dtypes, and its plain config values (units,
 * activation, rate, …) — not names, seeds or initialisers, which differ between two builds of
 * one architecture without changing what a checkpoint's weights mean.
 */
export function modelArchitecture(model: tf.LayersModel): LayerSignature[] {
  return leafLayers(model).map(({ name, layer }) => {
    const config: Record<string, number | string | boolean | null> = {};
    for (const [k, v] of Object.entries(layer.getConfig())) {
      if (DROPPED_CONFIG.has(k)) continue;
      if (v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') config[k] = v;
    }
    let outputShape: unknown = null;
    try {
      outputShape = structuredClone(layer.outputShape);
    } catch {
      outputShape = null; // a layer never called has none
    }
    return {
      name,
      className: layer.getClassName(),
      outputShape,
      weights: layer.weights.map((w) => ({ shape: [...w.shape], dtype: w.dtype })),
      config,
    };
  });
}

/** The model's topology as tfjs writes it (model.json's `modelTopology`), for people reading a checkpoint. */
export function modelTopology(model: tf.LayersModel): unknown {
  try {
    return model.toJSON(undefined, false);
  } catch {
    return null; // a custom layer without getConfig: the architecture signature still holds
  }
}

/** Copies of every weight of `model` (trainable or not), in `model.weights` order. */
export function weightArrays(model: tf.LayersModel): WeightArray[] {
  return model.weights.map((w) => {
    const t = w.read();
    if (t.dtype !== 'float32' && t.dtype !== 'int32') throw new TypeError(`weight ${w.originalName} has dtype ${t.dtype}; a checkpoint holds float32 and int32 weights`);
    // slice(): on the cpu backend dataSync returns the tensor's own storage.
    return { name: w.originalName, shape: [...t.shape], dtype: t.dtype, values: (t.dataSync() as Float32Array | Int32Array).slice() };
  });
}

/** Puts `weights` back into `model` by position (tfjs names differ between instances of one model). */
export function writeWeights(model: tf.LayersModel, weights: readonly WeightArray[]): void {
  model.weights.forEach((w, i) => {
    const saved = weights[i]!;
    const t = tf.tensor(saved.values.slice(), saved.shape, saved.dtype);
    try {
      w.write(t);
    } finally {
      t.dispose();
    }
  });
}
