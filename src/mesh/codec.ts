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
//   (functions, symbols, cyclic structures): the caller learns before anything is sent.
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

/** Encodes `msg` (with header headroom); throws SerializationError if it cannot. */
export function encode(msg: unknown): Uint8Array {
  let buf: Uint8Array;
  try {
    buf = packr.pack(msg, RESERVE_START_SPACE | FRAME_HEADER_SIZE);
  } catch (err) {
    if (err instanceof SerializationError) throw err;
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
    return unpackr.unpack(payload);
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError('bad_payload', `undecodable frame: ${(err as Error)?.message}`, { cause: err });
  } finally {
    binding = outer;
  }
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

