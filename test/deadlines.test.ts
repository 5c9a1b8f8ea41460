import { afterEach, describe, expect, it, vi } from 'vitest';
import { DeadlineBucket, type DeadlineEntry } from '../src/actors/deadlines.js';

function entry(): DeadlineEntry & { expiredAt: number | undefined; settle(): void } {
  const e = {
    settled: false,
    bucket: undefined as DeadlineBucket | undefined,
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
