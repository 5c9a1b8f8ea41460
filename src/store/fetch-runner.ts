// Runs a user's fetch function once: with its arguments, under its timeout, and turns what
// it does into either a value to cache or an ExpirableError. Nothing here is cached: the
// caller decides what to keep. A fetch that runs past its timeout keeps running (JavaScript
// cannot cancel it) but its late result is ignored.
import { ExpirableError, safeString, typeName } from '../errors.js';
import { isOutcome } from './result.js';
import type { Clock } from '../util/clock.js';
import type { TimerHandle } from '../util/timers.js';

/** A successful run: the value, its expiry, and the time left measured right at receipt. */
export interface FetchSuccess {
  readonly ok: true;
  readonly value: unknown;
  /** Unix ms as the fetch returned it, or Infinity. */
  readonly expiresAt: number;
  /** Milliseconds the value has left, from this host's wall clock at receipt (Infinity for never). */
  readonly ttl: number;
  readonly hasNextState: boolean;
  readonly nextState: unknown;
}

export interface FetchFailure {
  readonly ok: false;
  readonly error: ExpirableError;
}

export type FetchRun = FetchSuccess | FetchFailure;

/** What `withTimeout` resolves with when the time ran out. */
export const TIMED_OUT: unique symbol = Symbol('timed out');

/**
 * Runs `fn()` and resolves with what it returns, or with TIMED_OUT after `timeoutMs` (any
 * positive number, past setTimeout's 2^31-1 ms limit too, or Infinity) on `clock`. The call is
 * not cancelled; a late rejection of it is swallowed. With `ref`, the timeout keeps the process
 * alive while it runs: a caller waits on it (an idle background refresh passes false).
 */
export async function withTimeout<T>(fn: () => T | PromiseLike<T>, timeoutMs: number, clock: Clock, ref: boolean): Promise<T | typeof TIMED_OUT> {
  const call: Promise<T> = Promise.resolve().then(fn);
  if (timeoutMs === Infinity) return call;
  call.catch(() => undefined);
  let handle: TimerHandle | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    handle = clock.timeout(() => resolve(TIMED_OUT), timeoutMs, ref);
  });
  try {
    return await Promise.race([call, timeout]);
  } finally {
    handle?.cancel();
  }
}

/**
 * Runs `fn(...args)` with a timeout of `timeoutMs` on `clock` and validates the outcome; `ref`
 * as for `withTimeout` (true when callers wait for this fetch).
 */
export async function runFetch(name: string, fn: (...args: unknown[]) => unknown, args: unknown[], timeoutMs: number, clock: Clock, ref: boolean): Promise<FetchRun> {
  let returned: unknown;
  try {
    returned = await withTimeout(() => fn(...args), timeoutMs, clock, ref);
  } catch (thrown) {
    return { ok: false, error: new ExpirableError(name, 'fetch_failed', messageOf(thrown), { cause: thrown }) };
  }
  if (returned === TIMED_OUT) {
    return { ok: false, error: new ExpirableError(name, 'timeout', `the fetch ran past its ${timeoutMs} ms timeout`) };
  }
  return validate(name, returned, clock.wallNow());
}

function validate(name: string, returned: unknown, wallNow: number): FetchRun {
  if (!isOutcome(returned)) {
    return {
      ok: false,
      error: new ExpirableError(name, 'invalid_result', `fetch must return ok(value, expiresAt) or fail(reason), got ${describe(returned)}`, {
        cause: returned,
      }),
    };
  }
  if (!returned.ok) {
    const reason = returned.reason;
    return {
      ok: false,
      error: new ExpirableError(name, 'fetch_failed', reason === undefined ? 'fail()' : messageOf(reason), reason === undefined ? undefined : { cause: reason }),
    };
  }
  const { expiresAt } = returned;
  if (typeof expiresAt !== 'number' || Number.isNaN(expiresAt) || expiresAt === -Infinity) {
    return {
      ok: false,
      error: new ExpirableError(name, 'invalid_result', `expiresAt must be Unix ms or Infinity, got ${describe(expiresAt)}`, { cause: returned }),
    };
  }
  // The one place wall time enters: converted to a duration at once, then kept monotonic.
  // Wall time is truncated to the millisecond, so one ms is taken off: never served past expiresAt.
  const ttl = expiresAt === Infinity ? Infinity : expiresAt - wallNow - 1;
  if (ttl <= 0) {
    return {
      ok: false,
      error: new ExpirableError(name, 'invalid_result', `expiresAt ${expiresAt} is not in the future (now ${wallNow})`, { cause: returned }),
    };
  }
  return { ok: true, value: returned.value, expiresAt, ttl, hasNextState: returned.hasNextState, nextState: returned.nextState };
}

function messageOf(v: unknown): string {
  return v instanceof Error ? v.message : typeof v === 'string' ? v : safeString(v);
}

function describe(v: unknown): string {
  const s = safeString(v);
  return `${s.length > 80 ? `${s.slice(0, 80)}…` : s} (${typeName(v)})`;
}
