// Every error the library raises. Each class sets `name` and a stable `code`, accepts
// `{ cause }`, and carries the facts a reader needs (actor, node, timeout, resource).
// `toWire` / `fromWire` move errors across the mesh and back to the right class;
// `toCause` turns anything thrown into an Error usable as a `cause`.

export type ErrorCode =
  | 'ERR_CALL_TIMEOUT'
  | 'ERR_ACTOR_DOWN'
  | 'ERR_NODE_DOWN'
  | 'ERR_SERIALIZATION'
  | 'ERR_LOCK_NOT_ACQUIRED'
  | 'ERR_EXPIRABLE'
  | 'ERR_INVALID_OPTION'
  | 'ERR_INVALID_DEFINITION'
  | 'ERR_PROTOCOL'
  | 'ERR_REMOTE'
  | 'ERR_DISCOVERY'
  | 'ERR_NOT_READY'
  | 'ERR_BACKEND_UNAVAILABLE';

interface RefLike {
  readonly node: string;
  readonly id: string | number;
}

const describe = (ref: RefLike): string => `${String(ref.id)}@${ref.node}`;

/** Base class of every error of this library. */
export class ExpirableStoreError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A `call` got no reply within its timeout. */
export class CallTimeoutError extends ExpirableStoreError {
  readonly ref: RefLike;
  readonly timeout: number;
  constructor(ref: RefLike, timeout: number, options?: { cause?: unknown }) {
    super('ERR_CALL_TIMEOUT', `call to actor ${describe(ref)} timed out after ${timeout} ms`, options);
    this.ref = { node: ref.node, id: ref.id };
    this.timeout = timeout;
  }
}

/** Why an actor went down, as monitors and ActorDownError report it. */
export type DownReason = 'normal' | 'noproc' | 'noconnection' | 'shutdown' | { crashed: unknown };

/** The actor stopped, crashed or was never there before it could reply. */
export class ActorDownError extends ExpirableStoreError {
  readonly ref: RefLike;
  readonly reason: DownReason;
  constructor(ref: RefLike, reason: DownReason, options?: { cause?: unknown }) {
    super('ERR_ACTOR_DOWN', `actor ${describe(ref)} is down (${reasonText(reason)})`, options);
    this.ref = { node: ref.node, id: ref.id };
    this.reason = reason;
  }
}

/** The node that hosts the actor (or resource) is known to be down or unreachable. */
export class NodeDownError extends ExpirableStoreError {
  readonly node: string;
  readonly reason: string;
  constructor(node: string, reason = 'noconnection', options?: { cause?: unknown }) {
    super('ERR_NODE_DOWN', `node ${node} is down (${reason})`, options);
    this.node = node;
    this.reason = reason;
  }
}

/** A value could not be encoded for the wire; nothing was sent. */
export class SerializationError extends ExpirableStoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SERIALIZATION', message, options);
  }
}

export type LockFailure = 'timeout' | 'retries' | 'aborted' | 'closed' | 'unreachable';

/** `global.trans` gave up before it got the lock; its function never ran. */
export class LockNotAcquiredError extends ExpirableStoreError {
  readonly resource: unknown;
  readonly reason: LockFailure;
  constructor(resource: unknown, reason: LockFailure, detail?: string, options?: { cause?: unknown }) {
    super(
      'ERR_LOCK_NOT_ACQUIRED',
      `lock on ${safeString(resource)} not acquired (${reason}${detail ? `: ${detail}` : ''})`,
      options,
    );
    this.resource = resource;
    this.reason = reason;
  }
}

export type ExpirableFailure = 'fetch_failed' | 'timeout' | 'invalid_result' | 'state_required' | 'unavailable';

/** An expirable could not produce a value. */
export class ExpirableError extends ExpirableStoreError {
  readonly expirable: string;
  readonly reason: ExpirableFailure;
  constructor(expirable: string, reason: ExpirableFailure, message?: string, options?: { cause?: unknown }) {
    super('ERR_EXPIRABLE', `expirable ${expirable}: ${reason}${message ? ` (${message})` : ''}`, options);
    this.expirable = expirable;
    this.reason = reason;
  }

  /**
   * An ExpirableSerializationError (a fetched value the wire cannot carry) counts as an
   * ExpirableError too: callers that switch on `reason` see 'invalid_result'.
   */
  static override [Symbol.hasInstance](v: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(this, v) || (this === ExpirableError && v instanceof ExpirableSerializationError);
  }
}

