/**
 * A dataset's content fingerprint: sha256 of its shapes, target dtype and every byte of its
 * values. A checkpoint records it so a run is never resumed on other data (a sample changed,
 * added, reordered) without saying so.
 */
import { createHash } from 'node:crypto';

type Values = Float32Array | Int32Array;

export function dataFingerprint(x: Values, sampleShape: readonly number[], y: Values, targetShape: readonly number[]): string {
  const hash = createHash('sha256');
  const dtype = y instanceof Int32Array ? 'int32' : 'float32';
  hash.update(`trainchart-data:1;x[${sampleShape.join(',')}]:${x.length};y[${targetShape.join(',')}]:${dtype}:${y.length};`);
  // The bytes as the host stores them: little-endian everywhere trainchart runs (Node on x86/arm).
  hash.update(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  hash.update(new Uint8Array(y.buffer, y.byteOffset, y.byteLength));
  return hash.digest('hex');
}
