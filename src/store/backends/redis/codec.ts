// Encoding of values and states stored in Redis, and decoding of the messages the scripts
// publish (layout in ./scripts.ts). `encodeValue` / `decodeValue` are the one place that
// decides how a value becomes bytes.
import { Packr, unpack } from 'msgpackr';
import { SerializationError } from '../../../errors.js';

const packr = new Packr({ useRecords: false, structuredClone: true, moreTypes: true });

/** A value (or state) as bytes; SerializationError if it cannot be carried. */
export function encodeValue(value: unknown): Buffer {
  if (typeof value === 'function' || typeof value === 'symbol') throw new SerializationError(`a ${typeof value} cannot be stored in Redis`);
  try {
    return packr.pack(value);
  } catch (err) {
    throw new SerializationError('the value cannot be stored in Redis', { cause: err });
  }
}

export function decodeValue(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}

/** What a script published (see ./scripts.ts for the layout). */
export interface Published {
  /**
   * 'w' write, 'c' clear of one entry, 'C' clear of every key of `name` ('*': everything), 'f'
   * lease freed, 'x' a miss round's fetch under lease `v` failed, 'r' a background refresh of `v`
   * failed, 'h' `origin` began or stopped holding the entry.
   */
  readonly kind: 'w' | 'c' | 'C' | 'f' | 'x' | 'r' | 'h';
  readonly name: string;
  readonly canon: string;
  /** Process name of the writer. */
  readonly origin: string;
  readonly v: number;
  readonly has: boolean;
  /** Ms left by the Redis clock when published (-1: never expires). */
  readonly ttl: number;
  readonly hs: boolean;
  /** Encoded value (`[value, expiresAt]`) and state; empty when absent. */
  readonly val: Uint8Array;
  readonly st: Uint8Array;
}

const KINDS = new Set(['w', 'c', 'C', 'f', 'x', 'r', 'h']);

/** Parses a published message; undefined if it is not one of ours. */
export function parsePublished(msg: Buffer): Published | undefined {
  if (msg.length < 4) return undefined;
  const hlen = msg.readUInt32BE(0);
  if (4 + hlen > msg.length) return undefined;
  let h: unknown;
  try {
    h = unpack(msg.subarray(4, 4 + hlen));
  } catch {
    return undefined;
  }
  if (!Array.isArray(h) || h.length !== 10) return undefined;
  const [kind, name, canon, origin, v, has, ttl, hs, vl, sl] = h as [unknown, unknown, unknown, unknown, number, number, number, number, number, number];
  if (typeof kind !== 'string' || !KINDS.has(kind) || typeof name !== 'string' || typeof canon !== 'string' || typeof origin !== 'string') return undefined;
  const start = 4 + hlen;
  if (start + vl + sl !== msg.length) return undefined;
  return {
    kind: kind as Published['kind'],
    name,
    canon,
    origin,
    v: Number(v),
    has: has === 1,
    ttl: Number(ttl),
    hs: hs === 1,
    val: msg.subarray(start, start + vl),
    st: msg.subarray(start + vl, start + vl + sl),
  };
}
