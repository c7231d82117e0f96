/**
 * A trained model in TensorFlow.js's own format, written and read with plain `node:fs`
 * (no tfjs-node): `model.json` (the topology and the weights manifest, as tfjs-layers'
 * `model.save` produces them) and one weights file. `tf.loadLayersModel` reads the pair, here
 * through `loadModelFiles(dir)`, in a browser from the same files served over HTTP
 * (`tf.loadLayersModel('https://…/model.json')`).
 *
 * This is the format to hand a model to other tfjs code. It is not the trainchart weights
 * file the SaveModel callback writes (src/io/weightsFile.ts: weights only, checksummed, for
 * checkpoints of a model you build yourself).
 *
 * The pair is replaced atomically. Each file goes through `writeFileAtomic` (temp file,
 * fsync, rename, directory fsync), and the weights file is named after its content
 * (`weights.<first 16 hex digits of its sha256>.bin`), so the new weights are written next to
 * the old ones before the new `model.json` points at them: a crash at any moment leaves a
 * `model.json` whose weights file is complete, the old pair or the new one, never a mix.
 * Weights files of that pattern that the new `model.json` does not name are removed after.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { join, resolve, sep } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CheckpointError, ConfigError } from '../errors.js';
// Loading a model that holds SeededDropout needs the class registered with tfjs's
// serialization; importing the layer's module registers it.
import '../models/seededDropout.js';
import { tempPathFor, writeFileAtomic } from './atomicWrite.js';
import { makeDir } from './makeDir.js';

export const MODEL_JSON = 'model.json';
const WEIGHTS_FILE = /^weights\.([0-9a-f]{16})\.bin$/;

/** The files `exportModel` wrote. */
export interface ExportedModel {
  dir: string;
  /** `<dir>/model.json`. */
  modelJson: string;
  /** `<dir>/weights.<hash>.bin`. */
  weights: string;
  /** Size of the weights file. */
  weightBytes: number;
}

/**
 * Checks, before anything is trained or written, that `dir` can hold an exported model:
 * creates it (and missing parents) and writes and removes a probe file there. Throws a
 * ConfigError naming the directory and the reason otherwise. Returns `dir`.
 */
export function checkModelDir(dir: unknown, where = 'exportModel'): string {
  if (typeof dir !== 'string' || dir === '') {
    throw new ConfigError(`${where}: the model directory must be a non-empty path string, got ${JSON.stringify(dir)}`);
  }
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(dir);
  } catch {
    stat = undefined;
  }
  if (stat && !stat.isDirectory()) {
    throw new ConfigError(`${where}: ${dir} exists and is not a directory; give a directory for model.json and its weights file`);
  }
  // A run must not train for an hour and then find it cannot write model.json.
  if (stat && fs.statSync(join(dir, MODEL_JSON), { throwIfNoEntry: false })?.isDirectory()) {
    throw new ConfigError(`${where}: ${join(dir, MODEL_JSON)} is a directory; remove it or give another directory for the model`);
  }
  try {
    if (!stat) makeDir(dir, where);
    // As root every permission check passes, and a read-only file system answers only to a
    // real write: so write something and take it away.
    const probe = tempPathFor(join(dir, MODEL_JSON));
    fs.closeSync(fs.openSync(probe, 'wx', 0o644));
    fs.unlinkSync(probe);
  } catch (error) {
    throw new ConfigError(
      `${where}: cannot write a model to ${dir} (${reason(error)}); give a directory you can write to`,
      { cause: error },
    );
  }
  return dir;
}

/**
 * Writes `model` to `dir` as `model.json` + `weights.<hash>.bin` (tfjs-layers' format, via
 * `model.save` with a save handler), replacing an earlier export there atomically (see the
 * top of this file). The directory is created when missing; a path that cannot hold it is a
 * ConfigError before anything is written, a failing write a CheckpointError (the earlier
 * export, if any, stays whole).
 *
 * The weights are read when the call starts; do not call it while a fit steps the model.
 * Random streams (SeededDropout's) are not weights: a loaded model's dropout starts from its seed.
 */
export async function exportModel(model: tf.LayersModel, dir: string): Promise<ExportedModel> {
  if (!(model instanceof tf.LayersModel)) {
    throw new ConfigError('exportModel: the model must be a tf.LayersModel (e.g. learn.model, models.mlp())');
  }
  checkModelDir(dir);
  let written: ExportedModel | null = null;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      written = writeArtifacts(dir, artifacts);
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  return written!;
}

