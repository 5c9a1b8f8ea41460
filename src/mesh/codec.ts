// The wire codec: msgpack payloads, encoded into buffers that keep FRAME_HEADER_SIZE bytes of
// headroom in front so a transport can write its length prefix in place (no copy).
//
// Two parts, so that only the values that travel pay for their checks:
// - `encode(frame)` packs a frame as it is. The mesh's own frames (heartbeats, members, the
//   envelope of a call) and the messages of the runtime's own services (locks and process
//   groups, sent with `ActorSystem.castPlain`) are plain data built by the library, so they
//   are packed with no walk: the hot path of the lock protocol pays nothing for values.
// - `toWireValue(value, label)` is applied to what a caller hands the mesh: the message of a
//   call or a cast, and a reply (./remote.ts). It walks the value once and either refuses it
//   with a SerializationError naming where the problem is (`message.user.save is a
//   function`), before anything is sent, or returns it ready to pack: the value itself when
//   it holds no Map and no -0 (the usual case: no allocation), otherwise a copy of the
//   containers on the way to them. `checkEncodable` is the same check for code that only
//   wants to know (the store, on a fetched value).
//
// What travels, and arrives as it left (same type, same contents):
// - strings, booleans, null, undefined (also inside objects and arrays), numbers (-0, NaN
//   and ±Infinity included), BigInts of any size;
// - plain objects (own enumerable string keys; one with a null prototype arrives with
//   Object.prototype, as structuredClone does), arrays, Map, Set, Date (invalid ones too),
//   ArrayBuffer, DataView, each typed array as its own type, Buffer as a Buffer;
// - ActorRef, as extension REF_EXT ([node, id]), bound on arrival to the receiving node.
// Refused: functions, symbols, class instances (a subclass of Map, Array… included), Errors,
// Promises, WeakMaps, SharedArrayBuffers, holes of sparse arrays, own keys named
// `__proto__` (the decoder renames them so no message can replace a prototype), cycles and
// nesting deeper than MAX_DEPTH. A value reached twice arrives as two equal copies (shared
// references are not kept; a cycle is refused rather than followed). Properties of arrays
// beyond their indices, and of Maps, Sets, Dates and typed arrays, are not carried.
//
// How: msgpackr with `moreTypes` (Set, typed arrays, ArrayBuffer, DataView and BigInts
// beyond 64 bits as its own extensions) and plain msgpack maps for objects. A msgpack map
// cannot say whether it was an object or a Map, so a Map travels as extension MAP_EXT (its
// entries, flat), and -0, which msgpack writes as the integer 0, as extension NEG_ZERO_EXT.
// Measured against msgpackr's `structuredClone` option (records for objects, which keep Maps
// apart from objects, and references): bench/codec.ts, docs/mesh.md.
//
// - Authenticated traffic uses msgpackr. `decode` takes the receiving node's runtime, to
//   bind the ActorRefs it decodes, and sets it for the duration of the (synchronous) decode.
// - Anything read before the peer is authenticated goes through @msgpack/msgpack's Decoder
//   with strict length limits (strings, arrays, maps, binaries, extensions), so an
//   unauthenticated peer cannot make us allocate much or build exotic values.
// - `peekEnvelope` reads the tag and first integer of a frame without decoding the rest,
//   so a frame whose payload is undecodable fails only its call (./connection.ts).
//
// Wire compatibility: a change of what a frame's bytes mean (a new extension, a type written
// differently) bumps PROTOCOL_VERSION in ./protocol.ts, with a line in its history.
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
import { ARRAY, MAP, MAX_DEPTH, PLAIN, REFUSED, SET, findCycle, keyText, objectKind, propertyPath, refusedObject } from './value-kind.js';

export { MAX_DEPTH };

/** msgpack extension type of an ActorRef. */
export const REF_EXT = 0x41;
/** msgpack extension type of a Map: its entries as one flat array [k1, v1, k2, v2, …]. */
export const MAP_EXT = 0x4d;
/** msgpack extension type of -0. */
export const NEG_ZERO_EXT = 0x2d;

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

/** A Map on its way to the wire (see toWireValue): its entries, flat, already wire values. */
class WireMap {
  constructor(readonly entries: unknown[]) {}
}

addExtension({
  Class: WireMap,
  type: MAP_EXT,
  write: (m: WireMap) => m.entries,
  read: (data: unknown) => {
    if (!Array.isArray(data) || data.length % 2 !== 0) throw new ProtocolError('bad_payload', 'malformed Map on the wire');
    const map = new Map<unknown, unknown>();
    for (let i = 0; i < data.length; i += 2) map.set(data[i], data[i + 1]);
    return map;
  },
});

/** -0 on its way to the wire. */
class NegativeZero {}
const NEG_ZERO = new NegativeZero();

addExtension({
  Class: NegativeZero,
  type: NEG_ZERO_EXT,
  write: () => 0,
  read: () => -0,
});

const notEncodable = (what: string) => (): never => {
  throw new SerializationError(`a ${what} cannot be sent to another node`);
};

const packr = new Packr({
  useRecords: false,
  moreTypes: true,
  // A class with a toJSON is refused by toWireValue; here, an object key named toJSON must
  // stay data.
  useToJSON: false,
  // Functions would otherwise be sent as `undefined` silently (a frame built here never
  // holds one; toWireValue refuses them in values with a better message).
  writeFunction: notEncodable('function'),
});
// copyBuffers: a binary in a message must not pin the whole socket chunk it arrived in.
// structuredClone: false refuses msgpackr's reference extensions, which we never write.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, copyBuffers: true, structuredClone: false });

