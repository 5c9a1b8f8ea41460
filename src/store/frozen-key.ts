// The key an entry keeps: a copy of the first key given for it, so that a caller changing its
// own object later does not change what the next refresh of that entry fetches. Plain objects
// and arrays in it are frozen, so a fetch function cannot change it either; a Map, Set, Date
// or binary in a key is copied but cannot be frozen (a fetch must not change those).
import { ARRAY, ARRAY_BUFFER, DATE, MAP, PLAIN, SET, VIEW, objectKind } from '../mesh/value-kind.js';

/** A copy of `key` (see above). Call only with a key `canonicalKey` accepted. */
export function frozenKey<K>(key: K): K {
  return copy(key) as K;
}

function copy(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  switch (objectKind(v)) {
    case PLAIN: {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v)) out[k] = copy((v as Record<string, unknown>)[k]);
      return Object.freeze(out);
    }
    case ARRAY:
      return Object.freeze((v as unknown[]).map(copy));
    case MAP:
      return new Map([...(v as Map<unknown, unknown>)].map(([k, x]) => [copy(k), copy(x)]));
    case SET:
      return new Set([...(v as Set<unknown>)].map(copy));
    case DATE:
      return new Date((v as Date).getTime());
    case VIEW: {
      if (v instanceof Buffer) return Buffer.from(v);
      if (v instanceof DataView) return new DataView(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
      return (v as Uint8Array).slice();
    }
    case ARRAY_BUFFER:
      return (v as ArrayBuffer).slice(0);
    default:
      return v; // an ActorRef: immutable data
  }
}
