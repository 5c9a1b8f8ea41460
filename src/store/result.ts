// What a fetch function returns (`ok` / `fail`) and what a caller reads back
// (`ExpirableResult`). The outcome objects carry a private brand so the engine can tell a
// real `ok(...)` from a look-alike object: anything else a fetch returns is an
// 'invalid_result' failure, never a cached value.
import type { ExpirableError } from '../errors.js';

/** Brand on the objects built by `ok` and `fail`. Symbol.for, so two copies of the library agree. */
export const OUTCOME = Symbol.for('expirable-store.outcome');

/** A successful fetch: the value, when it expires, and optionally the state for the next fetch. */
export interface Ok<V, S = never> {
  readonly ok: true;
  readonly value: V;
  /** Unix time in ms (`Date.now()` scale), or `Infinity` for "never expires". */
  readonly expiresAt: number;
  /** The state handed to the next fetch (kept as it is when absent). */
  readonly nextState?: S;
  /** True when `nextState` was given (even as `undefined`). */
  readonly hasNextState: boolean;
  readonly [OUTCOME]: true;
}

/** A failed fetch; `reason` becomes the `cause` of the caller's ExpirableError. */
export interface Fail {
  readonly ok: false;
  readonly reason: unknown;
  readonly [OUTCOME]: true;
}

/** What a fetch function may return (or resolve to). */
export type FetchOutcome<V, S = never> = Ok<V, S> | Fail;

/** What a caller reads: the value and its expiry, or the error (failures are never cached). */
export type ExpirableResult<V> =
  | { readonly ok: true; readonly value: V; readonly expiresAt: number }
  | { readonly ok: false; readonly error: ExpirableError };

/**
 * A successful fetch result.
 * @param value the value to cache and share.
 * @param expiresAt Unix time in ms when it expires, or `Infinity`.
 * @param nextState the state handed to the next fetch of this expirable (or key).
 */
export function ok<V, S = never>(value: V, expiresAt: number, ...nextState: [] | [nextState: S]): Ok<V, S> {
  const has = nextState.length > 0;
  return has
    ? { ok: true, value, expiresAt, nextState: nextState[0], hasNextState: true, [OUTCOME]: true }
    : { ok: true, value, expiresAt, hasNextState: false, [OUTCOME]: true };
}

/** A failed fetch; `reason` (any value, an Error is best) becomes the error's `cause`. */
export function fail(reason?: unknown): Fail {
  return { ok: false, reason, [OUTCOME]: true };
}

/** True when `v` was built by `ok` or `fail`. */
export function isOutcome(v: unknown): v is FetchOutcome<unknown, unknown> {
  return typeof v === 'object' && v !== null && (v as { [OUTCOME]?: unknown })[OUTCOME] === true;
}
