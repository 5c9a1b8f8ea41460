// Fencing tokens: a hybrid logical clock per lock.
//
// Each grant's token is `max(last + 1, now × 1024)`, where `last` is the highest token the
// coordinator knows for the lock and `now` is wall-clock milliseconds read monotonically
// (`performance.timeOrigin + performance.now()`, which never steps back inside a process).
// On one coordinator, tokens are strictly increasing by construction, also for a lock whose
// record was dropped while idle: it starts again from the highest token the node has seen
// for any lock (TokenMemory below), which is at or above its own last one. Across a change
// of coordinator (its death, or a node joining that now wins the lock), the new coordinator
// first collects the highest token every surviving node has seen (holders, waiters' past
// grants, an old coordinator's record) and starts above it; the clock term covers what died
// with the old coordinator and its holder, provided the new coordinator's wall clock is not
// behind the old one's by more than the time the takeover took (at least the
// failure-detection time, seconds by default; NTP keeps hosts within milliseconds).
//
// 1024 grants per millisecond fit before the counter runs ahead of the clock (it then just
// keeps counting, still increasing; the first grants of locks that start from the node's
// highest token count together); tokens stay below 2^53 until the year 2248. A token from
// a host whose clock runs far ahead raises the highest token of every node that sees it:
// the locks those nodes then start to coordinate count on from it (still increasing) and
// get no lease until their clock catches up (leases may run at most 1 ms ahead of it).
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
 * The highest token this node has seen, for any lock (as requester or as coordinator): what
 * it reports to a new coordinator in a recovery round, and the base of a lock it starts to
 * coordinate (again). One number for all locks: above every token of every lock this node
 * has seen, so a lock's record can be dropped the moment nobody holds it or waits for it
 * (./coordinator.ts) and its next token is still above all of its old ones, however long
 * ago and however many locks later, with no record per lock. Taking a lock's last token
 * too high only moves its next token up; tokens of one lock are never compared with
 * another's.
 */
export class TokenMemory {
  #highest = 0;

  get highest(): number {
    return this.#highest;
  }

  /** Records `token` if it is the highest seen. */
  bump(token: number): void {
    if (token > this.#highest) this.#highest = token;
  }
}
