/**
 * A model's weights in one self-checking file.
 *
 * Layout (all integers little-endian):
 *
 *   offset 0   8 bytes   magic "TCWEIGHT"
 *   offset 8   32 bytes  sha256 of every byte from offset 40 to the end of the file
 *   offset 40  4 bytes   uint32 H, the length of the header
 *   offset 44  H bytes   header, UTF-8 JSON: { format, version, dataLength,
 *                          weights: [{ name, shape, dtype, offset, length }] }
 *   44 + H     data      each weight's raw values (float32 or int32, little-endian),
 *                          at `offset` (bytes from the start of the data), `length` bytes long
 *
 * The checksum covers the header and the data, so a torn or bit-rotted file is refused with
 * a CheckpointError instead of loading garbage weights. Weights are stored in the model's
 * weight order (`model.weights`, trainable and not) and loaded back by position, checking
 * count and shapes: tfjs variable names get numeric suffixes that differ between two
 * instances of the same architecture, so names are kept for messages only.
 *
 * Writes go through `writeFileAtomic`, so a crash mid-write leaves the previous file intact.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { endianness } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { CheckpointError } from '../errors.js';
import { writeFileAtomic } from './atomicWrite.js';

export const WEIGHTS_MAGIC = 'TCWEIGHT';
export const WEIGHTS_FORMAT = 'trainchart-weights';
export const WEIGHTS_VERSION = 1;

const MAGIC_BYTES = 8;
const HASH_BYTES = 32;
const HASHED_FROM = MAGIC_BYTES + HASH_BYTES;
const PREFIX_BYTES = HASHED_FROM + 4;
const BIG_ENDIAN = endianness() === 'BE';

export interface WeightEntry {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  /** Byte offset from the start of the data section. */
  offset: number;
  /** Byte length. */
  length: number;
}

export interface WeightsHeader {
  format: typeof WEIGHTS_FORMAT;
  version: number;
  dataLength: number;
  weights: WeightEntry[];
}

/** The weights as plain typed arrays, in model order. */
export interface WeightsSnapshot {
  header: WeightsHeader;
  values: Array<Float32Array | Int32Array>;
}

