import { afterEach, describe, expect, it, vi } from 'vitest';
import { bucketTimeout, DeadlineBucket, Deadlines, type DeadlineEntry, type DeadlineTracker } from '../src/actors/deadlines.js';

function entry(): DeadlineEntry & { expiredAt: number | undefined; settle(): void } {
  const e = {
    settled: false,
    bucket: undefined as DeadlineTracker | undefined,
    expiredAt: undefined as number | undefined,
    expire() {
      e.expiredAt = Date.now();
      e.settle();
    },
    settle() {
      if (e.settled) return;
      e.settled = true;
      e.bucket?.settled();
    },
  };
  return e;
}

describe('DeadlineBucket', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('expires an entry no earlier than its timeout and at most 1/16 of it later', () => {
    vi.useFakeTimers({ now: 0 });
    const bucket = new DeadlineBucket(1600);
    const e = entry();
    vi.advanceTimersByTime(50); // added in the middle of a tick
    bucket.add(e);
    vi.advanceTimersByTime(1599);
    expect(e.expiredAt).toBeUndefined();
    vi.advanceTimersByTime(101);
    expect(e.expiredAt).toBeGreaterThanOrEqual(1650);
    expect(e.expiredAt).toBeLessThanOrEqual(1650 + 100);
    bucket.dispose();
  });

  it('does not expire settled entries and forgets them all once nothing is live', () => {
    vi.useFakeTimers({ now: 0 });
    const bucket = new DeadlineBucket(100);
    const entries = Array.from({ length: 10 }, entry);
    for (const e of entries) bucket.add(e);
    for (const e of entries) e.settle();
    expect(bucket.stored).toBe(0);
    vi.advanceTimersByTime(500);
    expect(entries.every((e) => e.expiredAt === undefined)).toBe(true);
    bucket.dispose();
  });

  it('compacts settled entries piled up behind a slow live one', () => {
    vi.useFakeTimers({ now: 0 });
    const bucket = new DeadlineBucket(60_000);
    const slow = entry();
    bucket.add(slow);
    for (let i = 0; i < 100_000; i++) {
      const e = entry();
      bucket.add(e);
      e.settle();
    }
    expect(bucket.stored).toBeLessThan(5000);
    vi.advanceTimersByTime(64_000);
    expect(slow.expiredAt).toBeDefined();
    bucket.dispose();
  });
});

describe('Deadlines', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('rounds timeouts up onto a 1/16 grid: never below the timeout, at most 1/16 above', () => {
    for (const t of [1, 7, 16, 17, 100, 999, 1000, 1001, 5000, 65_537, 2 ** 30 + 3]) {
      const b = bucketTimeout(t);
      expect(b).toBeGreaterThanOrEqual(t);
      expect(b).toBeLessThanOrEqual(Math.ceil(t * (1 + 1 / 16)));
    }
  });

  // Regression: each distinct timeout value had its own interval timer.
  it('calls with all-different timeouts share a few buckets', () => {
    const deadlines = new Deadlines();
    const entries = Array.from({ length: 2000 }, entry);
    entries.forEach((e, i) => deadlines.add(e, 1000 + i / 10)); // 1000 to 1200 ms
    expect(deadlines.bucketCount).toBeLessThanOrEqual(8);
    deadlines.dispose();
  });

  // Regression: ticks were capped at 2^31-1 ms, so a call of a year or more expired after ~397 days.
  // (That it then fires on time is longTimeout's own test, in timers.test.ts.)
  it('a timeout beyond the setTimeout limit is not expired early', () => {
    vi.useFakeTimers({ now: 0 });
    const deadlines = new Deadlines();
    const e = entry();
    const day = 24 * 3600 * 1000;
    deadlines.add(e, 1000 * day);
    vi.advanceTimersByTime(400 * day);
    expect(e.expiredAt).toBeUndefined();
    e.settle();
    deadlines.dispose();
  });
});
