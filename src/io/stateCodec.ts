/**
 * Callback and optimizer states as JSON, losslessly.
 *
 * A state (`learn.callbackStates()`, `optimizer.getState()`) is plain data, but plain data that
 * JSON cannot hold: a loss may be NaN, a best value ±Infinity, a weight copy a Float32Array,
 * a field `undefined`. `JSON.stringify` turns the first three into `null` or an object of
 * indices and drops the last, so a checkpoint written that way resumes a different run.
 * `encodeState` maps such a value onto JSON and `decodeState` maps it back:
 *
 *   NaN, Infinity, -Infinity, -0    → { "$number": "NaN" | "Infinity" | "-Infinity" | "-0" }
 *   undefined (in an array, object)  → { "$undefined": true }
 *   Float32Array, Float64Array,      → { "$Float32Array": "<base64>" } … the bytes, little-endian
 *   Int32Array, Uint8Array
 *   a plain object                   → itself, a key starting with "$" getting one more "$"
 *   an array                         → itself (a hole is read as undefined)
 *
 * A checkpoint keeps large typed arrays out of the JSON: with `options.blob`, encodeState hands
 * each typed array to it and writes what it returns, `{ "$blob": { file, offset, bytes, type } }`
 * (the bytes go to a binary file beside the JSON); decodeState's `options.blob` reads them back.
 *
 * so an object with one key that names a tag is a tag, and a key of the data can never be
 * mistaken for one. Anything else (a function, a Map, a Date, an instance of a class, a
 * bigint, a symbol, another typed array, a cycle) is a ConfigError naming where it is, e.g.
 * `EarlyStopping.best`: a state that cannot be written exactly is refused rather than
 * written approximately.
 */
import { CheckpointError, ConfigError } from '../errors.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const TYPED_ARRAYS = {
  Float32Array,
  Float64Array,
  Int32Array,
  Uint8Array,
} as const;
type TypedName = keyof typeof TYPED_ARRAYS;
export type SupportedTypedArray = InstanceType<(typeof TYPED_ARRAYS)[TypedName]>;

/** Where a typed array went, when encodeState was given `blob`: `{ $blob: BlobRef }`. */
export interface BlobRef {
  file: string;
  /** Byte offset in the file. */
  offset: number;
  /** Byte length. */
  bytes: number;
  /** The typed array's class: 'Float32Array', 'Float64Array', 'Int32Array' or 'Uint8Array'. */
  type: string;
}

export interface EncodeOptions {
  /** Stores a typed array elsewhere and returns where (it becomes `{ $blob: ref }`). */
  blob?: (array: SupportedTypedArray, path: string) => BlobRef;
}

export interface DecodeOptions {
  /** Reads a `{ $blob: ref }` back as a typed array of `ref.type`. */
  blob?: (ref: BlobRef, path: string) => SupportedTypedArray;
}

const NUMBER_TAG = '$number';
/** A typed array stored outside the JSON (a checkpoint's binary files). */
export const BLOB_TAG = '$blob';
const UNDEFINED_TAG = '$undefined';
const SPECIAL_NUMBERS: Readonly<Record<string, number>> = {
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  '-Infinity': Number.NEGATIVE_INFINITY,
  '-0': -0,
};

