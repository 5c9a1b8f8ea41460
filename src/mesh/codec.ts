// The wire codec: msgpack payloads, encoded into buffers that keep FRAME_HEADER_SIZE bytes of
// headroom in front so a transport can write its length prefix in place (no copy).
//
// - Authenticated traffic uses msgpackr (fast). An ActorRef inside a message travels as a
//   msgpack extension (type REF_EXT: [node, id]) and is decoded into an ActorRef bound to
//   the receiving node's ActorSystem: `decode` takes that system and sets it for the
//   duration of the (synchronous) decode.
// - Anything read before the peer is authenticated goes through @msgpack/msgpack's Decoder
//   with strict length limits (strings, arrays, maps, binaries, extensions), so an
//   unauthenticated peer cannot make us allocate much or build exotic values.
// - `encode` fails with SerializationError on anything msgpack cannot carry faithfully
//   (functions, symbols, cyclic structures, BigInts beyond 64 bits): the caller learns
//   before anything is sent.
// - The decoder reads everything the encoder writes. Maps decode as plain objects (the
//   fast path), which msgpackr cannot do for a Map whose keys are objects, arrays or
//   binaries; such a frame is decoded again (rare, so the fast path pays nothing) with
//   maps as Maps, and every map whose keys are all strings/numbers/booleans is then turned
//   back into a plain object: only a map with a non-primitive key arrives as a Map.
// - `peekEnvelope` reads the tag and first integer of a frame without decoding the rest,
//   so a frame whose payload is undecodable fails only its call (./connection.ts).
//
// Choice of msgpackr options (measured, see bench/ and docs/mesh.md): plain maps
// (`useRecords: false`). Records embed a structure definition in each standalone message,
// which only pays off for repeated shapes within one message, and sequential structure
// sharing would tie every frame to the decoder state of one connection.
import { Decoder as StrictDecoder, Encoder as StrictEncoder } from '@msgpack/msgpack';
import { Packr, Unpackr, addExtension, RESERVE_START_SPACE } from 'msgpackr';
import { ProtocolError, SerializationError } from '../errors.js';
import { ActorRef, type RefRouter } from '../actors/ref.js';
import { FRAME_HEADER_SIZE, writeFrameHeader } from './framing.js';

/** msgpack extension type of an ActorRef. */
export const REF_EXT = 0x41;

/** What decoding needs to bind refs: the receiving node's runtime. */
export interface RefBinder extends RefRouter {
  readonly name: string;
}

/** The runtime refs decoded right now are bound to (set only during `decode`). */
let binding: RefBinder | undefined;

addExtension({
  Class: ActorRef,
  type: REF_EXT,
  write: (ref: ActorRef) => [ref.node, ref.id],
  read: (data: unknown) => {
    if (!Array.isArray(data) || typeof data[0] !== 'string' || typeof data[1] !== 'string') {
      throw new ProtocolError('bad_ref', 'malformed ActorRef on the wire');
    }
    return new ActorRef(data[0], data[1], binding);
  },
});

const notEncodable = (what: string) => (): never => {
  throw new SerializationError(`a ${what} cannot be sent to another node`);
};

const packr = new Packr({
  useRecords: false,
  // Functions would otherwise be sent as `undefined` silently.
  writeFunction: notEncodable('function'),
});
// copyBuffers: a binary in a message must not pin the whole socket chunk it arrived in.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, copyBuffers: true });
/** For frames with a map that has non-primitive keys (see `decode`). */
const mapUnpackr = new Unpackr({ useRecords: false, mapsAsObjects: false, copyBuffers: true });

/** Encodes `msg` (with header headroom); throws SerializationError if it cannot. */
export function encode(msg: unknown): Uint8Array {
  let buf: Uint8Array;
  try {
    buf = packr.pack(msg, RESERVE_START_SPACE | FRAME_HEADER_SIZE);
  } catch (err) {
    if (err instanceof SerializationError) throw err;
    if (err instanceof RangeError && /too large to fit in MessagePack 64-bit/.test(err.message)) {
      throw new SerializationError('a BigInt outside the 64-bit integer range cannot be sent to another node', { cause: err });
    }
    const why = err instanceof RangeError ? 'a cyclic or too deeply nested structure' : (err as Error)?.message;
    throw new SerializationError(`message cannot be encoded: ${why}`, { cause: err });
  }
  writeFrameHeader(buf, buf.length - FRAME_HEADER_SIZE);
  return buf;
}

