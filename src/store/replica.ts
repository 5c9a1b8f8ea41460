// What one replica holds on this node: the value, its monotonic deadline, its version, its
// state, and how a snapshot from elsewhere is taken (apply, renew, clear). Nothing here knows
// of locks, rounds or timers: the bookkeeping of refreshes is the entry's (./entry.ts).
//
// The fields the read path touches (`deadline`, `result`, `valuePromise`) are plain fields
// of this class: every entry is one class (`Entry extends Replica`), so the object
// the reader touches is monomorphic, a cached hit is `deadline > now` and returning a promise
// that was resolved once when the value arrived, and a hit allocates nothing.
//
// Invariants:
// - `version` only grows. A snapshot is applied only if its version is greater (an older
//   value never overwrites a newer one, whatever order messages arrive in); a `clear` is a
//   snapshot without value whose version is the clear's version (a tombstone).
// - `deadline` is monotonic milliseconds (the store's clock), computed on receipt from the
//   time left, bounded by `expiresAt` on this host's wall clock (see `apply`); wall-clock
//   jumps after receipt do not move it. A later reading of the same write may move it later
//   (`renew`: each reading bounds the value's life from above, none goes past it).
import type { ExpirableResult } from './result.js';
import { detached } from '../util/held-context.js';

/** A replica's content as it travels between nodes. */
export interface Snapshot {
  /** Version: the lock's fencing token, raised above every version known under the lock (engine #nextVersion). */
  readonly v: number;
  /** True when it carries a value (false: a state alone, or a tombstone). */
  readonly has: boolean;
  readonly value: unknown;
  /** `expiresAt` as the fetch returned it (fetching host's Unix ms, or Infinity). Shown to callers only. */
  readonly exp: number;
  /** Milliseconds the value had left when the snapshot was sent (Infinity: never expires). */
  readonly ttl: number;
  /** True when it carries a state. */
  readonly hs: boolean;
  readonly st: unknown;
}

export class Replica {
  /** Monotonic ms until which the value may be served; -Infinity without one. Hot path. */
  deadline = -Infinity;
  /** `Promise.resolve({ ok: true, value, expiresAt })`, built once per value. Hot path. */
  result: Promise<ExpirableResult<unknown>> | undefined = undefined;
  /** `Promise.resolve(value)`, for the `…OrThrow` functions. Hot path. */
  valuePromise: Promise<unknown> | undefined = undefined;
  /** Version of what this replica holds (0: nothing yet). Only grows. */
  version = 0;
  hasValue = false;
  value: unknown = undefined;
  expiresAt = 0;
  hasState = false;
  state: unknown = undefined;

  /** True while the value may be served. */
  valid(now: number): boolean {
    return this.deadline > now;
  }

  /** What this replica holds, for a peer. */
  snapshot(now: number): Snapshot {
    const ttl = !this.hasValue ? 0 : this.deadline === Infinity ? Infinity : Math.max(0, this.deadline - now);
    return { v: this.version, has: this.hasValue && ttl > 0, value: this.value, exp: this.expiresAt, ttl, hs: this.hasState, st: this.state };
  }

  /**
   * Applies `s` if it is newer than what this replica holds. `since` is the monotonic time
   * from which its `ttl` counts (receipt, or for a reply the moment the request was sent);
   * `now` and `wallNow` are this host's monotonic and wall time at this call. The deadline is
   * the sooner of `since + ttl` and the `expiresAt` the fetch returned read on this host's wall
   * clock: the first alone would lengthen a value's life by the message's transit (or by a
   * freeze of this process with the message in its socket buffer); the second alone would let
   * a wall clock that is behind lengthen it. Either bound only ever shortens a value's life.
   */
  apply(s: Snapshot, since: number, now: number, wallNow: number): boolean {
    if (!(s.v > this.version)) return false;
    this.version = s.v;
    this.hasState = s.hs;
    this.state = s.hs ? s.st : undefined;
    if (s.has && s.ttl > 0) {
      this.hasValue = true;
      this.value = s.value;
      this.expiresAt = s.exp;
      this.deadline = deadlineOf(s, since, now, wallNow);
      // Made outside a held lock's context: they live as long as the value (see `detached`).
      detached(() => {
        this.result = Promise.resolve({ ok: true, value: s.value, expiresAt: s.exp });
        this.valuePromise = Promise.resolve(s.value);
      });
    } else {
      this.dropValue();
    }
    return true;
  }

  /**
   * Takes a later reading of the value this replica holds (the same write: same version and
   * `expiresAt`) when it leaves the value more life here: returns true if the deadline moved.
   * Each reading bounds the value's life from above (see `apply`), so the later of two is as
   * safe as either. Without it a replica whose reading came late (an ask answered slowly, a
   * push that sat in transit) expires early and, asking a peer that still holds the same
   * version valid, is refused that answer as not newer and fetches inside the value's life.
   */
  renew(s: Snapshot, since: number, now: number, wallNow: number): boolean {
    if (s.v !== this.version || !this.hasValue || !s.has || !(s.ttl > 0) || s.exp !== this.expiresAt || this.deadline === Infinity) return false;
    const deadline = s.ttl === Infinity ? Infinity : Math.min(since + s.ttl, now + (s.exp - wallNow - 1));
    if (!(deadline > this.deadline)) return false;
    this.deadline = deadline;
    return true;
  }

  /**
   * Drops value and state (a clear); `version` becomes the clear's version if that is newer.
   * The entry's epoch (./entry.ts) is bumped by the clearing node when `clear` is called, not here: a refresh
   * queued behind the clear on the lock runs after it and may store what it fetches.
   */
  clear(version: number): void {
    if (version > this.version) this.version = version;
    this.hasState = false;
    this.state = undefined;
    this.dropValue();
  }

  /** Drops the value (kept: version, state). */
  dropValue(): void {
    this.hasValue = false;
    this.value = undefined;
    this.expiresAt = 0;
    this.deadline = -Infinity;
    this.result = undefined;
    this.valuePromise = undefined;
  }
}

/**
 * The monotonic deadline of the value of `s` on this host (see `Replica.apply`): the sooner of
 * `since + ttl` and the fetch's `expiresAt` read on this host's wall clock.
 */
export function deadlineOf(s: Snapshot, since: number, now: number, wallNow: number): number {
  // Wall time is truncated to the millisecond: one ms off, as when the fetch returned.
  return s.ttl === Infinity ? Infinity : Math.min(since + s.ttl, now + (s.exp - wallNow - 1));
}

/** True when `s` carries a value that would still be valid now if applied (see `Replica.apply`). */
export function servable(s: Snapshot, since: number, now: number, wallNow: number): boolean {
  return s.has && s.ttl > 0 && deadlineOf(s, since, now, wallNow) > now;
}
