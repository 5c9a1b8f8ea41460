// fast-check arbitraries of the values the wire codec carries (src/mesh/codec.ts), nested: the
// codec's round-trip property and the canonical keys' rules draw from the same values.
import fc from 'fast-check';

/** Every leaf type the codec carries, -0, NaN, ±Infinity and BigInts beyond 64 bits included. */
export const wireLeaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 4 }),
  fc.double(),
  fc.constantFrom(0, -0, Number.NaN, Infinity, -Infinity, 2 ** 53 + 2),
  fc.integer(),
  fc.bigInt(),
  fc.bigInt({ min: -(2n ** 300n), max: 2n ** 300n }),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.date({ noInvalidDate: true }),
  fc.int8Array({ maxLength: 4 }),
  fc.uint8Array({ maxLength: 4 }),
  fc.uint8ClampedArray({ maxLength: 4 }),
  fc.int16Array({ maxLength: 4 }),
  fc.uint16Array({ maxLength: 4 }),
  fc.int32Array({ maxLength: 4 }),
  fc.uint32Array({ maxLength: 4 }),
  fc.float32Array({ maxLength: 4 }),
  fc.float64Array({ maxLength: 4 }),
  fc.bigInt64Array({ maxLength: 4 }),
  fc.bigUint64Array({ maxLength: 4 }),
  fc.uint8Array({ maxLength: 4 }).map((b) => Buffer.from(b)),
  fc.uint8Array({ maxLength: 4 }).map((b) => b.slice().buffer),
  fc.uint8Array({ maxLength: 4 }).map((b) => new DataView(b.slice().buffer)),
);

/** An own key of a plain object (`__proto__` is refused by the codec, see its own test). */
const objectKey = fc.string({ maxLength: 6 }).filter((k) => k !== '__proto__');

/** Nested plain objects (prototype Object.prototype), arrays, Maps and Sets of `wireLeaf`. */
export const wireValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { maxDepth: 4, depthIdentifier: 'wire' },
    wireLeaf,
    fc.array(tie('value'), { maxLength: 4, depthIdentifier: 'wire' }),
    fc.dictionary(objectKey, tie('value'), { maxKeys: 4, noNullPrototype: true, depthIdentifier: 'wire' }),
    fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 3, depthIdentifier: 'wire' }).map((e) => new Map(e)),
    fc.array(tie('value'), { maxLength: 3, depthIdentifier: 'wire' }).map((a) => new Set(a)),
  ),
})).value;
