// Which objects the mesh carries faithfully, in one place, so the wire codec (./codec.ts) and
// the canonical keys (./canonical-key.ts) accept exactly the same values.
//
// Carried: plain objects (prototype Object.prototype or null; they arrive with
// Object.prototype, as structuredClone makes them), arrays, Map, Set, Date, ArrayBuffer,
// DataView, the typed arrays of the list below (Buffer included, which stays a Buffer) and
// ActorRef. The constructor must be exactly one of these: a subclass is a class instance,
// and a class instance does not travel (its prototype and methods would be lost).
// Primitives other than symbols travel too; that check is the callers' (a `typeof` switch).
import { ActorRef } from '../actors/ref.js';

export const PLAIN = 0;
export const ARRAY = 1;
export const MAP = 2;
export const SET = 3;
export const DATE = 4;
/** A typed array, Buffer or DataView. */
export const VIEW = 5;
export const ARRAY_BUFFER = 6;
export const REF = 7;
/** An object the mesh does not carry. */
export const REFUSED = -1;

export type ObjectKind = -1 | 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7;

/** The typed arrays the codec writes as their own type (msgpackr's list, plus Buffer). */
const VIEWS: ReadonlySet<object> = new Set<object>(
  [
    Int8Array,
    Uint8Array,
    Uint8ClampedArray,
    Int16Array,
    Uint16Array,
    Int32Array,
    Uint32Array,
    Float32Array,
    Float64Array,
    BigInt64Array,
    BigUint64Array,
    Buffer,
    DataView,
  ].map((c) => c.prototype),
);

/**
 * The kind of a non-null object. By prototype, not by `constructor`: a plain object may
 * have an own property named `constructor`.
 */
export function objectKind(v: object): ObjectKind {
  const proto = Object.getPrototypeOf(v) as object | null;
  if (proto === Object.prototype || proto === null) return PLAIN;
  if (proto === Array.prototype) return ARRAY;
  if (proto === Map.prototype) return MAP;
  if (proto === Set.prototype) return SET;
  if (proto === Date.prototype) return DATE;
  if (proto === ArrayBuffer.prototype) return ARRAY_BUFFER;
  if (proto === ActorRef.prototype) return REF;
  if (VIEWS.has(proto)) return VIEW;
  return REFUSED;
}

/** Why an object of kind REFUSED does not travel: "is a WeakMap", "is an instance of User". */
export function refusedObject(v: object): string {
  const name = constructorName(v);
  if (v instanceof Promise) return 'is a Promise (send its result instead)';
  if (v instanceof Error) return `is an Error (${name}): send its name and message as data instead`;
  if (v instanceof WeakMap || v instanceof WeakSet || v instanceof WeakRef) return `is a ${name}, which cannot be copied`;
  if (v instanceof SharedArrayBuffer) return 'is a SharedArrayBuffer, which cannot be shared with another process';
  for (const base of [Map, Set, Date, Array, ArrayBuffer, Uint8Array]) {
    if (v instanceof base) return `is an instance of ${name}, a subclass of ${base.name} (only ${base.name} itself travels)`;
  }
  if (ArrayBuffer.isView(v)) return `is a ${name}, which the wire codec does not carry`;
  return `is an instance of ${name} (a class instance does not travel: send its fields as a plain object)`;
}

function constructorName(v: object): string {
  try {
    const proto = Object.getPrototypeOf(v) as { constructor?: { name?: unknown } } | null;
    const name = proto?.constructor?.name;
    return typeof name === 'string' && name !== '' ? name : 'an anonymous class';
  } catch {
    return 'an unknown class';
  }
}

// ---- paths, for messages that say where in a value the problem is ----------------------

/** Deepest nesting of objects, arrays, Maps and Sets a carried value may have. */
export const MAX_DEPTH = 512;

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** `.name`, or `["a key"]` when the key is not an identifier. */
export const propertyPath = (key: string): string => (IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`);

/** A Map key as it reads in a path (`.get("k")`): short primitives as themselves, anything else by index. */
export function keyText(k: unknown, index: number): string {
  if (typeof k === 'string' && k.length <= 40) return JSON.stringify(k);
  if (typeof k === 'number' || typeof k === 'boolean' || k === null || k === undefined) return String(k);
  if (typeof k === 'bigint') return `${k}n`;
  return `<key ${index}>`;
}

/**
 * The first cycle in `root`, in the order a walk meets it: the path of the reference that
 * goes back and the path of the container it goes back to. Undefined if there is none
 * within MAX_DEPTH levels. For error messages only: it copies paths as it goes.
 */
export function findCycle(root: unknown): { at: string[]; to: string[] } | undefined {
  const stack: object[] = [];
  const paths: string[][] = [];
  const tooDeep = {};
  const visit = (v: unknown, path: string[]): { at: string[]; to: string[] } | undefined => {
    if (typeof v !== 'object' || v === null) return undefined;
    const seen = stack.indexOf(v);
    if (seen >= 0) return { at: path, to: paths[seen]! };
    const kind = objectKind(v);
    if (kind !== PLAIN && kind !== ARRAY && kind !== MAP && kind !== SET) return undefined;
    if (stack.length > MAX_DEPTH) throw tooDeep;
    stack.push(v);
    paths.push(path);
    let found: { at: string[]; to: string[] } | undefined;
    if (kind === PLAIN) {
      for (const k in v) if ((found = visit((v as Record<string, unknown>)[k], [...path, propertyPath(k)]))) break;
    } else if (kind === ARRAY) {
      const arr = v as unknown[];
      for (let i = 0; i < arr.length && !found; i++) found = visit(arr[i], [...path, `[${i}]`]);
    } else if (kind === MAP) {
      let i = 0;
      for (const [k, x] of v as Map<unknown, unknown>) {
        if ((found = visit(k, [...path, `.keys()[${i}]`]) ?? visit(x, [...path, `.get(${keyText(k, i)})`]))) break;
        i++;
      }
    } else {
      let i = 0;
      for (const x of v as Set<unknown>) if ((found = visit(x, [...path, `.values()[${i++}]`]))) break;
    }
    stack.pop();
    paths.pop();
    return found;
  };
  try {
    return visit(root, []);
  } catch (err) {
    if (err === tooDeep) return undefined;
    throw err;
  }
}
