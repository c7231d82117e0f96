/**
 * exportModel / loadModelFiles: the model in tfjs's own format (model.json + weights), read
 * back by tf.loadLayersModel — once through tfjs's in-memory handler from the files as this
 * test reads them (independent of loadModelFiles), once through loadModelFiles.
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DataLoader } from '../src/data/dataLoader.js';
import { CheckpointError, ConfigError } from '../src/errors.js';
import { exportModel, loadModelFiles } from '../src/io/tfjsModelFiles.js';
import { Learner } from '../src/learner.js';
import { mlp } from '../src/models/presets.js';
import { SeededDropout } from '../src/models/seededDropout.js';

let root: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  root = fs.mkdtempSync(join(tmpdir(), 'trainchart-export-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const bytesOf = (m: tf.LayersModel) => m.getWeights().map((w) => Buffer.from((w.dataSync() as Float32Array).slice().buffer));

/** A trained MLP with SeededDropout layers (the custom class must survive the round trip). */
async function trainedLearner() {
  const n = 32;
  const x = new Float32Array(n * 8).map((_, i) => Math.sin(i * 0.37));
  const y = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) y[i * 3 + (i % 3)] = 1;
  const train = DataLoader.fromArrays(x, y, { batchSize: 8, xShape: [8], yShape: [3], shuffle: true, seed: 1 });
  const learn = new Learner({
    model: mlp({ seed: 4, inputShape: [8], hidden: [6, 5], classes: 3, dropout: 0.3 }),
    data: { train },
    loss: 'categoricalCrossentropy',
  });
  await learn.fit(1, { lr: 0.01 });
  return { learn, x: tf.tensor2d(x, [n, 8]) };
}

/** tf.loadLayersModel from the files as read here, through tfjs's own in-memory handler. */
async function loadIndependently(dir: string) {
  const json = JSON.parse(fs.readFileSync(join(dir, 'model.json'), 'utf8'));
  const specs = json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights);
  const data = Buffer.concat(json.weightsManifest.flatMap((g: { paths: string[] }) => g.paths.map((p) => fs.readFileSync(join(dir, p)))));
  const weightData = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData }));
}

