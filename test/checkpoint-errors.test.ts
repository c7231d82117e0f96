/**
 * What a checkpoint refuses, and what survives (docs/checkpoints.md, "Errors"): damaged files
 * (corrupted, truncated, deleted), a write killed half-way (simulated at each step of the
 * writer), a newer format version, and a resume into another run (architecture, optimizer,
 * callbacks, data, batch size, seeds, recipe, length, lr/wd given). Each refusal is a typed
 * CheckpointError (problem, file) or ConfigError whose message names the file and what
 * differs; after it the learner's weights, optimizer and callbacks are exactly as before, no
 * tensor is left behind, and the previous checkpoint still loads and resumes bit-identically.
 */
import * as tf from '@tensorflow/tfjs';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../callbacks/checkpoint.js';
import { MixUp } from '../callbacks/mixUp.js';
import type { Callback } from '../src/loop/callback.js';
import { listCheckpoints, readCheckpoint } from '../src/checkpoint/index.js';
import { DataLoader } from '../src/data/dataLoader.js';
import { CheckpointError, ConfigError, StageError } from '../src/errors.js';
import { Learner, type LearnerOptions } from '../src/learner.js';
import { weightsSha256 } from '../src/weightsHash.js';

const EPOCHS = 2;

let root: string;
let reference: string;
let finalSha: string;