/** The host's byte order: the encoded bytes are little-endian whatever it is. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** `a.b[2]["odd key"]`: the path of a value inside the state, for error messages. */
function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (/^[A-Za-z_$][\w$#]*$/.test(key)) return path ? `${path}.${key}` : key;
  return `${path}[${JSON.stringify(key)}]`;
}

const where = (path: string) => (path ? path : 'the state itself');

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function typedName(value: object): TypedName | null {
  for (const name of Object.keys(TYPED_ARRAYS) as TypedName[]) {
    // Exact class: a subclass or a typed array of another realm's kind is not silently narrowed.
    if (Object.getPrototypeOf(value) === TYPED_ARRAYS[name].prototype) return name;
  }
  return null;
}

/** Defines rather than assigns, so a key "__proto__" stays a key and never sets a prototype. */
function put(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** The array's bytes, little-endian (a view when the host is little-endian). */
export function toLittleEndianBytes(a: SupportedTypedArray): Uint8Array {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (LITTLE_ENDIAN || a.BYTES_PER_ELEMENT === 1) return bytes;
  return swapped(bytes, a.BYTES_PER_ELEMENT);
}

function swapped(bytes: Uint8Array, width: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += width) for (let j = 0; j < width; j++) out[i + j] = bytes[i + width - 1 - j]!;
  return out;
}

function describeKind(value: unknown): string {
  switch (typeof value) {
    case 'function':
      return 'a function';
    case 'bigint':
      return 'a bigint';
    case 'symbol':
      return 'a symbol';
    default: {
      const ctor = (value as { constructor?: { name?: string } }).constructor?.name;
      return ctor ? `an instance of ${ctor}` : 'an object that is not plain data';
    }
  }
}

/**
 * `value` as JSON (see the top of this file), ready for `JSON.stringify`. `path` names the
 * value in error messages (e.g. 'checkpoint.callbacks'); by default paths start at its keys.
 */
export function encodeState(value: unknown, path = '', options: EncodeOptions = {}): JsonValue {
  return encode(value, path, new Set(), options);
}

function encode(value: unknown, path: string, ancestors: Set<object>, options: EncodeOptions): JsonValue {
  if (value === null) return null;
  switch (typeof value) {
    case 'boolean':
    case 'string':
      return value;
    case 'number':
      if (Number.isNaN(value)) return { [NUMBER_TAG]: 'NaN' };
      if (value === Number.POSITIVE_INFINITY) return { [NUMBER_TAG]: 'Infinity' };
      if (value === Number.NEGATIVE_INFINITY) return { [NUMBER_TAG]: '-Infinity' };
      if (Object.is(value, -0)) return { [NUMBER_TAG]: '-0' };
      return value;
    case 'undefined':
      return { [UNDEFINED_TAG]: true };
    case 'object':
      break;
    default:
      throw unsupported(value, path);
  }
  const obj = value as object;
  if (ancestors.has(obj)) {
    throw new ConfigError(`encodeState: ${where(path)} contains itself (a cycle); a state must be a tree of plain data`);
  }
  const name = typedName(obj);
  if (name && options.blob) return { [BLOB_TAG]: { ...options.blob(obj as SupportedTypedArray, path) } };
  if (name) {
    return { [`$${name}`]: Buffer.from(toLittleEndianBytes(obj as SupportedTypedArray)).toString('base64') };
  }
  ancestors.add(obj);
  try {
    if (Array.isArray(obj)) {
      const out: JsonValue[] = [];
      // An index loop, not map: map skips holes, which must come back as undefined.
      for (let i = 0; i < obj.length; i++) out.push(encode(obj[i], child(path, i), ancestors, options));
      return out;
    }
    if (!isPlainObject(obj)) throw unsupported(obj, path);
    const out: Record<string, JsonValue> = {};
    for (const key of Object.keys(obj)) {
      const encodedKey = key.startsWith('$') ? `$${key}` : key;
      put(out, encodedKey, encode((obj as Record<string, unknown>)[key], child(path, key), ancestors, options));
    }
    return out;
  } finally {
    ancestors.delete(obj);
  }
}

function unsupported(value: unknown, path: string): ConfigError {
  return new ConfigError(
    `encodeState: ${where(path)} is ${describeKind(value)}; a state holds only numbers, strings, booleans, null, ` +
      'undefined, plain objects, arrays and Float32Array/Float64Array/Int32Array/Uint8Array — ' +
      'save what it stands for (e.g. the plain fields of the instance, or a typed array of its values) instead',
  );
}

/**
 * The value `encodeState` encoded, from it or from `JSON.parse` of it. Input that
 * `encodeState` cannot have produced (an unknown tag, malformed base64, bytes that are not a
 * whole number of elements) is a CheckpointError naming where it is.
 */
export function decodeState(json: unknown, path = '', options: DecodeOptions = {}): unknown {
  return decode(json, path, options);
}

function decode(json: unknown, path: string, options: DecodeOptions): unknown {
  if (json === null || typeof json === 'boolean' || typeof json === 'string') return json;
  if (typeof json === 'number') {
    if (!Number.isFinite(json)) throw corrupt(path, `a bare ${json} (encoded states write it as { "$number": "${json}" })`);
    return json;
  }
  if (typeof json !== 'object') throw corrupt(path, `${describeKind(json)}, which JSON cannot hold`);
  if (Array.isArray(json)) return json.map((v, i) => decode(v, child(path, i), options));
  if (!isPlainObject(json)) throw corrupt(path, `${describeKind(json)}, which JSON cannot hold`);
  const record = json as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length === 1 && keys[0] === BLOB_TAG) return decodeBlob(record[BLOB_TAG], path, options);
  if (keys.length === 1 && isTag(keys[0]!)) return decodeTag(keys[0]!, record[keys[0]!], path);
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    let decodedKey = key;
    if (key.startsWith('$$')) decodedKey = key.slice(1);
    else if (key.startsWith('$')) throw corrupt(child(path, key), `the key "${key}", which is no tag of encodeState's`);
    put(out, decodedKey, decode(record[key], child(path, decodedKey), options));
  }
  return out;
}

