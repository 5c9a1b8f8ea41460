// The values the wire codec carries: what it accepts arrives as it left (same type, same
// contents, same prototypes), and what it cannot carry is refused before anything is encoded,
// with a message naming where. Pure and in process.
import { inspect, isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { MAP_EXT, MAX_DEPTH, checkEncodable, decode, encode, payloadOf, toWireValue } from '../src/mesh/codec.js';
import { ProtocolError, SerializationError } from '../src/errors.js';
import { wireValue } from './helpers/wire-values.js';

/** What a peer reads of `value` sent in a REPLY frame. */
function roundTrip(value: unknown): unknown {
  const back = decode(payloadOf(encode([21, 7, toWireValue(value, 'reply')])), undefined) as unknown[];
  expect(back.slice(0, 2)).toEqual([21, 7]);
  return back[2];
}

/** Message of the SerializationError `fn` throws (fails the test if it throws none or another). */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SerializationError);
    return (err as Error).message;
  }
  throw new Error('expected a SerializationError, nothing was thrown');
}

/** True if `v` holds a Map or a -0 anywhere (the only values toWireValue must copy containers for). */
function needsCopy(v: unknown): boolean {
  if (Object.is(v, -0) || v instanceof Map) return true;
  if (v instanceof Set) return [...v].some(needsCopy);
  if (Array.isArray(v)) return v.some(needsCopy);
  if (typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype) return Object.values(v).some(needsCopy);
  return false;
}

describe('what the codec accepts arrives as it left', () => {
  test('nested values of every carried type: decode(encode(v)) deep-equals v, prototypes included', () => {
    fc.assert(
      fc.property(wireValue, (value) => {
        const back = roundTrip(value);
        if (!isDeepStrictEqual(back, value)) throw new Error(`sent ${inspect(value, { depth: 9 })}, got ${inspect(back, { depth: 9 })}`);
      }),
      { numRuns: 1500 },
    );
  });

  test('the walk leaves the value as it is, and returns it without a copy when it holds no Map and no -0', () => {
    fc.assert(
      fc.property(wireValue, (value) => {
        const before = inspect(value, { depth: Infinity });
        const wire = toWireValue(value, 'value');
        expect(inspect(value, { depth: Infinity })).toBe(before);
        if (!needsCopy(value)) expect(wire).toBe(value);
      }),
      { numRuns: 500 },
    );
  });

  test('-0, NaN, ±Infinity, undefined (top level, in arrays, in objects, as Map values) keep their identity', () => {
    for (const v of [-0, Number.NaN, Infinity, -Infinity, undefined]) {
      expect(Object.is(roundTrip(v), v)).toBe(true);
      expect(Object.is((roundTrip([v]) as unknown[])[0], v)).toBe(true);
      const obj = roundTrip({ v }) as Record<string, unknown>;
      expect('v' in obj && Object.is(obj.v, v)).toBe(true);
      expect(Object.is((roundTrip(new Map([['k', v]])) as Map<string, unknown>).get('k'), v)).toBe(true);
    }
  });

  test('an invalid Date arrives as an invalid Date', () => {
    const back = roundTrip(new Date(Number.NaN));
    expect(back).toBeInstanceOf(Date);
    expect((back as Date).getTime()).toBeNaN();
  });

  test('a Map stays a Map and a plain object a plain object, whatever their keys', () => {
    const back = roundTrip({ obj: { '1': 'a' }, map: new Map<unknown, unknown>([[1, 'a'], ['1', 'b'], [{ k: 1 }, new Map()]]) }) as {
      obj: object;
      map: Map<unknown, unknown>;
    };
    expect(Object.getPrototypeOf(back.obj)).toBe(Object.prototype);
    expect(back.map).toBeInstanceOf(Map);
    expect([...back.map.keys()]).toEqual([1, '1', { k: 1 }]);
  });

  test('an object with a null prototype arrives as the plain object of the same keys (as structuredClone does)', () => {
    const dict = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1, toJSON: 'data', constructor: 'x' });
    const back = roundTrip(dict);
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(back).toEqual({ a: 1, toJSON: 'data', constructor: 'x' });
  });

  test('a value reached twice arrives as two equal copies', () => {
    const shared = { n: 1 };
    const back = roundTrip([shared, shared]) as object[];
    expect(back).toEqual([{ n: 1 }, { n: 1 }]);
    expect(back[0]).not.toBe(back[1]);
  });

  test(`nesting up to ${MAX_DEPTH} levels is carried`, () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < MAX_DEPTH; i++) deep = i % 2 ? [deep] : { d: deep };
    expect(roundTrip(deep)).toEqual(deep);
  });
});