/** Decodes an authenticated payload; ActorRefs in it are bound to `system`. */
export function decode(payload: Uint8Array, system: RefBinder | undefined): unknown {
  const outer = binding;
  binding = system;
  try {
    try {
      return unpackr.unpack(payload);
    } catch (err) {
      // msgpackr's message for a map key that cannot become a property name.
      if (!(err instanceof Error) || !err.message.startsWith('Invalid property type')) throw err;
      return objectsFromMaps(mapUnpackr.unpack(payload));
    }
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError('bad_payload', `undecodable frame: ${(err as Error)?.message}`, { cause: err });
  } finally {
    binding = outer;
  }
}

/** After a decode with maps as Maps: every map whose keys are all primitives becomes a plain object again. */
function objectsFromMaps(v: unknown): unknown {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = objectsFromMaps(v[i]);
    return v;
  }
  if (!(v instanceof Map)) return v;
  let primitiveKeys = true;
  for (const k of v.keys()) if (k !== null && typeof k === 'object') primitiveKeys = false;
  if (!primitiveKeys) {
    const out = new Map<unknown, unknown>();
    for (const [k, x] of v) out.set(objectsFromMaps(k), objectsFromMaps(x));
    return out;
  }
  const obj: Record<string, unknown> = {};
  for (const [k, x] of v) {
    const key = String(k);
    // As the fast path does: a key named __proto__ must never replace a prototype.
    obj[key === '__proto__' ? '__proto_' : key] = objectsFromMaps(x);
  }
  return obj;
}

/**
 * The tag and the first integer after it (callId, or monitorId) of an authenticated frame,
 * read without decoding the rest; undefined if the frame does not start that way.
 */
export function peekEnvelope(payload: Uint8Array): { tag: number; id: number | undefined } | undefined {
  let pos: number;
  const b0 = payload[0];
  if (b0 === undefined) return undefined;
  if (b0 >= 0x91 && b0 <= 0x9f) pos = 1; // fixarray
  else if (b0 === 0xdc) pos = 3; // array 16
  else if (b0 === 0xdd) pos = 5; // array 32
  else return undefined;
  const tag = payload[pos++];
  if (tag === undefined || tag > 0x7f) return undefined;
  return { tag, id: readUint(payload, pos) };
}

function readUint(p: Uint8Array, pos: number): number | undefined {
  const b = p[pos];
  if (b === undefined) return undefined;
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const need = (n: number) => pos + 1 + n <= p.length;
  if (b <= 0x7f) return b;
  if (b === 0xcc && need(1)) return view.getUint8(pos + 1);
  if (b === 0xcd && need(2)) return view.getUint16(pos + 1);
  if (b === 0xce && need(4)) return view.getUint32(pos + 1);
  if (b === 0xcf && need(8)) return Number(view.getBigUint64(pos + 1));
  if (b === 0xcb && need(8)) return view.getFloat64(pos + 1);
  return undefined;
}

/** Limits for anything read before authentication: handshake messages are small. */
export const STRICT_LIMITS = {
  maxStrLength: 1024,
  maxBinLength: 256,
  maxArrayLength: 16,
  maxMapLength: 16,
  maxExtLength: 0,
} as const;

const strictDecoder = new StrictDecoder(STRICT_LIMITS);
const strictEncoder = new StrictEncoder();

/** Decodes a payload from an unauthenticated peer, under STRICT_LIMITS. */
export function decodeStrict(payload: Uint8Array): unknown {
  try {
    return strictDecoder.decode(payload);
  } catch (err) {
    throw new ProtocolError('bad_handshake', `undecodable handshake frame: ${(err as Error)?.message}`, { cause: err });
  }
}

/** Encodes a handshake message (with header headroom). */
export function encodeStrict(msg: unknown): Uint8Array {
  const body = strictEncoder.encode(msg);
  const buf = new Uint8Array(FRAME_HEADER_SIZE + body.length);
  buf.set(body, FRAME_HEADER_SIZE);
  writeFrameHeader(buf, body.length);
  return buf;
}

/** The payload of an encoded buffer (without its headroom). */
export const payloadOf = (buf: Uint8Array): Uint8Array => buf.subarray(FRAME_HEADER_SIZE);

