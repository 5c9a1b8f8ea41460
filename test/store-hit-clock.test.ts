// The cached hit reads the monotonic clock only when the value can expire (src/store/reader.ts).
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { defineExpirables, expirable, ok, startNode } from '../src/index.js';

const realNow = performance.now;

afterEach(() => {
  performance.now = realNow;
});

describe('cached hits and the clock', () => {
  // Pins: every hit read the clock, most of a hit's own cost, also for a value that never expires.
  it('a value that never expires is served without reading the clock; one that expires reads it on every hit', async () => {
    await using node = await startNode();
    const E = defineExpirables(
      {
        forever: expirable({ fetch: async () => ok('static', Infinity) }),
        keyedForever: expirable({ keyed: true, fetch: async (k: string) => ok(`static-${k}`, Infinity) }),
        hourly: expirable({ fetch: async () => ok('token', Date.now() + 3_600_000) }),
      },
      { node, namespace: `hit-clock-${process.pid}` },
    );
    expect(await E.foreverOrThrow()).toBe('static');
    expect(await E.keyedForeverOrThrow('a')).toBe('static-a');
    expect(await E.hourlyOrThrow()).toBe('token');
    let reads = 0;
    performance.now = function (this: typeof performance) {
      reads++;
      return realNow.call(this);
    };
    for (let i = 0; i < 5; i++) {
      expect(await E.forever()).toMatchObject({ ok: true, value: 'static' });
      expect(await E.foreverOrThrow()).toBe('static');
      expect(await E.keyedForever('a')).toMatchObject({ ok: true, value: 'static-a' });
      expect(await E.keyedForeverOrThrow('a')).toBe('static-a');
    }
    expect(reads).toBe(0);
    for (let i = 0; i < 5; i++) expect(await E.hourlyOrThrow()).toBe('token');
    expect(reads).toBeGreaterThanOrEqual(5);
    performance.now = realNow;
    expect(E.stats().forever?.fetches).toBe(1);
    await E.close();
  });
});
