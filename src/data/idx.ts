import { readFileSync } from 'node:fs';
import { DataError } from '../errors.js';

/**
 * Reader for the IDX format of MNIST-style datasets: a big-endian header (two zero bytes,
 * an element-type byte, a dimension count, then one uint32 per dimension) followed by the
 * elements. Only unsigned-byte files (type 0x08: 0x00000801 labels, 0x00000803 images) are
 * supported; the data comes back as a view over the file bytes, with no per-element work.
 */

export interface IdxFile {
  dims: number[];
  data: Uint8Array;
}

const UBYTE = 0x08;
const TYPE_NAMES: Record<number, string> = {
  0x09: 'int8',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

/** Read an unsigned-byte IDX file (uncompressed). */
export function readIdx(path: string): IdxFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new DataError(`cannot read IDX file ${path}: ${why}. Check that the path exists and is readable`, { cause: err });
  }
  return parseIdx(bytes, path);
}

/** Parse the bytes of an unsigned-byte IDX file; `source` names it in error messages. */
export function parseIdx(bytes: Uint8Array, source = 'IDX data'): IdxFile {
  if (bytes.length < 4) {
    throw new DataError(`${source} is truncated: it has ${bytes.length} bytes, but an IDX header alone needs at least 4`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    throw new DataError(`${source} is gzip-compressed (it starts with 0x1f8b): decompress it (gunzip) before reading it as IDX`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[3] === 0) {
    throw new DataError(
      `${source} is not an IDX file: its magic number is 0x${hex(magic)}, expected 0x00000801 (labels), ` +
        `0x00000803 (images) or another 0x000008NN. The file is corrupted or in another format`,
    );
  }
  if (bytes[2] !== UBYTE) {
    const name = TYPE_NAMES[bytes[2]!];
    throw new DataError(
      `${source} has IDX element type 0x${bytes[2]!.toString(16).padStart(2, '0')}` +
        (name ? ` (${name})` : ' (not a valid IDX type)') +
        `, magic 0x${hex(magic)}: only unsigned-byte files (type 0x08) are supported`,
    );
  }
  const rank = bytes[3]!;
  const headerLength = 4 + 4 * rank;
  if (bytes.length < headerLength) {
    throw new DataError(
      `${source} is truncated: its header declares ${rank} dimensions and needs ${headerLength} bytes, but the file has ${bytes.length}`,
    );
  }
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const available = bytes.length - headerLength;
  if (available < count) {
    throw new DataError(
      `${source} is truncated: its header declares dims [${dims.join(', ')}] = ${count} data bytes, ` +
        `but only ${available} follow the header. Re-download or re-install the file`,
    );
  }
  if (available > count) {
    throw new DataError(
      `${source} has ${available - count} bytes after the ${count} data bytes its header declares (dims [${dims.join(', ')}]): ` +
        `the header or the file is corrupted`,
    );
  }
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerLength, count) };
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
