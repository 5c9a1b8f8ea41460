// setTimeout caps delays at 2^31-1 ms (~24.8 days) and fires at once beyond it. `longTimeout`
// chains shorter timers against a monotonic deadline so any delay (including Infinity, which
// never fires) is honoured. Timers are unref'd by default so they never keep a process alive.
import { performance } from 'node:perf_hooks';

const monotonicNow = (): number => performance.now();

export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export interface TimerHandle {
  /** Cancels the timer; safe to call more than once. */
  cancel(): void;
}

export interface TimerOptions {
  /** Keep the event loop alive while armed. @default false */
  ref?: boolean;
  /** Monotonic clock, for tests. */
  now?: () => number;
}

/** Runs `fn` once after `delayMs` (any non-negative number, or Infinity for never). */
export function longTimeout(fn: () => void, delayMs: number, options: TimerOptions = {}): TimerHandle {
  const now = options.now ?? monotonicNow;
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const handle: TimerHandle = {
    cancel() {
      cancelled = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
  if (delayMs === Infinity) return handle;
  const deadline = now() + Math.max(0, delayMs);
  const arm = (): void => {
    if (cancelled) return;
    const left = deadline - now();
    if (left <= 0) {
      timer = undefined;
      fn();
      return;
    }
    timer = setTimeout(arm, Math.min(Math.ceil(left), MAX_TIMEOUT_MS));
    if (!options.ref) timer.unref();
  };
  timer = setTimeout(arm, Math.min(Math.max(0, Math.ceil(delayMs)), MAX_TIMEOUT_MS));
  if (!options.ref) timer.unref();
  return handle;
}