describe('exportModel', () => {
  it('writes model.json + one weights file that tf.loadLayersModel reads back: identical predictions and weight bytes, SeededDropout included', async () => {
    const { learn, x } = await trainedLearner();
    const dir = join(root, 'a', 'model'); // parents are created
    const before = tf.memory().numTensors;
    const files = await learn.exportModel(dir);
    expect(tf.memory().numTensors).toBe(before);
    expect(fs.readdirSync(dir).sort()).toEqual(['model.json', files.weights.split('/').at(-1)!].sort());
    expect(files.weights).toMatch(/weights\.[0-9a-f]{16}\.bin$/);
    const json = JSON.parse(fs.readFileSync(files.modelJson, 'utf8'));
    expect(json.format).toBe('layers-model');
    expect(json.generatedBy).toMatch(/^TensorFlow\.js tfjs-layers/);
    // every weight, 4 bytes each
    const values = learn.model.getWeights().reduce((a, w) => a + w.size, 0);
    expect(fs.statSync(files.weights).size).toBe(values * 4);
    expect(files.weightBytes).toBe(values * 4);

    // SeededDropout is registered with tfjs's serialization, so the topology can name it.
    expect(tf.serialization.SerializationMap.getMap().classNameMap.SeededDropout).toBeDefined();
    const want = (learn.model.predict(x) as tf.Tensor).dataSync().slice();
    for (const loaded of [await loadIndependently(dir), await tf.loadLayersModel(loadModelFiles(dir))]) {
      expect(bytesOf(loaded)).toEqual(bytesOf(learn.model));
      const got = loaded.predict(x) as tf.Tensor;
      expect(Buffer.from(got.dataSync().buffer)).toEqual(Buffer.from(want.buffer));
      got.dispose();
      const dropouts = loaded.layers.filter((l) => l instanceof SeededDropout) as SeededDropout[];
      expect(dropouts.map((d) => [d.name, d.rate, d.seed])).toEqual(
        (learn.model.layers.filter((l) => l instanceof SeededDropout) as SeededDropout[]).map((d) => [d.name, d.rate, d.seed]),
      );
      expect(dropouts).toHaveLength(2);
      loaded.dispose();
    }
    x.dispose();
    learn.dispose();
  });

  it('a second export replaces the first whole: one weights file, the new weights, no temp files', async () => {
    const { learn, x } = await trainedLearner();
    const dir = join(root, 'again');
    const first = await exportModel(learn.model, dir);
    await learn.fit(1, { lr: 0.05 });
    const second = await exportModel(learn.model, dir);
    expect(second.weights).not.toBe(first.weights);
    expect(fs.readdirSync(dir).sort()).toEqual(['model.json', second.weights.split('/').at(-1)!].sort());
    const loaded = await tf.loadLayersModel(loadModelFiles(dir));
    expect(bytesOf(loaded)).toEqual(bytesOf(learn.model));
    loaded.dispose();
    x.dispose();
    learn.dispose();
  });

  it('a path that cannot hold it is a ConfigError and nothing is written; a failing write is a CheckpointError leaving no weights file', async () => {
    const model = mlp({ seed: 1, inputShape: [3], hidden: [2], classes: 2 });
    const file = join(root, 'a-file');
    fs.writeFileSync(file, 'not a directory');
    await expect(exportModel(model, file)).rejects.toThrow(ConfigError);
    await expect(exportModel(model, file)).rejects.toThrow(/exists and is not a directory/);
    await expect(exportModel(model, join(file, 'model'))).rejects.toThrow(/cannot write a model to .*a-file\/model/);
    await expect(exportModel(model, '')).rejects.toThrow(/non-empty path/);
    await expect(exportModel({} as never, join(root, 'x'))).rejects.toThrow(/must be a tf.LayersModel/);
    expect(fs.readFileSync(file, 'utf8')).toBe('not a directory');
    expect(fs.existsSync(join(root, 'x'))).toBe(false);

    // A directory where model.json goes is refused before anything is written.
    const blocked = join(root, 'blocked');
    fs.mkdirSync(join(blocked, 'model.json'), { recursive: true });
    await expect(exportModel(model, blocked)).rejects.toThrow(ConfigError);
    await expect(exportModel(model, blocked)).rejects.toThrow(/model\.json is a directory/);
    expect(fs.readdirSync(blocked)).toEqual(['model.json']);

    // model.json fails to land after the weights did: the weights written first are taken back.
    const failing = join(root, 'failing');
    const rename = fs.renameSync;
    const spy = vi.spyOn(fs, 'renameSync').mockImplementation((from, to) => {
      if (String(to).endsWith('model.json')) throw Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' });
      return rename(from, to);
    });
    try {
      const error = await exportModel(model, failing).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CheckpointError);
      expect((error as Error).message).toMatch(/could not write the model to .*failing.*previous export there, if any, is unchanged/);
    } finally {
      spy.mockRestore();
    }
    expect(fs.readdirSync(failing)).toEqual([]);
    model.dispose();
  });
});

describe('loadModelFiles', () => {
  it('refuses a missing model.json, a damaged weights file and a weights path outside the directory, with CheckpointErrors', async () => {
    const model = mlp({ seed: 2, inputShape: [3], hidden: [2], classes: 2 });
    const dir = join(root, 'damaged');
    const { weights } = await exportModel(model, dir);
    await expect(tf.loadLayersModel(loadModelFiles(join(root, 'nowhere')))).rejects.toThrow(/cannot read .*nowhere\/model.json/);
    const bytes = fs.readFileSync(weights);
    bytes[3] ^= 0xff;
    fs.writeFileSync(weights, bytes);
    await expect(tf.loadLayersModel(loadModelFiles(dir))).rejects.toThrow(CheckpointError);
    await expect(tf.loadLayersModel(loadModelFiles(dir))).rejects.toThrow(/does not match the hash in its name: it is damaged/);
    const json = JSON.parse(fs.readFileSync(join(dir, 'model.json'), 'utf8'));
    json.weightsManifest[0].paths = ['../../etc/passwd'];
    fs.writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
    await expect(tf.loadLayersModel(loadModelFiles(dir))).rejects.toThrow(/names the weights file "..\/..\/etc\/passwd", outside/);
    fs.writeFileSync(join(dir, 'model.json'), '{"format": "layers-model"}');
    await expect(tf.loadLayersModel(loadModelFiles(dir))).rejects.toThrow(/has no modelTopology/);
    expect(() => loadModelFiles('' as never)).toThrow(ConfigError);
    model.dispose();
  });
});
