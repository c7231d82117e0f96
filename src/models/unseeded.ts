/**
 * Finds the randomness in a model that no seed controls, so `fit` can say that the run cannot
 * be reproduced (or resumed exactly) and what to use instead. Two kinds:
 *
 * - **Random layers at training time** (found at every fit): tfjs's `dropout` and
 *   `spatialDropout1d` without a seed draw unseeded masks, and with a seed apply the *same*
 *   mask at every step (they re-seed each call); `gaussianNoise`, `gaussianDropout` and
 *   `alphaDropout` take no seed at all; recurrent layers with `dropout` / `recurrentDropout`
 *   draw unseeded masks. The replacement is trainchart's `SeededDropout`.
 * - **Unseeded initialisers** (they ran when the model was built): read from the layer's
 *   config, which tfjs fills from the initializer objects themselves — every random
 *   initializer (RandomUniform, RandomNormal, TruncatedNormal, VarianceScaling, i.e. glorot*,
 *   he*, leCun*, and Orthogonal) serialises its `seed`, null or absent when none was given,
 *   and tfjs's own defaults (a dense kernel's glorotNormal, an LSTM's orthogonal) are
 *   unseeded. This is exact about the model's *definition*; what it cannot see is whether the
 *   weights were overwritten after the build (loadWeights, setWeights), in which case the
 *   initialisers no longer matter, as the warning says.
 *
 * Layers are looked up inside nested models (any depth) and wrappers (their serialised
 * `layer`, an RNN's `cell`), with the nested model's name as a prefix ("inner/dropout").
 */
import * as tf from '@tensorflow/tfjs';

export interface UnseededFinding {
  /** The layer, prefixed by the nested models it sits in ("inner/dropout_Dropout1"). */
  layer: string;
  kind: 'layer' | 'initializer';
  /** What is unseeded, e.g. "Dropout (rate 0.5) draws unseeded masks". */
  what: string;
  /** The seeded replacement. */
  fix: string;
}

/** Initializers that draw random numbers; Zeros, Ones, Constant and Identity do not. */
const RANDOM_INITIALIZERS = new Set(['RandomUniform', 'RandomNormal', 'TruncatedNormal', 'VarianceScaling', 'Orthogonal']);

/** tfjs's named VarianceScaling presets, by (scale, mode, distribution): the name a user would pass a seed to. */
const VARIANCE_SCALING_NAMES: Record<string, string> = {
  '1,fanAvg,normal': 'glorotNormal',
  '1,fanAvg,uniform': 'glorotUniform',
  '2,fanIn,normal': 'heNormal',
  '2,fanIn,uniform': 'heUniform',
  '1,fanIn,normal': 'leCunNormal',
  '1,fanIn,uniform': 'leCunUniform',
};

type Config = Record<string, unknown>;
interface Serialized {
  className: string;
  config: Config;
}

const isSerialized = (v: unknown): v is Serialized =>
  typeof v === 'object' && v !== null && typeof (v as Serialized).className === 'string' && typeof (v as Serialized).config === 'object' && (v as Serialized).config !== null;

const positive = (v: unknown): v is number => typeof v === 'number' && v > 0;

function initializerName({ className, config }: Serialized): string {
  if (className === 'VarianceScaling') {
    return VARIANCE_SCALING_NAMES[`${String(config.scale)},${String(config.mode)},${String(config.distribution)}`] ?? 'varianceScaling';
  }
  return className.charAt(0).toLowerCase() + className.slice(1);
}

/** tfjs's recurrent layers and cells, whose `dropout` / `recurrentDropout` masks take no seed. */
const RECURRENT = /^(LSTM|GRU|SimpleRNN|ConvLSTM2D)(Cell)?$/;

const SEEDED_DROPOUT = 'SeededDropout from trainchart (models.SeededDropout({ rate, seed }))';

