import { describe, expect, it, vi } from 'vitest';
import { longTimeout, MAX_TIMEOUT_MS } from '../src/util/timers.js';

describe('longTimeout', () => {
  it('fires after a short delay', async () => {
    const t0 = performance.now();
    await new Promise<void>((resolve) => longTimeout(resolve, 20, { ref: true }));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(19);
  });

  it('does not fire early for delays beyond the 2^31-1 ms setTimeout limit', () => {
    vi.useFakeTimers();
    let now = 0;
    try {
      const fn = vi.fn();
      const delay = MAX_TIMEOUT_MS * 2 + 1000;
      longTimeout(fn, delay, { now: () => now });
      now += MAX_TIMEOUT_MS;
      vi.advanceTimersByTime(MAX_TIMEOUT_MS);
      expect(fn).not.toHaveBeenCalled();
      now += MAX_TIMEOUT_MS;
      vi.advanceTimersByTime(MAX_TIMEOUT_MS);
      expect(fn).not.toHaveBeenCalled();
      now += 1000;
      vi.advanceTimersByTime(1000);
      expect(fn).toHaveBeenCalledTimes(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('never fires for Infinity and can be cancelled', async () => {
    const fn = vi.fn();
    longTimeout(fn, Infinity);
    const h = longTimeout(fn, 5);
    h.cancel();
    h.cancel();
    await new Promise((r) => setTimeout(r, 30));
    expect(fn).not.toHaveBeenCalled();
  });
});