function writeArtifacts(dir: string, artifacts: tf.io.ModelArtifacts): ExportedModel {
  if (artifacts.modelTopology === undefined || artifacts.modelTopology instanceof ArrayBuffer) {
    throw new CheckpointError('exportModel: tfjs gave no JSON topology for this model; only a tf.LayersModel can be exported');
  }
  const data = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
  const bytes = new Uint8Array(data);
  const weightsName = `weights.${sha256(bytes).slice(0, 16)}.bin`;
  // The fields and layout of tfjs's own model.json (tfjs-core io_utils getModelJSONForModelArtifacts).
  const modelJson: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology,
    format: artifacts.format!,
    generatedBy: artifacts.generatedBy!,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: [weightsName], weights: artifacts.weightSpecs ?? [] }],
    ...(artifacts.signature != null ? { signature: artifacts.signature } : {}),
    ...(artifacts.userDefinedMetadata != null ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
    ...(artifacts.modelInitializer != null ? { modelInitializer: artifacts.modelInitializer } : {}),
    ...(artifacts.initializerSignature != null ? { initializerSignature: artifacts.initializerSignature } : {}),
    ...(artifacts.trainingConfig != null ? { trainingConfig: artifacts.trainingConfig } : {}),
  };
  const weightsPath = join(dir, weightsName);
  const jsonPath = join(dir, MODEL_JSON);
  const hadWeights = fs.existsSync(weightsPath);
  try {
    writeFileAtomic(weightsPath, bytes);
    writeFileAtomic(jsonPath, JSON.stringify(modelJson));
  } catch (error) {
    // The old model.json still names the old weights; a new weights file it does not name is clutter.
    if (!hadWeights) {
      try {
        fs.rmSync(weightsPath, { force: true });
      } catch {
        // already failing; the write error is the one to report
      }
    }
    throw new CheckpointError(
      `exportModel: could not write the model to ${dir} (${reason(error)}); the previous export there, if any, is unchanged; ` +
        'check the disk space and permissions and export again',
      { cause: error },
    );
  }
  // Best effort: a leftover only wastes space, and the export itself has succeeded.
  try {
    for (const name of fs.readdirSync(dir)) {
      if (name !== weightsName && WEIGHTS_FILE.test(name)) fs.rmSync(join(dir, name), { force: true });
    }
  } catch {
    // the next export tries again
  }
  return { dir, modelJson: jsonPath, weights: weightsPath, weightBytes: bytes.byteLength };
}

/**
 * A tfjs IOHandler that reads `<dir>/model.json` and the weights files its manifest names,
 * with `node:fs`: `await tf.loadLayersModel(loadModelFiles(dir))`. Weights paths must stay
 * inside `dir`; a weights file named `weights.<hash>.bin` must match its hash. Problems are
 * CheckpointErrors naming the file.
 */
export function loadModelFiles(dir: string): tf.io.IOHandler {
  if (typeof dir !== 'string' || dir === '') {
    throw new ConfigError(`loadModelFiles: the model directory must be a non-empty path string, got ${JSON.stringify(dir)}`);
  }
  return {
    load: async () => {
      const jsonPath = join(dir, MODEL_JSON);
      let modelJson: tf.io.ModelJSON;
      try {
        modelJson = JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as tf.io.ModelJSON;
      } catch (error) {
        throw new CheckpointError(
          `loadModelFiles: cannot read ${jsonPath} (${reason(error)}); give the directory exportModel wrote`,
          { cause: error },
        );
      }
      if (typeof modelJson !== 'object' || modelJson === null || modelJson.modelTopology == null) {
        throw new CheckpointError(`loadModelFiles: ${jsonPath} has no modelTopology; it is not a tfjs layers model.json`);
      }
      return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        const root = resolve(dir);
        const specs: tf.io.WeightsManifestEntry[] = [];
        const chunks: Uint8Array[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const path of group.paths) chunks.push(readWeightsFile(root, path, jsonPath));
        }
        const all = Buffer.concat(chunks);
        return [specs, all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)];
      });
    },
  };
}

function readWeightsFile(root: string, path: string, jsonPath: string): Uint8Array {
  const full = resolve(root, path);
  if (full !== root && !full.startsWith(root + sep)) {
    throw new CheckpointError(`loadModelFiles: ${jsonPath} names the weights file "${path}", outside ${root}; refusing to read it`);
  }
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(full);
  } catch (error) {
    throw new CheckpointError(`loadModelFiles: cannot read the weights file ${full} that ${jsonPath} names (${reason(error)})`, {
      cause: error,
    });
  }
  const named = WEIGHTS_FILE.exec(path)?.[1];
  if (named !== undefined && sha256(bytes).slice(0, 16) !== named) {
    throw new CheckpointError(`loadModelFiles: the weights file ${full} does not match the hash in its name: it is damaged; export the model again`);
  }
  return bytes;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
