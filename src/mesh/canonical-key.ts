// Canonical text of a value used as a name: the key of a keyed expirable (the store) and the
// resource id of a lock (./global), so that values equal by value name the same entry, or
// the same lock, on every node. One encoder for both: two keys are the same store entry
// exactly when they are the same lock.
//
// Accepted: exactly what the wire codec carries (./value-kind.ts, ./codec.ts), so a key that
// travelled to another node has the same text there. Refused with InvalidOptionError naming
// the option (`key`, `resource`) and where the problem is: functions, symbols, class
// instances, holes of sparse arrays, own keys named `__proto__`, cycles, and text longer
// than the limit (a key is a name, not a payload).
//
// Rules:
// - A string is its own text (no allocation: the read path of a string key) unless it starts
//   with ESC. Anything else is ESC followed by a typed encoding, in which a string is JSON:
//   so `'1'` and `1` differ, and a string starting with ESC cannot meet a typed encoding.
// - Numbers by value as `===` sees them, but with NaN one key (as Map and Set do): `0` and
//   `-0` are the same key, `NaN` is one key. A BigInt is never the number of the same value
//   (`1n` is not `1`).
// - `undefined` and `null` differ, inside arrays and objects too; `{ a: undefined }` is not
//   `{}` (the codec carries both as they are).
// - Plain objects by their own enumerable string keys, in sorted order: `{ a: 1, b: 2 }` is
//   `{ b: 2, a: 1 }`. An object with a null prototype is the plain object of the same keys.
// - Map and Set by content, in any insertion order: entries (elements) sorted by their text.
// - Date by its time (all invalid dates are one key). Typed arrays, DataView and ArrayBuffer
//   by type and bytes; a Buffer is the Uint8Array of the same bytes. ActorRef by node and id.
//
// The text is readable on purpose: it is what lock statistics show as the lock's name.
import { InvalidOptionError } from '../errors.js';
import { ActorRef } from '../actors/ref.js';
import { ARRAY, ARRAY_BUFFER, DATE, MAP, MAX_DEPTH, PLAIN, REF, SET, VIEW, findCycle, keyText, objectKind, propertyPath, refusedObject } from './value-kind.js';

/** First character of every key text that is not a string's own text. */
export const KEY_ESC = '\u0001';
/** Largest canonical text of a store key, in characters. */
export const MAX_KEY_TEXT = 8_192;
/**
 * Largest canonical text of a lock resource: room for a store key's text and the prefix the
 * store puts before it (namespace and expirable name) in the entry's lock.
 */
export const MAX_RESOURCE_TEXT = 16_384;

/**
 * The canonical text of `value`; throws InvalidOptionError naming `option` if it cannot be a
 * key (the codec does not carry it, or its text is longer than `max` characters).
 */
export function canonicalKey(value: unknown, option = 'key', max = MAX_KEY_TEXT): string {
  let s: string;
  if (typeof value === 'string' && value.charCodeAt(0) !== 1) {
    s = value;
  } else {
    try {
      s = KEY_ESC + text(value, 0);
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      throw new InvalidOptionError(option, `a value the wire codec carries (${describe(err, value, option)})`, value);
    }
  }
  if (s.length > max) {
    throw new InvalidOptionError(option, `a value whose canonical text is at most ${max} characters (it has ${s.length})`, value);
  }
  return s;
}

/** Thrown inside the walk; `path` is filled in while it unwinds. */
class Refusal {
  readonly path: string[] = [];
  constructor(readonly reason: string) {}
}

const DEEP = `nests deeper than ${MAX_DEPTH} levels`;

function describe(err: Refusal, root: unknown, option: string): string {
  if (err.reason === DEEP) {
    const cycle = findCycle(root);
    if (cycle) return `${option}${cycle.at.join('')} refers back to ${option}${cycle.to.join('')}: a cycle`;
  }
  const where = option + err.path.join('');
  return `${where.length > 300 ? `${where.slice(0, 300)}…` : where} ${err.reason}`;
}

