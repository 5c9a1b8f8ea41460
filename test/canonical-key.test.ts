// The one key encoder (src/mesh/canonical-key.ts): its rules, tested once here for both of
// its users, the store's keys and the locks' resource ids.
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KEY_ESC, MAX_KEY_TEXT, MAX_RESOURCE_TEXT, canonicalKey } from '../src/mesh/canonical-key.js';
import { resourceKey } from '../src/mesh/global/service.js';
import { decode, encode, payloadOf, toWireValue } from '../src/mesh/codec.js';
import { ActorRef } from '../src/actors/ref.js';
import { InvalidOptionError, SerializationError } from '../src/errors.js';
import { wireLeaf, wireValue } from './helpers/wire-values.js';
import { defineExpirables } from '../src/dsl/define.js';
import { expirable } from '../src/dsl/definition.js';
import { ok } from '../src/store/result.js';
import type { Node } from '../src/node.js';
import { localCluster } from './fixtures/store-mesh.js';
import { uniqueNamespace } from './fixtures/store-tools.js';

/** The InvalidOptionError `fn` throws (fails the test if it throws none or another). */
function refused(fn: () => unknown): InvalidOptionError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidOptionError);
    return err as InvalidOptionError;
  }
  throw new Error('expected an InvalidOptionError, nothing was thrown');
}

/**
 * The equality the keys implement, written independently of the encoder: structural, with
 * numbers compared as Map keys are (0 is -0, NaN is NaN), objects by their own keys in any
 * order, Maps and Sets by content in any order, a Buffer as the Uint8Array of its bytes.
 */
function sameKey(a: unknown, b: unknown): boolean {
  if (typeof a !== typeof b) return false;
  if (typeof a !== 'object' || a === null || b === null) return a === b || (Number.isNaN(a) && Number.isNaN(b));
  const x = a as object;
  const y = b as object;
  const proto = (v: object) => (Buffer.isBuffer(v) ? Uint8Array.prototype : (Object.getPrototypeOf(v) ?? Object.prototype));
  if (proto(x) !== proto(y)) return false;
  if (x instanceof Date) return sameKey(x.getTime(), (y as Date).getTime());
  if (ArrayBuffer.isView(x) || x instanceof ArrayBuffer) return bytes(x).equals(bytes(y));
  if (x instanceof ActorRef) return x.node === (y as ActorRef).node && x.id === (y as ActorRef).id;
  if (Array.isArray(x)) return x.length === (y as unknown[]).length && x.every((v, i) => sameKey(v, (y as unknown[])[i]));
  if (x instanceof Map || x instanceof Set) {
    const xs = [...x];
    const ys = [...(y as Map<unknown, unknown> | Set<unknown>)];
    // Content as a multiset: each element of x matched to a distinct element of y.
    if (xs.length !== ys.length) return false;
    const used = new Set<number>();
    return xs.every((e) => {
      const j = ys.findIndex((f, k) => !used.has(k) && sameKey(e, f));
      return j >= 0 && used.add(j) !== undefined;
    });
  }
  const kx = Object.keys(x).sort();
  const ky = Object.keys(y).sort();
  return isDeepStrictEqual(kx, ky) && kx.every((k) => sameKey((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k]));
}

const bytes = (v: object): Buffer =>
  ArrayBuffer.isView(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : Buffer.from(v as ArrayBuffer);

/** A value equal to `v` as a key, built differently: object keys, Map entries and Set elements in another order, -0 for 0. */
function reordered(v: unknown): unknown {
  if (Object.is(v, 0)) return -0;
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) return v.map(reordered);
  if (v instanceof Map) return new Map([...v].reverse().map(([k, x]) => [reordered(k), reordered(x)]));
  if (v instanceof Set) return new Set([...v].reverse().map(reordered));
  if (Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reordered(x)]));
  }
  return v;
}