/** Encodes the frame `msg` as it is (with header headroom); throws SerializationError if it cannot. */
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

// ---- values ------------------------------------------------------------------------------

/**
 * `value` ready to be put in a frame given to `encode`: the value itself, or a copy of the
 * containers on the way to its Maps and -0s. Throws SerializationError, naming the place in
 * `value` (called `label` in the message: `label.user.save is a function`), if it holds
 * anything that would not arrive as it left. Pure and synchronous; `value` is not changed.
 */
export function toWireValue(value: unknown, label: string): unknown {
  try {
    return wire(value, 0);
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    const where = label + err.path.join('');
    if (err.reason === DEEP) {
      const cycle = findCycle(value);
      if (cycle) throw new SerializationError(`${label}${cycle.at.join('')} refers back to ${label}${cycle.to.join('')} (a cycle cannot be sent)`);
    }
    throw new SerializationError(`${where.length > 300 ? `${where.slice(0, 300)}…` : where} ${err.reason}`);
  }
}

/**
 * Throws SerializationError (naming where, as `toWireValue`) if `value` cannot travel to
 * another node and arrive as it left; returns nothing otherwise. For a value about to be
 * shared with the cluster (a fetched value, before it is replicated).
 */
export function checkEncodable(value: unknown, label = 'value'): void {
  toWireValue(value, label);
}

const DEEP = `nests deeper than ${MAX_DEPTH} levels`;

/** Thrown inside the walk; `path` is filled in while it unwinds (no cost unless thrown). */
class Refusal {
  readonly path: string[] = [];
  constructor(readonly reason: string) {}
}

function wire(v: unknown, depth: number): unknown {
  switch (typeof v) {
    case 'string':
    case 'boolean':
    case 'undefined':
    case 'bigint':
      return v;
    case 'number':
      return v === 0 && 1 / v < 0 ? NEG_ZERO : v;
    case 'object':
      return v === null ? v : wireObject(v, depth);
    case 'function':
      throw new Refusal('is a function');
    default:
      throw new Refusal(`is a ${typeof v}`);
  }
}

function wireObject(v: object, depth: number): unknown {
  const kind = objectKind(v);
  if (kind === REFUSED) throw new Refusal(refusedObject(v));
  if (kind > SET) return v; // Date, typed arrays, ArrayBuffer, ActorRef: msgpackr writes them as they are
  if (depth >= MAX_DEPTH) throw new Refusal(DEEP);
  if (kind === PLAIN) return wirePlain(v as Record<string, unknown>, depth + 1);
  if (kind === ARRAY) return wireArray(v as unknown[], depth + 1);
  if (kind === MAP) return wireMap(v as Map<unknown, unknown>, depth + 1);
  return wireSet(v as Set<unknown>, depth + 1);
}

/**
 * False for what `wire` returns as it is without a look (strings, booleans, undefined,
 * BigInts, numbers other than 0): checked inline, so the common leaves cost no call.
 */
const mayChange = (x: unknown): boolean =>
  typeof x === 'object' ? x !== null : typeof x === 'function' || typeof x === 'symbol' || x === 0;

function wirePlain(obj: Record<string, unknown>, depth: number): unknown {
  let out = obj;
  let key = '';
  try {
    for (key in obj) {
      if (key === '__proto__') throw new Refusal('is an own key named __proto__, which the decoder renames');
      const x = obj[key];
      if (mayChange(x)) {
        const y = wire(x, depth);
        if (y !== x) {
          if (out === obj) out = { ...obj };
          out[key] = y;
        }
      }
    }
  } catch (err) {
    throw at(err, propertyPath(key));
  }
  return out;
}

function wireArray(arr: unknown[], depth: number): unknown {
  let out = arr;
  let i = 0;
  try {
    for (; i < arr.length; i++) {
      const x = arr[i];
      if (x === undefined && !(i in arr)) throw new Refusal('is a hole of a sparse array (fill it, e.g. with undefined)');
      if (mayChange(x)) {
        const y = wire(x, depth);
        if (y !== x) {
          if (out === arr) out = arr.slice();
          out[i] = y;
        }
      }
    }
  } catch (err) {
    throw at(err, `[${i}]`);
  }
  return out;
}

function wireMap(map: Map<unknown, unknown>, depth: number): WireMap {
  const entries = new Array<unknown>(map.size * 2);
  let i = 0;
  for (const [k, x] of map) {
    try {
      entries[i] = wire(k, depth);
    } catch (err) {
      throw at(err, `.keys()[${i / 2}]`);
    }
    try {
      entries[i + 1] = wire(x, depth);
    } catch (err) {
      throw at(err, `.get(${keyText(k, i / 2)})`);
    }
    i += 2;
  }
  return new WireMap(entries);
}

function wireSet(set: Set<unknown>, depth: number): unknown {
  let out: unknown[] | undefined;
  let i = 0;
  for (const x of set) {
    let y = x;
    try {
      if (mayChange(x)) y = wire(x, depth);
    } catch (err) {
      throw at(err, `.values()[${i}]`);
    }
    // (NaN !== NaN: compared only when the walk may have replaced it.)
    if (!out && mayChange(x) && y !== x) out = [...set].slice(0, i);
    out?.push(y);
    i++;
  }
  // Its elements stay distinct objects, so a Set of wire values has the same size.
  return out ? new Set(out) : set;
}

function at(err: unknown, segment: string): unknown {
  if (err instanceof Refusal) err.path.unshift(segment);
  return err;
}

// ---- envelopes and the handshake ---------------------------------------------------------

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