function text(v: unknown, depth: number): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return v === 0 ? '0' : String(v); // -0 is 0; NaN, Infinity, -Infinity as themselves
    case 'bigint':
      return `${v}n`;
    case 'boolean':
      return v ? 'true' : 'false';
    case 'undefined':
      return 'undefined';
    case 'object':
      return v === null ? 'null' : objectText(v, depth);
    default:
      throw new Refusal(`is a ${typeof v}`);
  }
}

function objectText(v: object, depth: number): string {
  const kind = objectKind(v);
  if ((kind === PLAIN || kind === ARRAY || kind === MAP || kind === SET) && depth >= MAX_DEPTH) throw new Refusal(DEEP);
  switch (kind) {
    case PLAIN:
      return plainText(v as Record<string, unknown>, depth + 1);
    case ARRAY:
      return arrayText(v as unknown[], depth + 1);
    case MAP:
      return mapText(v as Map<unknown, unknown>, depth + 1);
    case SET:
      return setText(v as Set<unknown>, depth + 1);
    case DATE:
      return `Date(${(v as Date).getTime()})`;
    case VIEW: {
      const view = v as ArrayBufferView;
      const name = view instanceof Buffer ? 'Uint8Array' : (view.constructor as { name: string }).name;
      return `${name}(${Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('hex')})`;
    }
    case ARRAY_BUFFER:
      return `ArrayBuffer(${Buffer.from(v as ArrayBuffer).toString('hex')})`;
    case REF:
      return `Ref(${JSON.stringify((v as ActorRef).node)},${JSON.stringify((v as ActorRef).id)})`;
    default:
      throw new Refusal(refusedObject(v));
  }
}

function plainText(obj: Record<string, unknown>, depth: number): string {
  const keys = Object.keys(obj).sort();
  let s = '{';
  let key = '';
  try {
    for (let i = 0; i < keys.length; i++) {
      key = keys[i]!;
      if (key === '__proto__') throw new Refusal('is an own key named __proto__, which the codec does not carry');
      s += `${i > 0 ? ',' : ''}${JSON.stringify(key)}:${text(obj[key], depth)}`;
    }
  } catch (err) {
    throw at(err, propertyPath(key));
  }
  return `${s}}`;
}

function arrayText(arr: unknown[], depth: number): string {
  let s = '[';
  let i = 0;
  try {
    for (; i < arr.length; i++) {
      const x = arr[i];
      if (x === undefined && !(i in arr)) throw new Refusal('is a hole of a sparse array');
      s += `${i > 0 ? ',' : ''}${text(x, depth)}`;
    }
  } catch (err) {
    throw at(err, `[${i}]`);
  }
  return `${s}]`;
}

function mapText(map: Map<unknown, unknown>, depth: number): string {
  const entries: string[] = [];
  let i = 0;
  for (const [k, x] of map) {
    let kt: string;
    try {
      kt = text(k, depth);
    } catch (err) {
      throw at(err, `.keys()[${i}]`);
    }
    try {
      entries.push(`${kt}=>${text(x, depth)}`);
    } catch (err) {
      throw at(err, `.get(${keyText(k, i)})`);
    }
    i++;
  }
  // Distinct keys of a Map may have one text (two equal objects): sorting whole entries
  // orders those by value, so the text does not depend on insertion order either.
  return `Map{${entries.sort().join(',')}}`;
}

function setText(set: Set<unknown>, depth: number): string {
  const items: string[] = [];
  let i = 0;
  for (const x of set) {
    try {
      items.push(text(x, depth));
    } catch (err) {
      throw at(err, `.values()[${i}]`);
    }
    i++;
  }
  return `Set[${items.sort().join(',')}]`;
}

function at(err: unknown, segment: string): unknown {
  if (err instanceof Refusal) err.path.unshift(segment);
  return err;
}