describe('what the codec cannot carry is refused with a message naming where', () => {
  class User {
    save(): void {}
  }
  class MyMap extends Map {}
  const cyclic: Record<string, unknown> = { a: { b: [1] } };
  ((cyclic.a as { b: unknown[] }).b).push(cyclic.a);
  test.each<[string, unknown, string]>([
    ['a method', { user: { name: 'n', save() {} } }, 'value.user.save is a function'],
    ['a function at the top', () => 1, 'value is a function'],
    ['a symbol in an array', [1, Symbol('s')], 'value[1] is a symbol'],
    ['a class instance', { u: new User() }, 'value.u is an instance of User (a class instance does not travel: send its fields as a plain object)'],
    ['a subclass of Map', [new MyMap()], 'value[0] is an instance of MyMap, a subclass of Map (only Map itself travels)'],
    ['an Error', { e: new TypeError('x') }, 'value.e is an Error (TypeError): send its name and message as data instead'],
    ['a Promise', { 'a key': Promise.resolve(1) }, 'value["a key"] is a Promise (send its result instead)'],
    ['a WeakMap in a Set', new Set([1, new WeakMap()]), 'value.values()[1] is a WeakMap, which cannot be copied'],
    ['a function as a Map value', new Map([['k', () => 1]]), 'value.get("k") is a function'],
    ['a function as a Map key', new Map([[() => 1, 1]]), 'value.keys()[0] is a function'],
    ['a function under an object key of a Map', new Map([[{}, () => 1]]), 'value.get(<key 0>) is a function'],
    ['a hole of a sparse array', [1, , 3], 'value[1] is a hole of a sparse array (fill it, e.g. with undefined)'],
    ['an own key __proto__', JSON.parse('{"ok":1,"__proto__":{"x":1}}'), 'value.__proto__ is an own key named __proto__, which the decoder renames'],
    ['a cycle', cyclic, 'value.a.b[1] refers back to value.a (a cycle cannot be sent)'],
    ['a SharedArrayBuffer', { s: new SharedArrayBuffer(1) }, 'value.s is a SharedArrayBuffer, which cannot be shared with another process'],
  ])('%s', (_what, value, message) => {
    expect(refusal(() => toWireValue(value, 'value'))).toBe(message);
    expect(refusal(() => checkEncodable(value))).toBe(message);
  });

  test('the label names the root in the message', () => {
    expect(refusal(() => checkEncodable({ f: () => 1 }, 'githubAccessToken value'))).toBe('githubAccessToken value.f is a function');
  });

  test(`nesting deeper than ${MAX_DEPTH} levels is refused, with the start of the path`, () => {
    let deep: unknown = 1;
    for (let i = 0; i <= MAX_DEPTH; i++) deep = [deep];
    const message = refusal(() => toWireValue(deep, 'value'));
    expect(message).toMatch(/^value(\[0\]){10}.*… nests deeper than 512 levels$/);
  });

  test('a function anywhere in nested data is refused, naming its path', () => {
    const segment = fc.oneof(
      fc.nat({ max: 3 }).map((i) => ({ index: i })),
      fc.constantFrom('a', 'user', 'b c', '0').map((k) => ({ key: k })),
      fc.constantFrom('k', 'x').map((k) => ({ mapKey: k })),
    );
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 6 }), wireValue, (path, filler) => {
        let v: unknown = () => 1;
        let expected = '';
        for (const s of [...path].reverse()) {
          if ('index' in s) {
            v = [...Array<unknown>(s.index).fill(filler), v];
            expected = `[${s.index}]${expected}`;
          } else if ('key' in s) {
            v = { other: filler, [s.key]: v };
            expected = `${/^[A-Za-z_$][\w$]*$/.test(s.key) ? `.${s.key}` : `[${JSON.stringify(s.key)}]`}${expected}`;
          } else {
            v = new Map([[s.mapKey, v]]);
            expected = `.get(${JSON.stringify(s.mapKey)})${expected}`;
          }
        }
        expect(refusal(() => toWireValue(v, 'msg'))).toBe(`msg${expected} is a function`);
      }),
      { numRuns: 300 },
    );
  });
});

describe('the decoder', () => {
  test('a malformed Map extension fails that frame with ProtocolError', () => {
    // [21, 1, <fixext1 MAP_EXT 0><an array of 3 elements>]: entries must come in pairs.
    const payload = new Uint8Array([0x93, 21, 1, 0xd4, MAP_EXT, 0, 0x93, 1, 2, 3]);
    expect(() => decode(payload, undefined)).toThrow(ProtocolError);
    const good = new Uint8Array([0x93, 21, 1, 0xd4, MAP_EXT, 0, 0x92, 1, 2]);
    expect(decode(good, undefined)).toEqual([21, 1, new Map([[1, 2]])]);
  });
});