describe('canonical keys', () => {
  it('a string is its own text; other values start with the escape character', () => {
    expect(canonicalKey('t-1')).toBe('t-1');
    expect(canonicalKey('')).toBe('');
    expect(canonicalKey(1)).toBe(`${KEY_ESC}1`);
    expect(canonicalKey({ b: [1, 'x'], a: null })).toBe(`${KEY_ESC}{"a":null,"b":[1,"x"]}`);
  });

  it('a string starting with the escape character cannot meet the text of another key', () => {
    const tricky = [KEY_ESC, `${KEY_ESC}1`, `${KEY_ESC}"1"`, `${KEY_ESC}${KEY_ESC}1`, '1', 1, '"1"'];
    const texts = tricky.map((k) => canonicalKey(k));
    expect(new Set(texts).size).toBe(tricky.length);
    expect(canonicalKey(`${KEY_ESC}1`)).toBe(`${KEY_ESC}${JSON.stringify(`${KEY_ESC}1`)}`);
  });

  it('object keys in any order are one key', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string().filter((k) => k !== '__proto__'), fc.oneof(fc.integer(), fc.string(), fc.boolean())), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        expect(canonicalKey(reversed)).toBe(canonicalKey(obj));
      }),
    );
  });

  it('numbers: -0 is 0, NaN is one key, Infinity is not NaN, and a number is never its string', () => {
    expect(canonicalKey(-0)).toBe(canonicalKey(0));
    expect(canonicalKey([-0])).toBe(canonicalKey([0]));
    expect(canonicalKey(Number.NaN)).toBe(canonicalKey(0 / 0));
    const distinct = [Number.NaN, Infinity, -Infinity, 0, 1, 1.5, 'NaN', 'Infinity', '0', '1'];
    expect(new Set(distinct.map((k) => canonicalKey(k))).size).toBe(distinct.length);
  });

  it('a BigInt is never the number of the same value', () => {
    expect(canonicalKey(1n)).not.toBe(canonicalKey(1));
    expect(canonicalKey(1n)).not.toBe(canonicalKey('1n'));
    expect(canonicalKey(2n ** 100n)).toBe(canonicalKey(2n ** 100n));
  });

  it('undefined and null differ, in arrays and objects; { a: undefined } is not {}', () => {
    expect(canonicalKey([undefined])).not.toBe(canonicalKey([null]));
    expect(canonicalKey([undefined])).not.toBe(canonicalKey([]));
    expect(canonicalKey({ a: undefined })).not.toBe(canonicalKey({ a: null }));
    expect(canonicalKey({ a: undefined })).not.toBe(canonicalKey({}));
    expect(canonicalKey(undefined)).not.toBe(canonicalKey(null));
  });

  it('a Date is its time: equal times are one key, invalid dates one key, a Date is not its number', () => {
    expect(canonicalKey(new Date(5))).toBe(canonicalKey(new Date(5)));
    expect(canonicalKey(new Date(5))).not.toBe(canonicalKey(new Date(6)));
    expect(canonicalKey(new Date(5))).not.toBe(canonicalKey(5));
    expect(canonicalKey(new Date(Number.NaN))).toBe(canonicalKey(new Date('not a date')));
  });

  it('Map and Set by content in any order; a Map is not the object of its entries, a Set not its array', () => {
    expect(canonicalKey(new Map([['x', 1], ['y', 2]]))).toBe(canonicalKey(new Map([['y', 2], ['x', 1]])));
    expect(canonicalKey(new Map([[{ a: 1, b: 2 }, new Set([1, 2])]]))).toBe(canonicalKey(new Map([[{ b: 2, a: 1 }, new Set([2, 1])]])));
    expect(canonicalKey(new Set([1, 2]))).toBe(canonicalKey(new Set([2, 1])));
    expect(canonicalKey(new Map([['x', 1]]))).not.toBe(canonicalKey({ x: 1 }));
    expect(canonicalKey(new Set([1]))).not.toBe(canonicalKey([1]));
    // Two keys of one Map that are equal objects: the order of their values does not matter either.
    expect(canonicalKey(new Map([[{ k: 1 }, 'a'], [{ k: 1 }, 'b']]))).toBe(canonicalKey(new Map([[{ k: 1 }, 'b'], [{ k: 1 }, 'a']])));
  });

  it('binaries by type and bytes; a Buffer is the Uint8Array of its bytes; an ActorRef by node and id', () => {
    expect(canonicalKey(Buffer.from('ab'))).toBe(canonicalKey(new Uint8Array([97, 98])));
    expect(canonicalKey(new Uint8Array([1]))).not.toBe(canonicalKey(new Int8Array([1])));
    expect(canonicalKey(new Uint8Array([1]).buffer)).not.toBe(canonicalKey(new Uint8Array([1])));
    expect(canonicalKey(new ActorRef('n', 'i'))).toBe(canonicalKey(new ActorRef('n', 'i')));
    expect(canonicalKey(new ActorRef('n', 'i'))).not.toBe(canonicalKey({ node: 'n', id: 'i' }));
  });

  it('long keys: the text may be MAX_KEY_TEXT characters, not one more; a resource has more room', () => {
    expect(canonicalKey('x'.repeat(MAX_KEY_TEXT))).toHaveLength(MAX_KEY_TEXT);
    const err = refused(() => canonicalKey('x'.repeat(MAX_KEY_TEXT + 1)));
    expect(err.option).toBe('key');
    expect(err.message).toMatch(/at most 8192 characters \(it has 8193\)/);
    expect(refused(() => canonicalKey(['x'.repeat(MAX_KEY_TEXT)])).option).toBe('key');
    expect(resourceKey('x'.repeat(MAX_RESOURCE_TEXT))).toHaveLength(MAX_RESOURCE_TEXT);
    expect(refused(() => resourceKey('x'.repeat(MAX_RESOURCE_TEXT + 1))).option).toBe('resource');
  });

  it('refuses what the codec does not carry, naming the option and where', () => {
    class User {}
    const cyclic: Record<string, unknown> = { a: [1] };
    (cyclic.a as unknown[]).push(cyclic);
    const cases: [unknown, string][] = [
      [{ user: { save() {} } }, 'key.user.save is a function'],
      [Symbol('s'), 'key is a symbol'],
      [[1, new User()], 'key[1] is an instance of User'],
      [new Map([['k', () => 1]]), 'key.get("k") is a function'],
      [new Set([new WeakMap()]), 'key.values()[0] is a WeakMap'],
      [[1, , 2], 'key[1] is a hole of a sparse array'],
      [JSON.parse('{"__proto__":1}'), 'key.__proto__ is an own key named __proto__'],
      [cyclic, 'key.a[1] refers back to key: a cycle'],
    ];
    for (const [bad, where] of cases) {
      const err = refused(() => canonicalKey(bad));
      expect(err.option).toBe('key');
      expect(err.message).toContain(where);
    }
    expect(refused(() => resourceKey(() => 1)).message).toMatch(/^Expected `resource` to be a value the wire codec carries \(resource is a function\)/);
  });

  it('accepts exactly what the wire codec accepts', () => {
    class C {}
    const bad = fc.constantFrom<unknown>(() => 1, Symbol('s'), new C(), new WeakMap(), Promise.resolve(), new (class extends Set {})());
    const maybeBad = fc.letrec<{ v: unknown }>((tie) => ({
      v: fc.oneof({ maxDepth: 3 }, wireLeaf, bad, fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 3 }), tie('v'), { maxKeys: 3 })),
    })).v;
    fc.assert(
      fc.property(maybeBad, (v) => {
        const keyOk = (() => {
          try {
            canonicalKey(v, 'key', Infinity);
            return true;
          } catch (err) {
            expect(err).toBeInstanceOf(InvalidOptionError);
            return false;
          }
        })();
        const wireOk = (() => {
          try {
            toWireValue(v, 'value');
            return true;
          } catch (err) {
            expect(err).toBeInstanceOf(SerializationError);
            return false;
          }
        })();
        expect(keyOk).toBe(wireOk);
      }),
      { numRuns: 500 },
    );
  });

  it('equal keys have one text and different keys different texts (against an equality written apart)', () => {
    const pair = fc.oneof(
      wireValue.map((v) => [v, reordered(v)] as const),
      fc.tuple(wireValue, wireValue),
      wireValue.chain((v) => fc.tuple(fc.constant(v), fc.constant(v))),
    );
    fc.assert(
      fc.property(pair, ([a, b]) => {
        expect(canonicalKey(a, 'key', Infinity) === canonicalKey(b, 'key', Infinity)).toBe(sameKey(a, b));
      }),
      { numRuns: 1500 },
    );
  });

  it('a key that travelled to another node has the same text there', () => {
    fc.assert(
      fc.property(wireValue, (v) => {
        const there = decode(payloadOf(encode(toWireValue(v, 'key'))), undefined);
        expect(canonicalKey(there, 'key', Infinity)).toBe(canonicalKey(v, 'key', Infinity));
      }),
      { numRuns: 500 },
    );
  });

  it('two keys equal for the store are equal for the lock, and the reverse', () => {
    // The store names an entry's lock by the key's text; a value given to trans as is gets the
    // same text, within the larger length limit of resources.
    fc.assert(
      fc.property(fc.tuple(wireValue, wireValue), fc.boolean(), ([a, b0], same) => {
        const b = same ? reordered(a) : b0;
        expect(resourceKey(a) === resourceKey(b)).toBe(canonicalKey(a, 'key', Infinity) === canonicalKey(b, 'key', Infinity));
        expect(resourceKey(a)).toBe(canonicalKey(a, 'key', Infinity));
      }),
      { numRuns: 300 },
    );
  });
});