/**
 * A cluster-scope fetch returned a value (or next state) the wire codec cannot carry
 * faithfully (a function, a symbol, a class instance): a SerializationError naming the
 * expirable, which also reads as an ExpirableError with reason 'invalid_result'. Nothing was
 * stored or replicated; the next call fetches again.
 */
export class ExpirableSerializationError extends SerializationError {
  readonly expirable: string;
  readonly reason = 'invalid_result' as const;
  constructor(expirable: string, detail: string, options?: { cause?: unknown }) {
    super(`expirable ${expirable}: invalid_result (the value cannot be replicated: ${detail})`, options);
    this.name = 'SerializationError'; // what it is to callers; the class says why
    this.expirable = expirable;
  }
}

/** A bad option given to a constructor or `startNode`. */
export class InvalidOptionError extends ExpirableStoreError {
  readonly option: string;
  constructor(option: string, expected: string, got: unknown) {
    super('ERR_INVALID_OPTION', `Expected \`${option}\` to be ${expected}, got ${safeString(got)} (${typeName(got)})`);
    this.option = option;
  }
}

/** A bad expirable definition, raised at define time. */
export class InvalidDefinitionError extends ExpirableStoreError {
  readonly expirable: string;
  readonly option: string;
  constructor(expirable: string, option: string, message: string) {
    super('ERR_INVALID_DEFINITION', `expirable \`${expirable}\`, option \`${option}\`: ${message}`);
    this.expirable = expirable;
    this.option = option;
  }
}

/** A peer broke the wire protocol (bad frame, bad handshake). Closes that connection only. */
export class ProtocolError extends ExpirableStoreError {
  readonly reason: string;
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super('ERR_PROTOCOL', message, options);
    this.reason = reason;
  }
}

/** A round of DNS discovery found nothing (DNS error, timeout, no answer); `cause` is the resolver's error. */
export class DiscoveryError extends ExpirableStoreError {
  /** The DNS name polled. */
  readonly dns: string;
  /** The resolver's error code ('ESERVFAIL', 'ENODATA', 'ETIMEOUT', 'ENOTFOUND'…), if any. */
  readonly dnsCode: string | undefined;
  constructor(dns: string, message: string, options?: { cause?: unknown }) {
    super('ERR_DISCOVERY', `DNS discovery of ${dns} failed: ${message}`, options);
    this.dns = dns;
    const c = options?.cause as { code?: unknown } | undefined;
    this.dnsCode = typeof c?.code === 'string' ? c.code : undefined;
  }
}

/** `node.ready({ peers, timeout })` timed out before that many peers were connected. */
export class NotReadyError extends ExpirableStoreError {
  /** Peers wanted. */
  readonly peers: number;
  /** Peers connected when it timed out. */
  readonly connected: number;
  readonly timeout: number;
  constructor(peers: number, connected: number, timeout: number) {
    super('ERR_NOT_READY', `node not ready after ${timeout} ms: ${connected} of ${peers} peers connected`);
    this.peers = peers;
    this.connected = connected;
    this.timeout = timeout;
  }
}

/**
 * The coordination backend (Redis) did not answer: not connected, or no reply within its
 * timeout. Raised at once while the backend is known to be down (fail fast, never a hang);
 * the store reports it as reason `'unavailable'`.
 */
export class BackendUnavailableError extends ExpirableStoreError {
  /** Which backend, e.g. `'redis'`. */
  readonly backend: string;
  constructor(backend: string, detail: string, options?: { cause?: unknown }) {
    super('ERR_BACKEND_UNAVAILABLE', `${backend} backend unavailable: ${detail}`, options);
    this.backend = backend;
  }
}

/** An error thrown on another node that is not one of ours: name and message survive, the class does not. */
export class RemoteError extends ExpirableStoreError {
  readonly remoteName: string;
  constructor(remoteName: string, message: string, options?: { cause?: unknown }) {
    super('ERR_REMOTE', message, options);
    this.remoteName = remoteName;
  }
}

/** Turns anything thrown into an Error, fit to be a `cause`. */
export function toCause(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  const err = new Error(typeof thrown === 'string' ? thrown : `non-error thrown: ${safeString(thrown)}`);
  (err as Error & { value?: unknown }).value = thrown;
  return err;
}

/** The wire shape of an error: plain data the codec can carry. */
export interface WireError {
  name: string;
  code?: string;
  message: string;
  data?: Record<string, unknown>;
  cause?: WireError;
}

