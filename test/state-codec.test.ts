import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CheckpointError, ConfigError } from '../src/errors.js';
import { decodeState, encodeState } from '../src/io/stateCodec.js';

/** Through the codec and a JSON text, as a checkpoint file would carry it. */
const throughJson = (value: unknown) => decodeState(JSON.parse(JSON.stringify(encodeState(value))));

/** Bytes of a typed array, to compare NaN payloads and -0 exactly. */
const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');

function errorOf(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('encodeState / decodeState: round trips through JSON', () => {
  it('NaN, ±Infinity and -0, alone and nested', () => {
    for (const v of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0, 1.5, -2, Number.MAX_VALUE, Number.MIN_VALUE]) {
      expect(Object.is(throughJson(v), v), String(v)).toBe(true);
    }
    const state = { best: Number.POSITIVE_INFINITY, losses: [1, Number.NaN, -0, Number.NEGATIVE_INFINITY], nested: { z: -0 } };
    const back = throughJson(state) as typeof state;
    expect(back).toStrictEqual(state);
    expect(Object.is(back.losses[2], -0)).toBe(true);
    expect(Object.is(back.nested.z, -0)).toBe(true);
    // What plain JSON would have done instead.
    expect(JSON.parse(JSON.stringify(state))).toEqual({ best: null, losses: [1, null, 0, null], nested: { z: 0 } });
  });

  it('undefined in arrays and objects (keys kept), and array holes read back as undefined', () => {
    const state = { a: undefined, list: [undefined, 1, undefined], deep: { x: [{ y: undefined }] } };
    const back = throughJson(state) as typeof state;
    expect(back).toStrictEqual(state);
    expect(Object.keys(back)).toEqual(['a', 'list', 'deep']);
    expect('a' in back).toBe(true);
    expect(throughJson([1, , 3])).toStrictEqual([1, undefined, 3]);
    expect(throughJson(undefined)).toBeUndefined();
  });

  it('Float32Array, Float64Array, Int32Array and Uint8Array, byte for byte (NaN payloads, -0, extremes)', () => {
    const f32 = new Float32Array([1.5, -0, Number.NaN, Number.POSITIVE_INFINITY, 3.4028234663852886e38, 1e-45]);
    new DataView(f32.buffer).setUint32(2 * 4, 0x7fc00abc, true); // a NaN with a payload
    const f64 = new Float64Array([Math.PI, -0, Number.NEGATIVE_INFINITY, Number.MIN_VALUE]);
    const i32 = new Int32Array([0, -1, 2147483647, -2147483648]);
    const u8 = new Uint8Array([0, 1, 254, 255]);
    const back = throughJson({ f32, f64, i32, u8, empty: new Float32Array(0) }) as Record<string, ArrayBufferView>;
    expect(back.f32).toBeInstanceOf(Float32Array);
    expect(back.f64).toBeInstanceOf(Float64Array);
    expect(back.i32).toBeInstanceOf(Int32Array);
    expect(back.u8).toBeInstanceOf(Uint8Array);
    expect(bytesOf(back.f32!)).toBe(bytesOf(f32));
    expect(bytesOf(back.f64!)).toBe(bytesOf(f64));
    expect(bytesOf(back.i32!)).toBe(bytesOf(i32));
    expect(bytesOf(back.u8!)).toBe(bytesOf(u8));
    expect(back.empty).toStrictEqual(new Float32Array(0));
  });

  it('a view into a larger buffer encodes its own elements only, and decodes to an array of its own', () => {
    const big = new Float32Array([9, 1, 2, 3, 9]);
    const view = big.subarray(1, 4);
    const back = throughJson(view) as Float32Array;
    expect(Array.from(back)).toEqual([1, 2, 3]);
    expect(back.buffer.byteLength).toBe(12);
  });

  it('the encoding is JSON itself: tags are single-key objects, typed arrays little-endian base64', () => {
    expect(encodeState({ a: Number.NaN, b: -0, c: undefined, d: new Int32Array([1, -1]) })).toEqual({
      a: { $number: 'NaN' },
      b: { $number: '-0' },
      c: { $undefined: true },
      d: { $Int32Array: Buffer.from([1, 0, 0, 0, 255, 255, 255, 255]).toString('base64') },
    });
  });

  it('keys of the data that look like tags, "$"-prefixed keys and "__proto__" stay plain keys', () => {
    const tricky = JSON.parse('{"__proto__": {"polluted": true}, "x": 1}') as Record<string, unknown>;
    const state = {
      a: { $number: 'NaN' },
      b: { $undefined: true },
      c: { $Float32Array: 'AAAA' },
      d: { $$x: 1, $: 2, $y: [3] },
      tricky,
    };
    const encoded = encodeState(state);
    const back = decodeState(JSON.parse(JSON.stringify(encoded))) as typeof state;
    expect(back).toStrictEqual(state);
    expect(Object.getPrototypeOf(back.tricky)).toBe(Object.prototype);
    expect(Object.keys(back.tricky)).toEqual(['__proto__', 'x']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('null-prototype objects are plain data too (decoded as ordinary objects)', () => {
    const o = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    expect(throughJson({ o })).toEqual({ o: { a: 1 } });
  });

  it('a realistic callback state: learn.callbackStates()-shaped, nested', () => {
    const states = {
      Recorder: { lrs: [0.1, 0.2], losses: [Number.NaN, 0.5], epochs: [{ epoch: 0, trainLoss: Number.NaN, valid: null, seconds: 0.1, iteration: 2 }] },
      EarlyStopping: { best: Number.POSITIVE_INFINITY, wait: 0, bestWeights: [{ shape: [2], dtype: 'float32', values: new Float32Array([1, 2]) }] },
      'SaveModel#2': { saved: [], lastSaved: null },
    };
    expect(throughJson(states)).toStrictEqual(states);
  });

  it('any supported value round-trips (property)', () => {
    const leaf = fc.oneof(
      fc.double(),
      fc.integer(),
      fc.constantFrom(-0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
      fc.string(),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.float32Array(),
      fc.float64Array(),
      fc.int32Array(),
      fc.uint8Array(),
    );
    const value = fc.letrec((tie) => ({
      tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('object')),
      array: fc.array(tie('tree'), { maxLength: 5 }),
      object: fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('$number', '$undefined', '$Float32Array', '$$a', '__proto__')), tie('tree'), { maxKeys: 5, noNullPrototype: true }),
    })).tree;
    fc.assert(
      fc.property(value, (v) => {
        const back = throughJson(v);
        expect(back).toStrictEqual(v);
        expect(encodeState(back)).toStrictEqual(encodeState(v));
      }),
      { numRuns: 300 },
    );
  });
});

describe('encodeState refuses what it cannot write exactly, naming where it is', () => {
  class Point {
    constructor(readonly x = 1) {}
  }
  const cases: Array<[string, unknown, RegExp]> = [
    ['a function', { EarlyStopping: { best: () => 1 } }, /^encodeState: EarlyStopping\.best is a function;/],
    ['a class instance', { EarlyStopping: { best: new Point() } }, /^encodeState: EarlyStopping\.best is an instance of Point;/],
    ['a Map', { a: [1, new Map()] }, /^encodeState: a\[1\] is an instance of Map;/],
    ['a Date', { when: new Date(0) }, /^encodeState: when is an instance of Date;/],
    ['a bigint', { n: 1n }, /^encodeState: n is a bigint;/],
    ['a symbol', { s: Symbol('x') }, /^encodeState: s is a symbol;/],
    ['another typed array', { 'odd key': new Int16Array(2) }, /^encodeState: \["odd key"\] is an instance of Int16Array;/],
    ['a DataView', { v: new DataView(new ArrayBuffer(4)) }, /^encodeState: v is an instance of DataView;/],
    ['a bare function', () => 1, /^encodeState: the state itself is a function;/],
  ];
  for (const [name, value, msg] of cases) {
    it(name, () => {
      const err = errorOf(() => encodeState(value));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(msg);
      expect(err.message).toMatch(/a state holds only numbers, strings, booleans, null, undefined, plain objects, arrays and Float32Array/);
    });
  }

  it('a cycle', () => {
    const a: Record<string, unknown> = { x: 1 };
    a.self = { back: a };
    expect(() => encodeState({ Recorder: a })).toThrow(/encodeState: Recorder\.self\.back contains itself \(a cycle\)/);
  });

  it('a value shared by two branches is no cycle', () => {
    const shared = [1, 2];
    expect(throughJson({ a: shared, b: shared })).toEqual({ a: [1, 2], b: [1, 2] });
  });

  it('a root path prefixes every path', () => {
    expect(() => encodeState({ best: () => 0 }, 'checkpoint.callbacks.EarlyStopping')).toThrow(
      /checkpoint\.callbacks\.EarlyStopping\.best is a function/,
    );
  });
});

describe('decodeState refuses input that encodeState cannot have written', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['an unknown tag-like key', { a: { $bogus: 1 } }, /decodeState: a\.\$bogus is the key "\$bogus", which is no tag/],
    ['a bad $number', { a: { $number: 'Inf' } }, /decodeState: a is \{ "\$number": "Inf" \}/],
    ['a bad $undefined', [{ $undefined: 1 }], /decodeState: \[0\] is \{ "\$undefined": 1 \}; it must be true/],
    ['malformed base64', { w: { $Float32Array: 'not base64!' } }, /decodeState: w is a Float32Array whose bytes are not base64/],
    ['a partial element', { w: { $Float64Array: 'AAAAAA==' } }, /a Float64Array of 4 bytes, not a whole number of 8-byte values/],
    ['a bare NaN (not JSON)', { x: Number.NaN }, /decodeState: x is a bare NaN/],
    ['a function (not JSON)', { f: () => 1 }, /decodeState: f is a function, which JSON cannot hold/],
  ];
  for (const [name, json, msg] of cases) {
    it(name, () => {
      const err = errorOf(() => decodeState(json));
      expect(err).toBeInstanceOf(CheckpointError);
      expect(err.message).toMatch(msg);
      expect(err.message).toMatch(/not the output of encodeState/);
    });
  }

  it('tags in objects with more than one key are data keys, and must be escaped', () => {
    expect(() => decodeState({ $number: 'NaN', other: 1 })).toThrow(/"\$number", which is no tag/);
    expect(decodeState({ $$number: 'NaN', other: 1 })).toEqual({ $number: 'NaN', other: 1 });
  });
});