describe('keys through the store, on two nodes over TCP', () => {
  it('a Map key given in another order on another node is the same entry: one fetch, and the fetch gets a Map', async () => {
    await using c = await localCluster(2);
    const [a, b] = c.nodes as [Node, Node];
    const namespace = uniqueNamespace('keys');
    const seen: unknown[] = [];
    const defs = () => ({
      quota: expirable({
        keyed: true,
        fetch: async (key: Map<string, unknown>) => (seen.push(key), ok(`q-${[...key.keys()].join('+')}`, Date.now() + 60_000)),
      }),
    });
    const A = defineExpirables(defs(), { node: a, namespace });
    const B = defineExpirables(defs(), { node: b, namespace });
    const key = new Map<string, unknown>([['tenant', 't1'], ['since', new Date(5)], ['limit', 10n]]);
    const sameKeyOtherOrder = new Map<string, unknown>([['limit', 10n], ['since', new Date(5)], ['tenant', 't1']]);
    const first = await A.quotaOrThrow(key);
    expect(await B.quotaOrThrow(sameKeyOtherOrder)).toBe(first);
    expect(await A.quotaOrThrow(sameKeyOtherOrder)).toBe(first);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(Map);
    expect(isDeepStrictEqual(seen[0], key)).toBe(true);
    // A key that differs only by a number where the first had a BigInt is another entry.
    await B.quotaOrThrow(new Map<string, unknown>([['tenant', 't1'], ['since', new Date(5)], ['limit', 10]]));
    expect(seen).toHaveLength(2);
    expect(B.replicas('quota', key).sort()).toEqual([a.name, b.name].sort());
    await Promise.all([A.close(), B.close()]);
  });
});
