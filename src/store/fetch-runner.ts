// Runs a user's fetch function once: with its arguments, under its timeout, and turns what
// it does into either a value to cache or an ExpirableError. Nothing here is cached: the
// caller decides what to keep. A fetch that runs past its timeout keeps running (JavaScript
// cannot cancel it) but its late result is ignored.
import { ExpirableError, safeString, typeName } from '../errors.js';
import { isOutcome } from '../dsl/result.js';

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

/** Runs `fn(...args)` with a timeout of `timeoutMs` and validates the outcome. */
export async function runFetch(name: string, fn: (...args: unknown[]) => unknown, args: unknown[], timeoutMs: number): Promise<FetchRun> {
  let timer: NodeJS.Timeout | undefined;
  let returned: unknown;
  try {
    const call = Promise.resolve().then(() => fn(...args));
    if (timeoutMs === Infinity) {
      returned = await call;
    } else {
      const timedOut = Symbol('timeout');
      const timeout = new Promise<typeof timedOut>((resolve) => {
        timer = setTimeout(() => resolve(timedOut), Math.min(timeoutMs, 2 ** 31 - 1));
      });
      // A late rejection of the abandoned call must not surface as an unhandled rejection.
      call.catch(() => undefined);
      returned = await Promise.race([call, timeout]);
      if (returned === timedOut) {
        return { ok: false, error: new ExpirableError(name, 'timeout', `the fetch ran past its ${timeoutMs} ms timeout`) };
      }
    }
  } catch (thrown) {
    return { ok: false, error: new ExpirableError(name, 'fetch_failed', messageOf(thrown), { cause: thrown }) };
  } finally {
    if (timer) clearTimeout(timer);
  }
  return validate(name, returned);
}

function validate(name: string, returned: unknown): FetchRun {
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
  // Date.now() truncates to the millisecond, so one ms is taken off: never served past expiresAt.
  const ttl = expiresAt === Infinity ? Infinity : expiresAt - Date.now() - 1;
  if (ttl <= 0) {
    return {
      ok: false,
      error: new ExpirableError(name, 'invalid_result', `expiresAt ${expiresAt} is not in the future (now ${Date.now()})`, { cause: returned }),
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
