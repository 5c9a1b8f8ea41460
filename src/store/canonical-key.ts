// Canonical text of a key of a keyed expirable, so that keys equal by value are one entry on
// every node: `{ a: 1, b: 2 }` and `{ b: 2, a: 1 }` are the same key, `1` and `'1'` are not.
//
// A string key is its own text (no allocation on the read path) unless it starts with the
// escape character; every other key is the escape character followed by a typed, sorted
// encoding. Keys are what the wire codec carries: strings, numbers, booleans, null, arrays
// and plain objects of those. Anything else is refused with InvalidOptionError.
import { InvalidOptionError } from '../errors.js';

const ESC = '\u0001';
/** Largest canonical text accepted: a key is a name, not a payload. */
export const MAX_KEY_TEXT = 8_192;

/** The canonical text of `key`; throws InvalidOptionError for a key the codec cannot carry. */
export function canonicalKey(key: unknown): string {
  if (typeof key === 'string' && (key.length === 0 || key[0] !== ESC)) {
    if (key.length > MAX_KEY_TEXT) tooLong(key);
    return key;
  }
  const out: string[] = [ESC];
  write(key, out, new Set(), key);
  const s = out.join('');
  if (s.length > MAX_KEY_TEXT) tooLong(key);
  return s;
}

function tooLong(key: unknown): never {
  throw new InvalidOptionError('key', `a key whose canonical text is at most ${MAX_KEY_TEXT} characters`, key);
}

function bad(key: unknown, what: string): never {
  throw new InvalidOptionError('key', `a string, number, boolean, null, array or plain object (found ${what})`, key);
}

function write(v: unknown, out: string[], seen: Set<object>, root: unknown): void {
  switch (typeof v) {
    case 'string':
      out.push(JSON.stringify(v));
      return;
    case 'number':
      if (!Number.isFinite(v)) bad(root, String(v));
      // 0 and -0 are one key, as they are ===.
      out.push('#', Object.is(v, -0) ? '0' : String(v));
      return;
    case 'boolean':
      out.push(v ? 'T' : 'F');
      return;
    case 'object':
      break;
    default:
      bad(root, `a ${typeof v}`);
  }
  if (v === null) {
    out.push('N');
    return;
  }
  if (seen.has(v)) bad(root, 'a cycle');
  seen.add(v);
  if (Array.isArray(v)) {
    out.push('[');
    for (let i = 0; i < v.length; i++) {
      if (i > 0) out.push(',');
      write(v[i], out, seen, root);
    }
    out.push(']');
  } else {
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) bad(root, `an instance of ${(v as object).constructor?.name ?? 'a class'}`);
    const keys = Object.keys(v).sort();
    out.push('{');
    keys.forEach((k, i) => {
      if (i > 0) out.push(',');
      out.push(JSON.stringify(k), ':');
      write((v as Record<string, unknown>)[k], out, seen, root);
    });
    out.push('}');
  }
  seen.delete(v);
}

/**
 * A copy of `key` that nobody can change: kept by the entry and handed to every fetch of it.
 * The caller's own object is not kept: mutating it after the call must not make the next
 * refresh of this entry fetch another key. Call only with a key `canonicalKey` accepted.
 */
export function frozenKey<K>(key: K): K {
  if (typeof key !== 'object' || key === null) return key;
  return deepFreeze(structuredClone(key));
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}