/** Encodes an error for the wire (depth-limited through `cause`). */
export function toWire(thrown: unknown, depth = 0): WireError {
  const err = toCause(thrown);
  const wire: WireError = { name: err.name, message: err.message };
  if (err instanceof ExpirableStoreError) {
    wire.code = err.code;
    const data: Record<string, unknown> = {};
    for (const key of ['ref', 'reason', 'timeout', 'node', 'expirable', 'option', 'remoteName', 'backend'] as const) {
      const v = (err as unknown as Record<string, unknown>)[key];
      if (v !== undefined) data[key] = key === 'reason' && typeof v === 'object' && v !== null ? wireReason(v) : v;
    }
    if (err instanceof LockNotAcquiredError) data.resource = err.resource;
    wire.data = data;
  }
  if (err.cause !== undefined && depth < 4) wire.cause = toWire(err.cause, depth + 1);
  return wire;
}

/**
 * Rebuilds an error of the right class from its wire shape. Data that does not fit the
 * class (a peer of another version, a malformed frame) gives a RemoteError instead of a
 * throw, so a bad error reply fails one call, never the link.
 */
export function fromWire(wire: WireError, depth = 0): Error {
  const d = (isObject(wire.data) ? wire.data : {}) as Record<string, unknown>;
  const cause = isObject(wire.cause) && depth < 4 ? fromWire(wire.cause, depth + 1) : undefined;
  const opts = cause ? { cause } : undefined;
  const message = typeof wire.message === 'string' ? wire.message : 'remote error';
  const name = typeof wire.name === 'string' ? wire.name : 'Error';
  let err: Error | undefined;
  switch (wire.code) {
    case 'ERR_CALL_TIMEOUT':
      if (isRef(d.ref) && typeof d.timeout === 'number') err = new CallTimeoutError(d.ref, d.timeout, opts);
      break;
    case 'ERR_ACTOR_DOWN': {
      const reason = downReasonFromWire(d.reason, depth);
      if (isRef(d.ref) && reason !== undefined) err = new ActorDownError(d.ref, reason, opts);
      break;
    }
    case 'ERR_NODE_DOWN':
      if (typeof d.node === 'string') err = new NodeDownError(d.node, typeof d.reason === 'string' ? d.reason : undefined, opts);
      break;
    case 'ERR_SERIALIZATION':
      err = typeof d.expirable === 'string' ? new ExpirableSerializationError(d.expirable, message, opts) : new SerializationError(message, opts);
      break;
    case 'ERR_BACKEND_UNAVAILABLE':
      if (typeof d.backend === 'string') err = new BackendUnavailableError(d.backend, '', opts);
      break;
    case 'ERR_LOCK_NOT_ACQUIRED':
      if (typeof d.reason === 'string') err = new LockNotAcquiredError(d.resource, d.reason as LockFailure, undefined, opts);
      break;
    case 'ERR_EXPIRABLE':
      if (typeof d.expirable === 'string' && typeof d.reason === 'string') {
        err = new ExpirableError(d.expirable, d.reason as ExpirableFailure, undefined, opts);
      }
      break;
  }
  err ??= new RemoteError(name, message, opts);
  // Keep the message exactly as raised on the other node.
  err.message = message;
  return err;
}

/** A down reason from the wire: `{ crashed }` gets its Error back; undefined if malformed. */
export function downReasonFromWire(v: unknown, depth = 0): DownReason | undefined {
  if (typeof v === 'string') return v as DownReason;
  if (isObject(v) && 'crashed' in v) {
    const c = (v as { crashed: unknown }).crashed;
    return { crashed: isObject(c) ? fromWire(c as unknown as WireError, depth + 1) : c };
  }
  return undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const isRef = (v: unknown): v is RefLike =>
  isObject(v) && typeof v.node === 'string' && (typeof v.id === 'string' || typeof v.id === 'number');

/** A down reason for the wire: `{ crashed }` carries the error in its wire shape. */
export function downReasonToWire(reason: DownReason): string | { crashed: WireError } {
  return typeof reason === 'string' ? reason : { crashed: toWire(reason.crashed) };
}

function wireReason(reason: object): unknown {
  if ('crashed' in reason) return { crashed: toWire((reason as { crashed: unknown }).crashed) };
  return reason;
}

export function reasonText(reason: DownReason): string {
  if (typeof reason === 'string') return reason;
  const c = reason.crashed;
  return `crashed: ${c instanceof Error ? c.message : safeString(c)}`;
}

export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

export function safeString(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'symbol' || typeof v === 'function') return String(v);
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 200 ? `${s.slice(0, 200)}…` : s;
  } catch {
    return Object.prototype.toString.call(v);
  }
}
