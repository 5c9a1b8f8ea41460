// Fencing tokens: a hybrid logical clock per lock.
//
// Each grant's token is `max(last + 1, now × 1024)`, where `last` is the highest token the
// coordinator knows for the lock and `now` is wall-clock milliseconds read monotonically
// (`performance.timeOrigin + performance.now()`, which never steps back inside a process).
// On one coordinator, tokens are strictly increasing by construction. Across a change of
// coordinator (its death, or a node joining that now wins the lock), the new coordinator
// first collects the highest token every surviving node has seen for the lock (holders,
// waiters' past grants, an old coordinator's record) and starts above it; the clock term
// covers what died with the old coordinator and its holder, provided the new coordinator's
// wall clock is not behind the old one's by more than the time the takeover took (at least
// the failure-detection time, seconds by default; NTP keeps hosts within milliseconds).
//
// 1024 grants per millisecond fit before the counter runs ahead of the clock (it then just
// keeps counting, still increasing); tokens stay below 2^53 until the year 2248.
import { performance } from 'node:perf_hooks';

/** Token steps per wall-clock millisecond. */
export const TOKENS_PER_MS = 1024;

/** The clock term of a token taken now. */
export function clockToken(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * TOKENS_PER_MS);
}

/** The next token after `last` (0 when unknown). */
export function nextToken(last: number): number {
  const t = clockToken();
  return t > last ? t : last + 1;
}

/**
 * The highest token this node has seen per lock (as requester or coordinator), reported to a
 * new coordinator in a recovery round. Bounded: the oldest entries go first, and a lock
 * forgotten here still gets a clock term above its old tokens.
 */
export class TokenMemory {
  readonly #max: number;
  readonly #last = new Map<string, number>();
  /** The key bumped last, already at the young end. */
  #newest: string | undefined = undefined;

  constructor(max = 10_000) {
    this.#max = max;
  }

  get(lk: string): number {
    return this.#last.get(lk) ?? 0;
  }

  /** Records `token` if it is the highest seen for `lk`. */
  bump(lk: string, token: number): void {
    const old = this.#last.get(lk);
    if (old !== undefined && old >= token) return;
    // Re-insert, so the most recent is last (unless it is already).
    if (old !== undefined && lk !== this.#newest) this.#last.delete(lk);
    this.#newest = lk;
    this.#last.set(lk, token);
    if (this.#last.size > this.#max) this.#last.delete(this.#last.keys().next().value as string);
  }
}