/** Serializes the model's weights (every weight, in `model.weights` order) to the format above. */
export function encodeWeights(model: tf.LayersModel): Uint8Array {
  const weights: WeightEntry[] = [];
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const w of model.weights) {
    const t = w.read();
    if (t.dtype !== 'float32' && t.dtype !== 'int32') {
      throw new CheckpointError(`weight ${w.originalName} has dtype ${t.dtype}; only float32 and int32 weights can be saved`);
    }
    const values = t.dataSync() as Float32Array | Int32Array;
    // A copy: swapping bytes in place would corrupt the tensor's own backing store.
    const bytes = Buffer.from(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
    if (BIG_ENDIAN) bytes.swap32();
    weights.push({ name: w.originalName, shape: [...t.shape], dtype: t.dtype, offset, length: bytes.byteLength });
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  const header: WeightsHeader = { format: WEIGHTS_FORMAT, version: WEIGHTS_VERSION, dataLength: offset, weights };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const headerLength = Buffer.alloc(4);
  headerLength.writeUInt32LE(headerBytes.byteLength, 0);
  const hashed = Buffer.concat([headerLength, headerBytes, ...chunks]);
  const sha = createHash('sha256').update(hashed).digest();
  return Buffer.concat([Buffer.from(WEIGHTS_MAGIC, 'ascii'), sha, hashed]);
}

/** Parses and verifies a weights file's bytes; `path` only names the file in errors. */
export function decodeWeights(bytes: Uint8Array, path: string): WeightsSnapshot {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const retry = 'save the weights again, or load an earlier copy';
  if (buf.byteLength < MAGIC_BYTES || buf.toString('ascii', 0, MAGIC_BYTES) !== WEIGHTS_MAGIC) {
    if (buf.byteLength < MAGIC_BYTES) {
      throw new CheckpointError(`weights file ${path} is truncated (${buf.byteLength} bytes): the write was interrupted; ${retry}`);
    }
    throw new CheckpointError(
      `${path} is not a trainchart weights file (it does not start with "${WEIGHTS_MAGIC}"); give a file written by saveWeights or SaveModel`,
    );
  }
  if (buf.byteLength < PREFIX_BYTES) {
    throw new CheckpointError(`weights file ${path} is truncated (${buf.byteLength} bytes): the write was interrupted; ${retry}`);
  }
  const headerLength = buf.readUInt32LE(HASHED_FROM);
  const dataStart = PREFIX_BYTES + headerLength;
  if (dataStart > buf.byteLength) {
    throw new CheckpointError(
      `weights file ${path} is truncated (${buf.byteLength} bytes, its header alone needs ${dataStart}): the write was interrupted; ${retry}`,
    );
  }
  let header: WeightsHeader;
  try {
    header = JSON.parse(buf.toString('utf8', PREFIX_BYTES, dataStart)) as WeightsHeader;
  } catch {
    throw corrupted(path, 'its header is not valid JSON');
  }
  if (header?.format !== WEIGHTS_FORMAT || !Array.isArray(header.weights) || !Number.isInteger(header.dataLength)) {
    throw corrupted(path, 'its header does not describe trainchart weights');
  }
  if (header.version !== WEIGHTS_VERSION) {
    throw new CheckpointError(
      `weights file ${path} has format version ${header.version}; this trainchart reads version ${WEIGHTS_VERSION}: ` +
        'load it with the trainchart version that wrote it',
    );
  }
  const expected = dataStart + header.dataLength;
  if (buf.byteLength < expected) {
    throw new CheckpointError(
      `weights file ${path} is truncated (${buf.byteLength} of ${expected} bytes): the write was interrupted; ${retry}`,
    );
  }
  if (buf.byteLength > expected) throw corrupted(path, `it has ${buf.byteLength - expected} bytes after the data`);
  const sha = createHash('sha256').update(buf.subarray(HASHED_FROM)).digest();
  if (!sha.equals(buf.subarray(MAGIC_BYTES, HASHED_FROM))) throw corrupted(path, 'its sha256 does not match its contents');

  const values = header.weights.map((w) => {
    const size = w.shape.reduce((a, b) => a * b, 1);
    if (w.length !== size * 4 || w.offset < 0 || w.offset + w.length > header.dataLength) {
      throw corrupted(path, `the entry of weight ${w.name} does not fit its shape [${w.shape}]`);
    }
    // Copied out (slice) so the typed array is aligned and owns its bytes.
    const start = buf.byteOffset + dataStart + w.offset;
    const raw = Buffer.from(buf.buffer.slice(start, start + w.length));
    if (BIG_ENDIAN) raw.swap32();
    const ab = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
    if (w.dtype === 'float32') return new Float32Array(ab);
    if (w.dtype === 'int32') return new Int32Array(ab);
    throw corrupted(path, `weight ${w.name} has unknown dtype ${String(w.dtype)}`);
  });
  return { header, values };
}

function corrupted(path: string, why: string) {
  return new CheckpointError(`weights file ${path} is corrupted (${why}); save the weights again, or load an earlier copy`);
}

/** Writes the model's weights to `path` atomically (the previous file survives a crash mid-write). */
export function saveWeights(model: tf.LayersModel, path: string): void {
  const bytes = encodeWeights(model);
  try {
    writeFileAtomic(path, bytes);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new CheckpointError(
      `could not write weights file ${path}: ${why}; check that its directory exists and is writable and that the disk has space`,
      { cause: error },
    );
  }
}

/** Reads and verifies a weights file (no model needed). */
export function readWeights(path: string): WeightsSnapshot {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new CheckpointError(`could not read weights file ${path}: ${why}; check the path`, { cause: error });
  }
  return decodeWeights(bytes, path);
}

/**
 * Loads `path` into `model`. The file must hold as many weights as the model has, with the
 * same shapes in the same order; otherwise a CheckpointError says which one differs and the
 * model is left unchanged.
 */
export function loadWeights(model: tf.LayersModel, path: string): void {
  const { header, values } = readWeights(path);
  setModelWeights(model, header.weights, values, `weights file ${path}`);
}

/** Sets every weight of `model` from typed arrays, after checking count, shapes and dtypes. */
export function setModelWeights(
  model: tf.LayersModel,
  entries: ReadonlyArray<Pick<WeightEntry, 'name' | 'shape' | 'dtype'>>,
  values: ReadonlyArray<Float32Array | Int32Array>,
  source: string,
): void {
  const weights = model.weights;
  if (entries.length !== weights.length) {
    throw new CheckpointError(
      `${source} holds ${entries.length} weights but the model has ${weights.length}: it was saved from a different architecture; ` +
        'build the same model (layers, units, shapes) before loading',
    );
  }
  weights.forEach((w, i) => {
    const e = entries[i]!;
    const shape = w.shape as number[];
    if (e.shape.length !== shape.length || e.shape.some((d, j) => d !== shape[j]) || e.dtype !== w.dtype) {
      throw new CheckpointError(
        `${source}: weight #${i} (${e.name}) is ${e.dtype}[${e.shape}] but the model's ${w.originalName} is ${w.dtype}[${shape}]; ` +
          'build the same model (layers, units, shapes) before loading',
      );
    }
  });
  const tensors = values.map((v, i) => tf.tensor(v, entries[i]!.shape, entries[i]!.dtype));
  try {
    model.setWeights(tensors);
  } finally {
    // setWeights assigns (the variables share the data), so our handles can go.
    tf.dispose(tensors);
  }
}
