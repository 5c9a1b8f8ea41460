// When background refreshes run: the eager refresh point with its jitter, and the backoff
// of retries after a failed one. Pure functions of their inputs (and of `random`), so the
// arithmetic is tested without timers.

/** Largest jitter, in ms, whatever `beforeExpiry` is. */
export const MAX_JITTER_MS = 5_000;

/** Smallest wait, in ms, from a value's arrival to its eager refresh (see `eagerFloor`). */
export const MIN_EAGER_GAP_MS = 1_000;

/**
 * The smallest wait between a value's arrival and its eager refresh: `max(1 s,
 * beforeExpiry / 10)`. A provider that issues short-lived values (or a host whose clock is
 * far ahead of the provider's) would otherwise be asked again and again in a tight loop.
 */
export function eagerFloor(beforeExpiry: number): number {
  return Math.max(MIN_EAGER_GAP_MS, beforeExpiry / 10);
}

/**
 * Milliseconds from now until the eager refresh of a value that has `left` ms to live, or
 * Infinity for none (the value is then refreshed lazily, by the first read after expiry).
 * The refresh starts `beforeExpiry` ms before expiry plus a random jitter of up to 10% of
 * `beforeExpiry` (at most 5 s), earlier and never later, so the replicas of a fleet do not
 * all fire at once and the first one's new value usually reaches the others before their
 * own timers fire. A value that lives shorter than `beforeExpiry` is refreshed halfway
 * through its life. Never sooner than `eagerFloor(beforeExpiry)`; a value that does not
 * live that long is left to lazy refresh.
 */
export function eagerDelay(left: number, beforeExpiry: number, random: () => number = Math.random): number {
  if (left === Infinity) return Infinity;
  const jitter = Math.min(beforeExpiry * 0.1, MAX_JITTER_MS) * random();
  const at = left - beforeExpiry - jitter;
  const floor = eagerFloor(beforeExpiry);
  const d = Math.max(at > 0 ? at : left / 2, floor);
  return d < left ? d : Infinity;
}

/**
 * Milliseconds before retry number `failures` (1 for the first) of a failed eager refresh:
 * exponential from `beforeExpiry / 10` (clamped to 10 ms .. 1 s), doubling, capped at half
 * of `beforeExpiry` (at most 60 s), with ±20% jitter.
 */
export function retryDelay(failures: number, beforeExpiry: number, random: () => number = Math.random): number {
  const base = Math.min(1_000, Math.max(10, beforeExpiry / 10));
  const cap = Math.max(base, Math.min(beforeExpiry / 2, 60_000));
  const d = Math.min(cap, base * 2 ** Math.max(0, failures - 1));
  return d * (0.8 + 0.4 * random());
}
