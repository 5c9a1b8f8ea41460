// Monotonic time for every timeout and timer in the library. `Date.now()` jumps with the
// wall clock (NTP steps, manual changes); `performance.now()` does not. Wall time is used
// only where the contract speaks it (`expiresAt` is Unix ms) and is converted once, at the
// boundary, with `wallToMonotonic`.
import { performance } from 'node:perf_hooks';

/** A clock the engine reads; tests may inject a fake one. */
export interface Clock {
  /** Monotonic milliseconds (arbitrary origin, never goes back). */
  now(): number;
  /** Wall-clock Unix milliseconds. */
  wallNow(): number;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
};

/** Monotonic milliseconds. */
export const monotonicNow = (): number => performance.now();
