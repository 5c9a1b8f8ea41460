// Pure parts of the store engine: the copy of a key an entry keeps, refresh scheduling
// (jitter, backoff), timeouts.
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { eagerDelay, eagerFloor, retryDelay } from '../src/store/schedule.js';
import { TIMED_OUT, withTimeout } from '../src/store/fetch-runner.js';
import { longTimeout } from '../src/util/timers.js';
import { frozenKey } from '../src/store/frozen-key.js';
import { ActorRef } from '../src/actors/ref.js';

describe('frozenKey', () => {
  it('copies every carried type, so changing the caller\'s key later changes nothing; plain parts are frozen', () => {
    const ref = new ActorRef('n', 'i');
    const key = {
      tenant: 't1',
      tags: ['a'],
      m: new Map<unknown, unknown>([[{ k: 1 }, new Set([1])]]),
      d: new Date(5),
      bin: new Uint8Array([1]),
      buf: Buffer.from([2]),
      f64: new Float64Array([1.5]),
      ab: new Uint8Array([3]).buffer,
      dv: new DataView(new Uint8Array([4]).buffer),
      ref,
    };
    const copy = frozenKey(key);
    expect(copy).toStrictEqual(key);
    key.tags.push('b');
    key.m.set('new', 1);
    ([...key.m.keys()][0] as { k: number }).k = 2;
    key.d.setTime(6);
    key.bin[0] = 9;
    key.buf[0] = 9;
    key.f64[0] = 9;
    new Uint8Array(key.ab)[0] = 9;
    key.dv.setUint8(0, 9);
    expect(copy.tags).toEqual(['a']);
    expect([...copy.m]).toEqual([[{ k: 1 }, new Set([1])]]);
    expect(copy.d.getTime()).toBe(5);
    expect([copy.bin[0], copy.buf[0], copy.f64[0], new Uint8Array(copy.ab)[0], copy.dv.getUint8(0)]).toEqual([1, 2, 1.5, 3, 4]);
    expect(Buffer.isBuffer(copy.buf)).toBe(true);
    expect(copy.ref).toBe(ref); // immutable data: kept
    expect(Object.isFrozen(copy) && Object.isFrozen(copy.tags) && Object.isFrozen([...copy.m.keys()][0])).toBe(true);
    expect(frozenKey('s')).toBe('s');
  });
});

describe('eager refresh schedule', () => {
  it('starts beforeExpiry before expiry, earlier by a jitter of at most 10% (5 s cap), never later', () => {
    expect(eagerDelay(10_000, 1_000, () => 0)).toBe(9_000);
    expect(eagerDelay(10_000, 1_000, () => 1)).toBe(8_900);
    expect(eagerDelay(600_000, 300_000, () => 1)).toBe(295_000);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 ** 9 }), fc.integer({ min: 0, max: 10 ** 7 }), fc.double({ min: 0, max: 0.999, noNaN: true }), (left, before, r) => {
        const d = eagerDelay(left, before, () => r);
        if (d === Infinity) {
          // Left to lazy refresh: lives no longer than the floor, or the refresh point is expiry itself.
          expect(left <= eagerFloor(before) || before === 0).toBe(true);
          return;
        }
        expect(d).toBeGreaterThanOrEqual(eagerFloor(before));
        expect(d).toBeLessThan(left);
        if (left > before * 1.1 + 5_000 && left - before * 1.1 - 5_000 >= eagerFloor(before)) expect(d).toBeLessThanOrEqual(left - before);
      }),
    );
  });

  it('different replicas get different delays (no lockstep)', () => {
    const delays = new Set(Array.from({ length: 20 }, () => eagerDelay(60_000, 10_000)));
    expect(delays.size).toBeGreaterThan(15);
  });

  it('refreshes a value shorter-lived than beforeExpiry halfway through its life, not in a loop', () => {
    expect(eagerDelay(20_000, 50_000, () => 0)).toBe(10_000);
    expect(eagerDelay(Infinity, 5_000)).toBe(Infinity);
  });

  it('waits at least max(1 s, beforeExpiry / 10) after a value arrives; shorter-lived values are left to lazy refresh', () => {
    // Pins: a value living 20 ms with beforeExpiry 30 s was refreshed every 10 ms (a tight loop).
    expect(eagerDelay(20, 30_000)).toBe(Infinity);
    expect(eagerDelay(2_900, 30_000)).toBe(Infinity);
    expect(eagerDelay(8_000, 30_000, () => 0)).toBe(4_000);
    expect(eagerDelay(1_500, 600, () => 0)).toBe(1_000);
    expect(eagerDelay(900, 100, () => 0)).toBe(Infinity);
    expect(eagerFloor(100)).toBe(1_000);
    expect(eagerFloor(60_000)).toBe(6_000);
  });

  it('backs off exponentially with ±20% jitter, capped', () => {
    const mid = (n: number) => retryDelay(n, 10_000, () => 0.5);
    expect([1, 2, 3, 4].map(mid)).toEqual([1_000, 2_000, 4_000, 5_000]);
    expect(retryDelay(1, 10_000, () => 0)).toBeCloseTo(800);
    expect(retryDelay(1, 10_000, () => 1)).toBeCloseTo(1_200);
    expect(retryDelay(50, 10 ** 9, () => 0.5)).toBe(60_000);
    expect(retryDelay(1, 0, () => 0.5)).toBe(10);
  });
});

describe('fetch timeout', () => {
  it('a timeout past 2^31-1 ms is honoured, neither early nor never', async () => {
    // Pins: the fetch timer was clamped to setTimeout's limit (~24.8 days), so a 40-day
    // fetchTimeout fired after 24.8 days.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const day = 86_400_000;
      let settled: unknown = 'pending';
      // The system clock's timers, read against the faked Date.
      const clock = { now: () => Date.now(), wallNow: () => Date.now(), timeout: (fn: () => void, ms: number, ref = false) => longTimeout(fn, ms, { ref, now: () => Date.now() }) };
      void withTimeout(() => new Promise<never>(() => undefined), 40 * day, clock, false).then((r) => (settled = r));
      await vi.advanceTimersByTimeAsync(30 * day);
      expect(settled).toBe('pending');
      await vi.advanceTimersByTimeAsync(10 * day + 1_000);
      expect(settled).toBe(TIMED_OUT);
    } finally {
      vi.useRealTimers();
    }
  });
});