/** A fresh typed array of class `type` from little-endian `bytes` (copied, so it is aligned and owned). */
export function typedArrayFromLittleEndian(type: string, bytes: Uint8Array): SupportedTypedArray {
  if (!Object.hasOwn(TYPED_ARRAYS, type)) throw new CheckpointError(`unknown typed array type ${JSON.stringify(type)}`);
  const Ctor = TYPED_ARRAYS[type as TypedName];
  const own = new Uint8Array(bytes.length);
  own.set(LITTLE_ENDIAN || Ctor.BYTES_PER_ELEMENT === 1 ? bytes : swapped(bytes, Ctor.BYTES_PER_ELEMENT));
  return new Ctor(own.buffer);
}

function decodeBlob(ref: unknown, path: string, options: DecodeOptions): unknown {
  const r = ref as Partial<BlobRef> | null;
  const ok =
    typeof r === 'object' &&
    r !== null &&
    typeof r.file === 'string' &&
    Number.isSafeInteger(r.offset) &&
    r.offset! >= 0 &&
    Number.isSafeInteger(r.bytes) &&
    r.bytes! >= 0 &&
    typeof r.type === 'string' &&
    Object.hasOwn(TYPED_ARRAYS, r.type) &&
    r.bytes! % TYPED_ARRAYS[r.type as TypedName].BYTES_PER_ELEMENT === 0;
  if (!ok) throw corrupt(path, `a malformed { "$blob": ${JSON.stringify(ref)} }`);
  if (!options.blob) throw corrupt(path, `a { "$blob" } reference to ${r.file}, which only a checkpoint reader can resolve`);
  return options.blob(r as BlobRef, path);
}

function isTag(key: string): boolean {
  return key === NUMBER_TAG || key === UNDEFINED_TAG || (key.startsWith('$') && Object.hasOwn(TYPED_ARRAYS, key.slice(1)));
}

function decodeTag(tag: string, payload: unknown, path: string): unknown {
  if (tag === NUMBER_TAG) {
    if (typeof payload === 'string' && Object.hasOwn(SPECIAL_NUMBERS, payload)) return SPECIAL_NUMBERS[payload];
    throw corrupt(path, `{ "$number": ${JSON.stringify(payload)} }; it must be "NaN", "Infinity", "-Infinity" or "-0"`);
  }
  if (tag === UNDEFINED_TAG) {
    if (payload === true) return undefined;
    throw corrupt(path, `{ "$undefined": ${JSON.stringify(payload)} }; it must be true`);
  }
  const name = tag.slice(1) as TypedName;
  const Ctor = TYPED_ARRAYS[name];
  if (typeof payload !== 'string' || payload.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(payload)) {
    throw corrupt(path, `a ${name} whose bytes are not base64`);
  }
  const bytes = Buffer.from(payload, 'base64');
  if (bytes.length % Ctor.BYTES_PER_ELEMENT !== 0) {
    throw corrupt(path, `a ${name} of ${bytes.length} bytes, not a whole number of ${Ctor.BYTES_PER_ELEMENT}-byte values`);
  }
  // A fresh, aligned buffer: Buffer's pooled memory may start at any offset.
  const own = new Uint8Array(bytes.length);
  own.set(LITTLE_ENDIAN || Ctor.BYTES_PER_ELEMENT === 1 ? bytes : swapped(bytes, Ctor.BYTES_PER_ELEMENT));
  return new Ctor(own.buffer);
}

function corrupt(path: string, what: string): CheckpointError {
  return new CheckpointError(
    `decodeState: ${where(path)} is ${what}; this is not the output of encodeState (a damaged or hand-edited checkpoint?)`,
  );
}