/** What is unseeded in one serialised layer (or cell, or wrapped layer), with what to use instead. */
function scan(node: Serialized, layer: string, out: UnseededFinding[]): void {
  const { className, config } = node;
  const found = (kind: UnseededFinding['kind'], what: string, fix: string) => out.push({ layer, kind, what, fix });
  switch (className) {
    case 'Dropout':
    case 'SpatialDropout1D':
      if (positive(config.rate)) {
        if (config.seed == null) found('layer', `${className} (rate ${config.rate}) draws unseeded masks`, `use ${SEEDED_DROPOUT}`);
        else found('layer', `${className} (rate ${config.rate}, seed ${String(config.seed)}) re-seeds at every call: the same mask at every step`, `use ${SEEDED_DROPOUT}`);
      }
      break;
    case 'GaussianNoise':
      if (positive(config.stddev)) found('layer', `GaussianNoise (stddev ${config.stddev}) draws unseeded noise (tfjs takes no seed)`, 'leave it out, or write a noise layer with getRngState/setRngState as SeededDropout does');
      break;
    case 'GaussianDropout':
    case 'AlphaDropout':
      if (positive(config.rate)) found('layer', `${className} (rate ${config.rate}) draws unseeded noise (tfjs takes no seed)`, `use ${SEEDED_DROPOUT}`);
      break;
  }
  if (RECURRENT.test(className) && (positive(config.dropout) || positive(config.recurrentDropout))) {
    found(
      'layer',
      `${className} (dropout ${String(config.dropout ?? 0)}, recurrentDropout ${String(config.recurrentDropout ?? 0)}) draws unseeded masks`,
      `set dropout and recurrentDropout to 0 and put a ${SEEDED_DROPOUT} before or after it`,
    );
  }
  for (const [key, value] of Object.entries(config)) {
    const children = Array.isArray(value) ? value : [value];
    for (const child of children) {
      if (!isSerialized(child)) continue;
      if (key.endsWith('Initializer')) {
        if (RANDOM_INITIALIZERS.has(child.className) && child.config.seed == null) {
          const name = initializerName(child);
          found(
            'initializer',
            `${key} (${name}) has no seed, so a rebuilt model starts from other weights (unless weights are loaded into it)`,
            `pass one: ${key}: tf.initializers.${name}({ seed })`,
          );
        }
      } else {
        scan(child, layer, out); // a wrapped layer (TimeDistributed, Bidirectional) or an RNN's cell
      }
    }
  }
}

/** Every unseeded random source of `model` (see the module comment), in layer order. */
export function unseededRandomness(model: tf.LayersModel): UnseededFinding[] {
  const out: UnseededFinding[] = [];
  const seen = new Set<unknown>();
  const visit = (m: tf.LayersModel, prefix: string) => {
    for (const layer of m.layers) {
      if (seen.has(layer)) continue;
      seen.add(layer);
      if (layer instanceof tf.LayersModel) {
        visit(layer, `${prefix}${layer.name}/`);
        continue;
      }
      let config: Config;
      try {
        config = layer.getConfig();
      } catch {
        continue; // a custom layer whose config cannot be read has nothing to say here
      }
      scan({ className: layer.getClassName(), config }, prefix + layer.name, out);
    }
  };
  visit(model, '');
  return out;
}

/** The warning `fit` emits for these findings (one line per finding). */
export function unseededWarning(findings: readonly UnseededFinding[]): string {
  return (
    'this model has randomness no seed controls, so this run cannot be reproduced or resumed exactly:\n' +
    findings.map((f) => `  - layer "${f.layer}": ${f.what}; ${f.fix}`).join('\n')
  );
}

/** The `code` of that warning (`node --disable-warning=TRAINCHART_UNSEEDED` silences it). */
export const UNSEEDED_WARNING_CODE = 'TRAINCHART_UNSEEDED';

/**
 * Emits the warning for `model` if it has unseeded randomness: through `process.emitWarning`
 * (type TrainchartWarning, code TRAINCHART_UNSEEDED) where there is a `process`, else
 * `console.warn`. Returns the findings.
 */
export function warnUnseeded(model: tf.LayersModel): UnseededFinding[] {
  const findings = unseededRandomness(model);
  if (findings.length === 0) return findings;
  const message = unseededWarning(findings);
  if (typeof process !== 'undefined' && typeof process.emitWarning === 'function') {
    process.emitWarning(message, { type: 'TrainchartWarning', code: UNSEEDED_WARNING_CODE });
  } else {
    console.warn(`TrainchartWarning: ${message}`);
  }
  return findings;
}
