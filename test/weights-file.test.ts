import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CheckpointError } from '../src/errors.js';
import { tempPathFor, writeFileAtomic } from '../src/io/atomicWrite.js';
import { encodeWeights, loadWeights, readWeights, saveWeights } from '../src/io/weightsFile.js';
import { modelBytes, sameBytes } from './support/scripted.js';
import { tinyModel } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const dirs: string[] = [];
function tempDir() {
  const d = mkdtempSync(join(tmpdir(), 'trainchart-weights-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('weights file (saveWeights / loadWeights)', () => {
  it('round-trips every weight bit for bit into another instance of the architecture', () => {
    const a = tinyModel(7);
    const b = tinyModel(99);
    expect(sameBytes(modelBytes(a), modelBytes(b))).toBe(false);
    const path = join(tempDir(), 'w.weights');
    saveWeights(a, path);
    const before = tf.memory().numTensors;
    loadWeights(b, path);
    expect(tf.memory().numTensors).toBe(before);
    expect(sameBytes(modelBytes(b), modelBytes(a))).toBe(true);
    a.dispose();
    b.dispose();
  });

  it('the file is self-describing: magic, sha256 of the rest, header with names, shapes, dtypes, offsets', () => {
    const m = tinyModel();
    const bytes = Buffer.from(encodeWeights(m));
    expect(bytes.toString('ascii', 0, 8)).toBe('TCWEIGHT');
    expect(createHash('sha256').update(bytes.subarray(40)).digest().equals(bytes.subarray(8, 40))).toBe(true);
    const h = bytes.readUInt32LE(40);
    const header = JSON.parse(bytes.toString('utf8', 44, 44 + h));
    expect(header.weights.map((w: { shape: number[] }) => w.shape)).toEqual(m.weights.map((w) => w.shape));
    // The data section is each weight's float32 values, in model order.
    const kernel0 = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 44 + h, bytes.byteOffset + 44 + h + 4 * 20));
    expect(Array.from(kernel0)).toEqual(Array.from(m.weights[0]!.read().dataSync()));
    m.dispose();
  });

  it('a crash mid-write (leftover temp file, rename never happened) leaves the previous good file loadable', () => {
    const dir = tempDir();
    const path = join(dir, 'best.weights');
    const good = tinyModel(1);
    const newer = tinyModel(2);
    saveWeights(good, path);
    // What a process killed between write and rename leaves behind: a partial temp file.
    const partial = encodeWeights(newer).subarray(0, 300);
    writeFileSync(tempPathFor(path), partial);
    expect(readdirSync(dir).length).toBe(2);
    const target = tinyModel(3);
    loadWeights(target, path);
    expect(sameBytes(modelBytes(target), modelBytes(good))).toBe(true);
    for (const m of [good, newer, target]) m.dispose();
  });

  it('writeFileAtomic: temp file in the same dir, fsync file, rename, fsync dir — in that order', () => {
    const dir = tempDir();
    const path = join(dir, 'f.bin');
    const calls: string[] = [];
    const spy = <K extends 'openSync' | 'fsyncSync' | 'renameSync' | 'closeSync'>(name: K) => {
      const original = fs[name] as (...args: unknown[]) => unknown;
      vi.spyOn(fs, name).mockImplementation(((...args: unknown[]) => {
        calls.push(name === 'openSync' || name === 'renameSync' ? `${name} ${String(args[0]).replace(dir, '<dir>')}` : name);
        return original(...args);
      }) as never);
    };
    for (const name of ['openSync', 'fsyncSync', 'renameSync', 'closeSync'] as const) spy(name);
    writeFileAtomic(path, 'hello');
    vi.restoreAllMocks();
    expect(calls[0]).toMatch(/^openSync <dir>\/\.f\.bin\.\d+\.\d+\.tmp$/);
    expect(calls.slice(1)).toEqual(['fsyncSync', 'closeSync', expect.stringMatching(/^renameSync <dir>\/\.f\.bin\..*\.tmp$/), 'openSync <dir>', 'fsyncSync', 'closeSync']);
    expect(readFileSync(path, 'utf8')).toBe('hello');
  });

  it('a write that fails before the rename keeps the previous file and removes its temp file', () => {
    const dir = tempDir();
    const path = join(dir, 'best.weights');
    const good = tinyModel(1);
    const newer = tinyModel(2);
    saveWeights(good, path);
    vi.spyOn(fs, 'renameSync').mockImplementation(() => {
      throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    });
    expect(() => saveWeights(newer, path)).toThrow(CheckpointError);
    expect(() => saveWeights(newer, path)).toThrow(/could not write weights file .*best\.weights: ENOSPC.*disk has space/);
    vi.restoreAllMocks();
    expect(readdirSync(dir)).toEqual(['best.weights']);
    const target = tinyModel(3);
    loadWeights(target, path);
    expect(sameBytes(modelBytes(target), modelBytes(good))).toBe(true);
    for (const m of [good, newer, target]) m.dispose();
  });

  it('a truncated file, at any length, is a CheckpointError naming the file and what to do', () => {
    const dir = tempDir();
    const m = tinyModel();
    const bytes = encodeWeights(m);
    const before = modelBytes(m);
    for (const length of [0, 5, 8, 30, 43, 60, Math.floor(bytes.length / 2), bytes.length - 1]) {
      const path = join(dir, `cut${length}.weights`);
      writeFileSync(path, bytes.subarray(0, length));
      let error: unknown;
      try {
        loadWeights(m, path);
      } catch (e) {
        error = e;
      }
      expect(error, `length ${length}`).toBeInstanceOf(CheckpointError);
      const message = (error as Error).message;
      expect(message).toContain(path);
      expect(message).toMatch(/truncated|corrupted/);
      expect(message).toMatch(/save the weights again, or load an earlier copy/);
    }
    expect(sameBytes(modelBytes(m), before)).toBe(true);
    m.dispose();
  });

  it('a flipped bit in the data or the header fails the sha256 check', () => {
    const dir = tempDir();
    const m = tinyModel();
    const bytes = Buffer.from(encodeWeights(m));
    for (const at of [bytes.length - 3, 60]) {
      const bad = Buffer.from(bytes);
      bad[at]! ^= 0x10;
      const path = join(dir, `flip${at}.weights`);
      writeFileSync(path, bad);
      expect(() => readWeights(path)).toThrow(CheckpointError);
      expect(() => readWeights(path)).toThrow(/corrupted/);
    }
    m.dispose();
  });

  it('another architecture, another file type, or no file: CheckpointError saying what to do', () => {
    const dir = tempDir();
    const path = join(dir, 'w.weights');
    const m = tinyModel();
    saveWeights(m, path);
    const other = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3 })] });
    expect(() => loadWeights(other, path)).toThrow(/holds 4 weights but the model has 2.*build the same model/);
    const wider = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [4], units: 6 }), tf.layers.dense({ units: 3 })],
    });
    expect(() => loadWeights(wider, path)).toThrow(/weight #0 .* is float32\[4,5\] but the model's .* is float32\[4,6\]/);
    writeFileSync(join(dir, 'x.json'), '{"not":"weights"}');
    expect(() => loadWeights(m, join(dir, 'x.json'))).toThrow(/is not a trainchart weights file/);
    expect(() => loadWeights(m, join(dir, 'missing.weights'))).toThrow(/could not read weights file .*missing\.weights.*check the path/);
    for (const x of [m, other, wider]) x.dispose();
  });
});
