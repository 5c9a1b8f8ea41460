// Canonical text of a lock's resource id, so that equal values name the same lock on every
// node: `{ a: 1, b: 2 }` and `{ b: 2, a: 1 }` give the same key, `1` and `'1'` do not.
//
// Covers what the wire codec carries: strings, numbers, bigints, booleans, null, undefined,
// arrays, plain objects (own enumerable keys, sorted), Uint8Array/Buffer, Date, Map and Set
// (entries sorted by their own canonical text). Anything else (functions, symbols, cycles)
// is refused with a clear error. The text is readable on purpose: it is what `stats()`
// shows as the lock's name.
import { InvalidOptionError } from '../../errors.js';

/** Largest canonical text accepted, in characters: a resource id is a name, not a payload. */
export const MAX_RESOURCE_KEY = 16_384;

/** The canonical text of `resource`; throws InvalidOptionError if it cannot be a resource id. */
export function resourceKey(resource: unknown): string {
  // The common case (a string id) without the walk.
  if (typeof resource === 'string') {
    const s = JSON.stringify(resource);
    if (s.length > MAX_RESOURCE_KEY) tooLong(resource);
    return s;
  }
  const out: string[] = [];
  write(resource, out, new Set(), resource);
  const s = out.join('');
  if (s.length > MAX_RESOURCE_KEY) tooLong(resource);
  return s;
}

function tooLong(resource: unknown): never {
  throw new InvalidOptionError('resource', `an id whose canonical text is at most ${MAX_RESOURCE_KEY} characters`, resource);
}

function bad(resource: unknown, what: string): never {
  throw new InvalidOptionError('resource', `a string or a value the wire codec encodes (found ${what})`, resource);
}

function write(v: unknown, out: string[], seen: Set<object>, root: unknown): void {
  switch (typeof v) {
    case 'string':
      out.push(JSON.stringify(v));
      return;
    case 'number':
      // -0 and 0 are the same id (they are ===); NaN is one id.
      out.push(Object.is(v, -0) ? '0' : String(v));
      return;
    case 'bigint':
      out.push(`${v}n`);
      return;
    case 'boolean':
      out.push(v ? 'true' : 'false');
      return;
    case 'undefined':
      out.push('undefined');
      return;
    case 'object':
      break;
    default:
      bad(root, `a ${typeof v}`);
  }
  if (v === null) {
    out.push('null');
    return;
  }
  const obj = v as object;
  if (seen.has(obj)) bad(root, 'a cycle');
  seen.add(obj);
  if (Array.isArray(obj)) {
    out.push('[');
    obj.forEach((item, i) => {
      if (i > 0) out.push(',');
      write(item, out, seen, root);
    });
    out.push(']');
  } else if (obj instanceof Uint8Array) {
    out.push(`bin(${Buffer.from(obj.buffer, obj.byteOffset, obj.byteLength).toString('hex')})`);
  } else if (obj instanceof Date) {
    out.push(`date(${obj.getTime()})`);
  } else if (obj instanceof Map) {
    const entries = [...obj].map(([k, val]) => [sub(k, seen, root), sub(val, seen, root)] as const);
    entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    out.push(`map{${entries.map(([k, val]) => `${k}=>${val}`).join(',')}}`);
  } else if (obj instanceof Set) {
    const items = [...obj].map((item) => sub(item, seen, root)).sort();
    out.push(`set[${items.join(',')}]`);
  } else {
    const keys = Object.keys(obj).sort();
    out.push('{');
    keys.forEach((k, i) => {
      if (i > 0) out.push(',');
      out.push(JSON.stringify(k), ':');
      write((obj as Record<string, unknown>)[k], out, seen, root);
    });
    out.push('}');
  }
  seen.delete(obj);
}

function sub(v: unknown, seen: Set<object>, root: unknown): string {
  const out: string[] = [];
  write(v, out, seen, root);
  return out.join('');
}
