// Time for every timeout and timer in the library, and the clock the store engine is given.
// `Date.now()` jumps with the wall clock (NTP steps, manual changes); `performance.now()` does
// not. Wall time is used only where the contract speaks it (`expiresAt` is Unix ms) and is
// converted once, at the boundary, into a duration on the monotonic clock.
//
// The store engine reads time only through a `Clock` (its context carries one), so its tests
// run on a fake clock (`test/helpers/fake-clock.ts`) instead of sleeping through real expiries.
import { performance } from 'node:perf_hooks';
import { longTimeout, type TimerHandle } from './timers.js';

/** A clock the engine reads and arms its timers on; tests inject a fake one. */
export interface Clock {
  /** Monotonic milliseconds (arbitrary origin, never goes back). */
  now(): number;
  /** Wall-clock Unix milliseconds. */
  wallNow(): number;
  /**
   * Runs `fn` once after `delayMs` monotonic ms (any non-negative number; Infinity never fires).
   * Unref'd unless `ref` is true: only a timer someone waits on keeps the process alive.
   */
  timeout(fn: () => void, delayMs: number, ref?: boolean): TimerHandle;
}

/** Monotonic milliseconds. */
export const monotonicNow = (): number => performance.now();

/** The real clock: `performance.now()`, `Date.now()` and `longTimeout`. */
export const systemClock: Clock = Object.freeze({
  now: monotonicNow,
  wallNow: () => Date.now(),
  timeout: (fn: () => void, delayMs: number, ref = false) => longTimeout(fn, delayMs, { ref }),
});
