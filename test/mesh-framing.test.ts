// Framing and codec, pure and in process (no sockets), fuzzed with fast-check.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { FrameDecoder, encodeFrame, FRAME_HEADER_SIZE } from '../src/mesh/framing.js';
import { decode, decodeStrict, encode, encodeStrict, payloadOf, REF_EXT } from '../src/mesh/codec.js';
import { ProtocolError, SerializationError } from '../src/errors.js';
import { ActorSystem } from '../src/actors/system.js';
import { ActorRef } from '../src/actors/ref.js';

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Splits `bytes` at the given cut points (any order, duplicates allowed). */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    chunks.push(bytes.slice(prev, p));
    prev = p;
  }
  return chunks;
}

describe('FrameDecoder', () => {
  test('any frames, cut anywhere into chunks, come out whole and in order', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (payloads, cuts) => {
        const stream = concat(payloads.map(encodeFrame));
        const decoder = new FrameDecoder(1024);
        const out: Uint8Array[] = [];
        for (const chunk of split(stream, cuts)) decoder.push(chunk, (f) => out.push(f.slice()));
        expect(out).toEqual(payloads);
        expect(decoder.buffered).toBe(0);
      }),
      { numRuns: 500 },
    );
  });

  test('a frame inside one chunk is a view of that chunk (no copy)', () => {
    const chunk = concat([encodeFrame(new Uint8Array([1, 2, 3])), encodeFrame(new Uint8Array([4]))]);
    const frames: Uint8Array[] = [];
    new FrameDecoder().push(chunk, (f) => frames.push(f));
    expect(frames.map((f) => [...f])).toEqual([[1, 2, 3], [4]]);
    expect(frames.every((f) => f.buffer === chunk.buffer)).toBe(true);
  });

  test('one large frame fed one byte at a time arrives once, intact', () => {
    const payload = new Uint8Array(200_000).map((_, i) => i * 7);
    const stream = encodeFrame(payload);
    const decoder = new FrameDecoder();
    const out: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i++) decoder.push(stream.subarray(i, i + 1), (f) => out.push(f));
    expect(out).toHaveLength(1);
    expect(Buffer.from(out[0]!).equals(Buffer.from(payload))).toBe(true);
  });

  test('an oversize length is refused on the prefix alone, before any payload; the decoder stays dead', () => {
    const decoder = new FrameDecoder(100);
    const good: number[] = [];
    const chunk = concat([encodeFrame(new Uint8Array([9])), new Uint8Array([0xff, 0xff, 0xff, 0xff])]);
    let err: unknown;
    try {
      decoder.push(chunk, (f) => good.push(...f));
    } catch (e) {
      err = e;
    }
    expect(good).toEqual([9]); // frames before the bad one were delivered
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).reason).toBe('frame_too_large');
    expect(decoder.buffered).toBe(0); // nothing buffered for the bad frame
    expect(() => decoder.push(new Uint8Array([0, 0, 0, 0]), () => {})).toThrow(ProtocolError);
  });

  test('a length prefix split over chunks is checked when complete', () => {
    const decoder = new FrameDecoder(10);
    decoder.push(new Uint8Array([0, 0]), () => {});
    expect(() => decoder.push(new Uint8Array([0, 11]), () => {})).toThrow(/exceeds the maximum frame size of 10/);
  });

  test('random byte streams either yield frames or a ProtocolError, never anything else', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }), (chunks) => {
        const decoder = new FrameDecoder(1 << 16);
        try {
          for (const c of chunks) decoder.push(c, () => {});
        } catch (e) {
          expect(e).toBeInstanceOf(ProtocolError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('codec', () => {
  const system = new ActorSystem({ name: 'codec-test-node' });

  test('plain data survives encode/decode, and the headroom holds the frame length', () => {
    fc.assert(
      // `__proto__` keys are renamed by the decoder (see the next test), so they are left out here.
      fc.property(fc.jsonValue().filter((v) => !JSON.stringify(v).includes('"__proto__"')), (value) => {
        const buf = encode([20, 1, 'id', value]);
        expect(new DataView(buf.buffer, buf.byteOffset).getUint32(0)).toBe(buf.length - FRAME_HEADER_SIZE);
        expect(decode(payloadOf(buf), system)).toEqual([20, 1, 'id', JSON.parse(JSON.stringify([value]))[0]]);
      }),
      { numRuns: 500 },
    );
  });

  test('a __proto__ key from the wire cannot replace an object prototype', () => {
    const hostile = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}') as object;
    const back = decode(payloadOf(encode(hostile)), system) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(back.polluted).toBeUndefined();
    expect(back.ok).toBe(1);
  });

  test('binaries survive as bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1000 }), (bytes) => {
        const back = decode(payloadOf(encode({ bytes })), system) as { bytes: Uint8Array };
        expect([...back.bytes]).toEqual([...bytes]);
      }),
    );
  });

  test('an ActorRef travels as an extension and is decoded bound to the receiving runtime', () => {
    const other = new ActorSystem({ name: 'codec-test-other' });
    const ref = new ActorRef('codec-test-far', 'abc.1');
    const buf = encode({ to: ref, plain: { node: 'n', id: 'i' } });
    expect([...payloadOf(buf)]).toContain(REF_EXT);
    const back = decode(payloadOf(buf), other) as { to: ActorRef; plain: object };
    expect(back.to).toBeInstanceOf(ActorRef);
    expect(back.to.equals(ref)).toBe(true);
    expect({ ...back.to }).toEqual({ node: 'codec-test-far', id: 'abc.1' });
    expect(back.plain).not.toBeInstanceOf(ActorRef); // plain data stays plain
    // Bound to `other`: calling it goes through that runtime (which has no mesh here).
    return expect(back.to.call('x')).rejects.toMatchObject({ name: 'NodeDownError', node: 'codec-test-far' }).finally(() => other.close());
  });

  test.each([
    ['a function', { f: () => 1 }],
    ['a nested function', [1, { deep: [() => 2] }]],
    ['a symbol', { s: Symbol('x') }],
    ['a cyclic structure', (() => {
      const o: Record<string, unknown> = {};
      o.self = o;
      return o;
    })()],
  ])('%s cannot be encoded: SerializationError', (_what, value) => {
    expect(() => encode(value)).toThrow(SerializationError);
  });

  test('the strict decoder enforces its limits', () => {
    expect(() => decodeStrict(payloadOf(encodeStrict(['x'.repeat(2000)])))).toThrow(ProtocolError);
    expect(() => decodeStrict(payloadOf(encodeStrict(new Array(17).fill(0))))).toThrow(ProtocolError);
    expect(() => decodeStrict(payloadOf(encodeStrict([new Uint8Array(300)])))).toThrow(ProtocolError);
    // An extension (e.g. an ActorRef) is not accepted before authentication.
    expect(() => decodeStrict(payloadOf(encode([new ActorRef('a', 'b')])))).toThrow(ProtocolError);
    expect(decodeStrict(payloadOf(encodeStrict([1, 'name', new Uint8Array(32)])))).toEqual([1, 'name', new Uint8Array(32)]);
  });

  test('random payloads make both decoders return a value or throw ProtocolError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 128 }), (bytes) => {
        for (const fn of [() => decodeStrict(bytes), () => decode(bytes, system)]) {
          try {
            fn();
          } catch (e) {
            expect(e).toBeInstanceOf(ProtocolError);
          }
        }
      }),
      { numRuns: 3000 },
    );
  });
});