beforeAll(async () => {
  await tf.setBackend('cpu');
  root = mkdtempSync(join(tmpdir(), 'trainchart-ckpt-errors-'));
  reference = join(root, 'reference');
  const { learn } = build({ dir: reference });
  await learn.fit(EPOCHS);
  finalSha = weightsSha256(learn.model);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Variant {
  dir: string;
  units?: number;
  optimizer?: LearnerOptions['optimizer'];
  callbacks?: (checkpoint: Checkpoint) => Callback[];
  nTrain?: number;
  changeValue?: boolean;
  batchSize?: number;
  loaderSeed?: number;
  seed?: number;
  checkpoint?: Partial<ConstructorParameters<typeof Checkpoint>[0]>;
}

function build(v: Variant) {
  const n = v.nTrain ?? 24;
  const x = new Float32Array(n * 4);
  const y = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 4; j++) x[i * 4 + j] = Math.cos(i * 0.9 + j);
    y[i * 3 + (i % 3)] = 1;
  }
  if (v.changeValue) x[5] += 1e-3;
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [4], units: v.units ?? 6, activation: 'relu', name: 'h', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.dense({ units: 3, activation: 'softmax', name: 'o', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  const checkpoint = new Checkpoint({ dir: v.dir, everyBatches: 1, keep: Infinity, ...v.checkpoint });
  const learn = new Learner({
    model,
    data: { train: DataLoader.fromArrays(x, y, { batchSize: v.batchSize ?? 6, xShape: [4], yShape: [3], shuffle: true, seed: v.loaderSeed ?? 4 }) },
    loss: 'categoricalCrossentropy',
    optimizer: v.optimizer ?? 'adam',
    callbacks: v.callbacks ? v.callbacks(checkpoint) : [new MixUp(), checkpoint],
    seed: v.seed ?? 3,
  });
  return { learn, checkpoint };
}

/** A copy of the reference run directory, to damage. */
function copy(name: string): string {
  const dir = join(root, name);
  cpSync(reference, dir, { recursive: true });
  return dir;
}

const latestOf = (dir: string) => listCheckpoints(dir).at(-1)!.path;
const previousOf = (dir: string) => listCheckpoints(dir).at(-2)!.path;

/** Everything a refused resume must leave as it was. */
function stateOf(learn: Learner) {
  const opt = learn.optimizer.getState() as unknown as { slots?: unknown[] };
  return { weights: weightsSha256(learn.model), optimizer: JSON.stringify(opt, (_k, v) => (ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v)), callbacks: learn.callbackStates(), lr: learn.lr };
}

/** Resuming from `from` is refused with `problem`, naming `file` and matching `message`; nothing changes, nothing leaks. */
async function refused(learn: Learner, from: string, problem: string, file: RegExp, message: RegExp, fit = (l: Learner) => l.fit(EPOCHS, { resumeFrom: from })) {
  // One fit first, so the optimizer has slots and the callbacks have state worth protecting.
  const tensors = tf.memory().numTensors;
  const before = stateOf(learn);
  const error = await fit(learn).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(CheckpointError);
  const e = error as CheckpointError;
  expect(e.code).toBe('CHECKPOINT');
  expect(e.problem).toBe(problem);
  expect(e.file).toMatch(file);
  expect(e.message).toMatch(message);
  expect(e.message).toContain(e.file!);
  expect(stateOf(learn)).toEqual(before);
  expect(tf.memory().numTensors).toBe(tensors);
  return e;
}

/** The previous checkpoint still resumes, and ends bit-identically. */
async function previousStillLoads(dir: string, path = previousOf(dir)) {
  const { learn } = build({ dir: join(root, `again-${Math.random().toString(36).slice(2)}`) });
  const result = await learn.fit(EPOCHS, { resumeFrom: path });
  expect(result.status).toBe('completed');
  expect(result.resumedFrom!.path).toBe(path);
  expect(weightsSha256(learn.model)).toBe(finalSha);
}

describe('damaged checkpoints are refused before anything is loaded; the previous one still loads', () => {
  it('a corrupted binary file (one byte flipped): problem corrupt, its sha256 named', async () => {
    const dir = copy('corrupt');
    const file = join(latestOf(dir), 'weights.bin');
    const bytes = readFileSync(file);
    bytes[3] ^= 0x40;
    writeFileSync(file, bytes);
    const { learn } = build({ dir: join(root, 'x1') });
    await refused(learn, dir, 'corrupt', /weights\.bin$/, /is corrupted: its sha256 is [0-9a-f]{64}, manifest\.json records [0-9a-f]{64}/);
    await previousStillLoads(dir);
  });

  it('a truncated file: problem truncated, with both lengths', async () => {
    const dir = copy('truncated');
    const file = join(latestOf(dir), 'optimizer.bin');
    const size = readFileSync(file).byteLength;
    truncateSync(file, size - 10);
    const { learn } = build({ dir: join(root, 'x2') });
    await refused(learn, latestOf(dir), 'truncated', /optimizer\.bin$/, new RegExp(`is truncated: it has ${size - 10} bytes, manifest\\.json records ${size}`));
    await previousStillLoads(dir);
  });

  it('a deleted file: problem missing', async () => {
    const dir = copy('deleted');
    unlinkSync(join(latestOf(dir), 'weights.bin'));
    const { learn } = build({ dir: join(root, 'x3') });
    await refused(learn, dir, 'missing', /weights\.bin$/, /weights\.bin is missing \(manifest\.json lists it/);
    await previousStillLoads(dir);
  });

  it('a deleted manifest: problem missing, the checkpoint is not complete', async () => {
    const dir = copy('no-manifest');
    unlinkSync(join(latestOf(dir), 'manifest.json'));
    const { learn } = build({ dir: join(root, 'x4') });
    const latest = join(dir, readFileSync(join(dir, 'latest'), 'utf8').trim());
    await refused(learn, latest, 'missing', /manifest\.json$/, /manifest\.json is missing: .* is not a complete checkpoint/);
    // Through the run dir, `latest` still names it: refused too, never silently replaced by an older one.
    await refused(learn, dir, 'missing', /manifest\.json$/, /is missing/);
    await previousStillLoads(dir, listCheckpoints(dir).at(-1)!.path);
  });

  it('an edited manifest (still valid JSON) fails its own checksum; a truncated one is not JSON', async () => {
    const dir = copy('manifest');
    const latest = latestOf(dir);
    const file = join(latest, 'manifest.json');
    const text = readFileSync(file, 'utf8');
    const edited = text.replace('"lr": ', '"lr": 1').replace(/"seed": (\d+)/, '"seed": 1$1');
    writeFileSync(file, edited);
    const { learn } = build({ dir: join(root, 'x5') });
    await refused(learn, latest, 'corrupt', /manifest\.json$/, /is damaged: its content's sha256 is [0-9a-f]{64}, but it records/);
    writeFileSync(file, text.slice(0, text.length / 2));
    await refused(learn, latest, 'corrupt', /manifest\.json$/, /is not valid JSON \(truncated or damaged\)/);
    // listCheckpoints leaves out what has no readable manifest; the run dir's `latest` still names it.
    expect(listCheckpoints(dir).map((c) => c.path)).not.toContain(latest);
    await refused(learn, dir, 'corrupt', /manifest\.json$/, /is not valid JSON/);
    await previousStillLoads(dir);
  });

  it('a manifest of a newer format version is refused with an upgrade hint, even with a valid checksum', async () => {
    const dir = copy('newer');
    const file = join(latestOf(dir), 'manifest.json');
    const { manifestSha256: _old, ...body } = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    body.formatVersion = 2;
    const sha = createHash('sha256').update(JSON.stringify(body)).digest('hex');
    writeFileSync(file, JSON.stringify({ ...body, manifestSha256: sha }));
    const { learn } = build({ dir: join(root, 'x6') });
    await refused(learn, dir, 'version', /manifest\.json$/, /is checkpoint format version 2 .*this trainchart reads format version 1 and older: upgrade trainchart/);
    await previousStillLoads(dir);
  });

  it('a missing directory, and a run directory without checkpoints', async () => {
    const { learn } = build({ dir: join(root, 'x7') });
    await refused(learn, join(root, 'nope'), 'missing', /nope$/, /does not exist/);
    const empty = join(root, 'empty');
    cpSync(reference, empty, { recursive: true, filter: (src) => src === reference });
    await refused(learn, empty, 'missing', /empty$/, /holds no checkpoint/);
  });
});

describe('a write killed half-way (simulated at each step) leaves the previous checkpoint whole and loadable', () => {
  for (const step of ['files', 'manifest', 'syncTemp', 'rename', 'latest', 'prune'] as const) {
    it(`killed at "${step}" of the 5th write`, async () => {
      const dir = join(root, `killed-${step}`);
      let writes = 0;
      const crash = new Error(`simulated crash at ${step}`);
      const { learn } = build({
        dir,
        checkpoint: {
          keep: 2,
          writeOptions: {
            beforeStep: (s, file) => {
              if (s === 'files' && file === undefined) writes++;
              if (writes === 5 && s === step && (step !== 'files' || file === 'optimizer.bin')) throw crash;
            },
          },
        },
      });
      const error = await learn.fit(EPOCHS).catch((e: unknown) => e);
      // The crash ends the run where the checkpoint was being written (a real kill ends the process).
      expect(error).toBeInstanceOf(StageError);
      expect((error as StageError).callback).toBe('Checkpoint');
      expect((error as Error).cause).toBe(crash);
      const latest = readFileSync(join(dir, 'latest'), 'utf8').trim();
      const names = listCheckpoints(dir).map((c) => basename(c.path));
      // 4 train batches per epoch: the 4th write is after batch 3 of epoch 0, the 5th after its epochEnd.
      const fourth = 'ckpt-000000004-e0-b4';
      const fifth = 'ckpt-000000004-e1-b0';
      const beforeRename = ['files', 'manifest', 'syncTemp', 'rename'].includes(step);
      // Before the rename the 5th checkpoint does not exist (only a hidden temp dir); after it, it is whole.
      expect(names).toEqual(beforeRename ? ['ckpt-000000003-e0-b3', fourth] : ['ckpt-000000003-e0-b3', fourth, fifth]);
      if (beforeRename) expect(readdirSync(dir).some((f) => f.startsWith('.tmp-'))).toBe(true);
      // `latest` names the 4th until the 5th is complete and named; every listed checkpoint verifies.
      expect(latest).toBe(step === 'prune' ? fifth : fourth);
      for (const name of names) expect(() => readCheckpoint(join(dir, name))).not.toThrow();
      // Resuming the run dir continues from `latest`, bit-identically.
      const fresh = build({ dir });
      const result = await fresh.learn.fit(EPOCHS, { resumeFrom: dir });
      expect(basename(result.resumedFrom!.path)).toBe(latest);
      expect(weightsSha256(fresh.learn.model)).toBe(finalSha);
      // The next write swept what the cut one left.
      expect(readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]);
    });
  }
});

describe('a checkpoint of another run is refused, naming what differs; the learner is left untouched', () => {
  const cases: Array<[string, Omit<Variant, 'dir'>, RegExp]> = [
    ['another architecture', { units: 7 }, /another architecture: layer 0 is Dense\(units 6, activation "relu".*\) \(h\) in the checkpoint, Dense\(units 7/],
    ['another optimizer', { optimizer: 'sgd' }, /the checkpoint's optimizer is 'adam', this learner's is 'sgd'/],
    ['other callbacks', { callbacks: (c) => [c] }, /other callbacks: the checkpoint's are \[Recorder, MixUp, Checkpoint\], this fit's are \[Recorder, Checkpoint\]/],
    ['fewer samples', { nTrain: 18 }, /train data: sample count 24 in the checkpoint, 18 here/],
    ['a changed sample', { changeValue: true }, /train data: same size and shapes but other values \(content fingerprint/],
    ['another batch size', { batchSize: 4 }, /train data: batchSize 6 in the checkpoint, 4 here/],
    ['another data-order seed', { loaderSeed: 5 }, /train data: seed 4 in the checkpoint, 5 here/],
    ["another learner seed", { seed: 8 }, /the learner's seed is 8, the checkpoint's 3/],
  ];
  for (const [what, variant, message] of cases) {
    it(what, async () => {
      const { learn } = build({ dir: join(root, `other-${what.replace(/\W+/g, '-')}`), ...variant });
      await learn.fit(1); // state worth protecting
      await refused(learn, reference, 'mismatch', /manifest\.json$/, message);
      // and the learner still trains
      expect((await learn.fit(1)).status).toBe('completed');
    });
  }

  it('the recipe and the run length: fit vs fitOneCycle, n past the checkpoint', async () => {
    const { learn } = build({ dir: join(root, 'recipe') });
    await refused(learn, reference, 'mismatch', /manifest\.json$/, /written by learn\.fit, and this is learn\.fitOneCycle/, (l) =>
      l.fitOneCycle(EPOCHS, { resumeFrom: reference }),
    );
    const mid = listCheckpoints(reference).find((c) => c.epoch === 1 && c.batchIndex > 0)!.path;
    await refused(learn, mid, 'mismatch', /manifest\.json$/, /in the middle of epoch 1, beyond a run of 1 epochs/, (l) => l.fit(1, { resumeFrom: mid }));
  });

  it('lr or wd with resumeFrom is a ConfigError: the hyper-parameters come from the checkpoint', async () => {
    const { learn } = build({ dir: join(root, 'lr') });
    await expect(learn.fit(EPOCHS, { resumeFrom: reference, lr: 0.1 })).rejects.toThrow(ConfigError);
    await expect(learn.fit(EPOCHS, { resumeFrom: reference, wd: 0.1 })).rejects.toThrow(/wd cannot be given with resumeFrom: the hyper-parameters come back from the checkpoint/);
    await expect(learn.fitOneCycle(EPOCHS, { resumeFrom: reference, wd: 0 })).rejects.toThrow(/wd cannot be given with resumeFrom/);
    await expect(learn.fit(EPOCHS, { resumeFrom: reference, startEpoch: 1 })).rejects.toThrow(/startEpoch cannot be given with resumeFrom/);
    await expect(learn.fit(EPOCHS, { resumeFrom: 42 as never })).rejects.toThrow(/resumeFrom must be a directory path/);
    expect(existsSync(join(root, 'lr'))).toBe(false); // nothing ran, nothing was written
  });
});
