// The store engine on one node, for both scopes: fetch outcomes, single flight, lazy and
// eager refresh, failed refresh keeping the value, time, clear, keyed, stateful, stats and
// events. The cluster behaviours across processes are in store-cluster.test.ts.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { defineExpirables } from '../src/dsl/define.js';
import { expirable } from '../src/dsl/definition.js';
import type { Definitions, NoReservedNames } from '../src/dsl/types.js';
import { fail, ok } from '../src/store/result.js';
import { ExpirableError, InvalidOptionError } from '../src/errors.js';
import { startNode, type Node } from '../src/node.js';
import { EventLog, gate, sleep, uniqueNamespace } from './fixtures/store-tools.js';
import { FakeClock } from './helpers/fake-clock.js';
import diagnostics_channel from 'node:diagnostics_channel';
import { expirableChannels } from '../src/store/diagnostics.js';

let node: Node;
beforeAll(async () => {
  node = await startNode();
});
afterAll(async () => {
  await node.close();
});

const scopes = ['local', 'cluster'] as const;

describe.each(scopes)('scope %s on one node', (scope) => {
  const define = <const D extends Definitions>(defs: D & NoReservedNames<D>, clock?: FakeClock) => {
    const namespace = uniqueNamespace(scope);
    const E = defineExpirables(defs, { node, namespace, clock });
    return Object.assign(E, { namespace });
  };
  const soon = (ms: number) => Date.now() + ms;

  it('1. ok returns the value; failures carry reason and cause and are never cached', async () => {
    let calls = 0;
    const boom = new Error('boom');
    const outcomes: (() => unknown)[] = [
      () => fail('github refused'),
      () => {
        throw boom;
      },
      () => 42,
      () => ok('v', Number.NaN),
      () => ok('v', Date.now() - 1),
      () => new Promise(() => undefined), // never settles: timeout
      () => ok('good', soon(60_000)),
    ];
    const E = define({ token: expirable({ scope, fetchTimeout: 50, fetch: async () => outcomes[calls++]!() as never }) });
    const reasons: [string, unknown][] = [];
    for (let i = 0; i < 6; i++) {
      const r = await E.token();
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error).toBeInstanceOf(ExpirableError);
        expect(r.error.expirable).toBe('token');
        reasons.push([r.error.reason, r.error.cause]);
      }
    }
    expect(reasons[0]).toEqual(['fetch_failed', 'github refused']);
    expect(reasons[1]).toEqual(['fetch_failed', boom]);
    expect(reasons[2]).toEqual(['invalid_result', 42]);
    expect(reasons[3]![0]).toBe('invalid_result');
    expect(reasons[4]![0]).toBe('invalid_result');
    expect(reasons[5]![0]).toBe('timeout');
    // Every failure above ran the fetch again: nothing was cached.
    expect(calls).toBe(6);
    const good = await E.token();
    expect(good).toMatchObject({ ok: true, value: 'good' });
    expect(await E.tokenOrThrow()).toBe('good');
    expect(await E.fetchOrThrow('token')).toBe('good');
    expect(calls).toBe(7);
    expect(E.stats().token).toMatchObject({ fetches: 7, failures: 6 });
    await E.close();
  });

  it('OrThrow rejects with the ExpirableError', async () => {
    const E = define({ token: expirable({ scope, fetch: async () => fail(new Error('down')) }) });
    const err = await E.tokenOrThrow().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExpirableError);
    expect((err as ExpirableError).reason).toBe('fetch_failed');
    expect(((err as ExpirableError).cause as Error).message).toBe('down');
    await expect(E.fetchOrThrow('token')).rejects.toBeInstanceOf(ExpirableError);
    await E.close();
  });

  it('2. concurrent callers on one node share one fetch', async () => {
    let calls = 0;
    const g = gate();
    const E = define({ token: expirable({ scope, fetch: async () => (calls++, await g.promise, ok(`t${calls}`, soon(60_000))) }) });
    const all = Array.from({ length: 100 }, () => E.token());
    await sleep(20);
    g.open();
    const results = await Promise.all(all);
    expect(calls).toBe(1);
    expect(new Set(results.map((r) => (r.ok ? r.value : 'x')))).toEqual(new Set(['t1']));
    expect(E.stats().token).toMatchObject({ fetches: 1, misses: 100, hits: 0 });
    await E.token();
    expect(E.stats().token.hits).toBe(1);
    await E.close();
  });

  it('4. lazy: the first call after expiry refreshes; expired values are never returned (fake clock)', async () => {
    const clock = new FakeClock();
    let calls = 0;
    const E = define({ token: expirable({ scope, fetch: async () => ok(++calls, clock.wallNow() + 150) }) }, clock);
    expect(await E.token()).toMatchObject({ ok: true, value: 1 });
    await clock.advance(148);
    expect(await E.token()).toMatchObject({ ok: true, value: 1 });
    expect(E.stats().token).toMatchObject({ hits: 1, fetches: 1 });
    // At expiresAt the value is gone: the call fetches a new one, never returns the old.
    await clock.advance(2);
    const r = await E.token();
    expect(r).toMatchObject({ ok: true, value: 2 });
    expect(r.ok && r.expiresAt).toBeGreaterThan(clock.wallNow());
    for (let i = 0; i < 3; i++) {
      await clock.advance(150);
      const asked = clock.wallNow();
      const next = await E.token();
      if (!next.ok) throw next.error;
      expect(next.expiresAt).toBeGreaterThan(asked);
    }
    expect(calls).toBe(5);
    await E.close();
  });

  it('5. eager: refreshes in the background before expiry; callers never wait for it', async () => {
    let calls = 0;
    const held = gate();
    const E = define({
      fx: expirable({
        scope,
        refresh: { eager: { beforeExpiry: 600 } },
        fetch: async () => {
          calls++;
          if (calls === 2) await held.promise; // the background refresh hangs until we open it
          return ok(calls, soon(2_000)); // eager refresh at ~1.4 s, above the 1 s floor
        },
      }),
    });
    using events = new EventLog(E.namespace);
    const asked = performance.now();
    expect(await E.fxOrThrow()).toBe(1);
    const started = await events.next((e) => e.channel === 'fetchStart' && e.mode === 'eager', 2_000);
    // Before the first value expires: it lives 2 s from its fetch, which came after `asked`.
    expect(started.at - asked).toBeLessThan(2_000);
    // While the refresh is held (it never ends until we open it), callers get the current
    // value: a read that waited for the refresh would never resolve.
    expect(await E.fxOrThrow()).toBe(1);
    expect(E.stats().fx.hits).toBeGreaterThanOrEqual(1);
    held.open();
    await events.next((e) => e.channel === 'fetchEnd' && e.mode === 'eager');
    expect(await E.fxOrThrow()).toBe(2);
    expect(E.stats().fx.refreshes).toBeGreaterThanOrEqual(1);
    await E.close();
  });

  it('6. a failed eager refresh keeps the value until it expires, retries with growing backoff, reports', async () => {
    let calls = 0;
    const E = define({
      fx: expirable({
        scope,
        refresh: { eager: { beforeExpiry: 2_400 } },
        fetch: async () => (++calls === 1 ? ok('good', soon(3_000)) : fail(new Error(`refresh ${calls} refused`))),
      }),
    });
    using events = new EventLog(E.namespace);
    expect(await E.fxOrThrow()).toBe('good');
    const failures: number[] = [];
    for (let i = 0; i < 3; i++) {
      const f = await events.next((e) => e.channel === 'refresh' && e.phase === 'failure' && (e.retryInMs as number) > 0 && !failures.includes(e.retryInMs as number), 3_000);
      failures.push(f.retryInMs as number);
      // Readers still get the good value, not an error.
      expect(await E.fx()).toMatchObject({ ok: true, value: 'good' });
    }
    // Backoff grows (the ±20% jitter cannot hide a doubling over two steps).
    expect(failures[2]!).toBeGreaterThan(failures[0]!);
    expect(E.stats().fx.refreshFailures).toBeGreaterThanOrEqual(3);
    // No tight loop: a handful of attempts over the value's life.
    expect(calls).toBeLessThan(12);
    await E.close();
  });

  it('6b. the count of failed eager refreshes (the backoff step) starts over with a new value', async () => {
    let calls = 0;
    const E = define({
      fx: expirable({
        scope,
        refresh: { eager: { beforeExpiry: 2_400 } },
        // 1: a value; 2: its eager refresh fails; 3 (the retry) and later: new values.
        fetch: async () => (++calls === 2 ? fail(new Error('refused once')) : ok(`v${calls}`, soon(3_000))),
      }),
    });
    using events = new EventLog(E.namespace);
    expect(await E.fxOrThrow()).toBe('v1');
    const failure = await events.next((e) => e.channel === 'refresh' && e.phase === 'failure', 5_000);
    expect(failure.retryInMs).toBeGreaterThan(0);
    const retry = await events.next((e) => e.channel === 'refresh' && e.phase === 'start' && e.attempt === 2, 5_000);
    // The retry brought a new value: its own eager refresh is a first attempt, not a third.
    const next = await events.next((e) => e.channel === 'refresh' && e.phase === 'start' && e.version !== retry.version, 8_000, events.events.indexOf(retry) + 1);
    expect(next.attempt).toBe(1);
    await E.close();
  });

  it('8. clear drops the value; a fetch in flight during clear does not bring it back', async () => {
    let calls = 0;
    let hold: Promise<void> | undefined;
    const E = define({ token: expirable({ scope, fetch: async () => (calls++, await hold, ok(`t${calls}`, soon(60_000))) }) });
    expect(await E.tokenOrThrow()).toBe('t1');
    expect(E.replicas('token')).toEqual([node.name]);
    await E.clear('token');
    expect(E.replicas('token')).toEqual([]);
    expect(await E.tokenOrThrow()).toBe('t2');
    // Now clear while a refresh is in flight.
    const g = gate();
    hold = g.promise;
    await E.clear('token');
    const inflight = E.token();
    await sleep(10);
    const cleared = E.clear('token');
    const afterClear = E.token(); // called after clear: must not join the older refresh
    g.open();
    expect(await inflight).toMatchObject({ ok: true, value: 't3' }); // its own callers get it
    await cleared;
    hold = undefined;
    expect(await afterClear).toMatchObject({ ok: true, value: 't4' });
    expect(await E.tokenOrThrow()).toBe('t4'); // later callers do not see t3 either
    await E.close();
  });

  it('clearAll clears every expirable of the store', async () => {
    let a = 0;
    let b = 0;
    const E = define({
      a: expirable({ scope, fetch: async () => ok(++a, Infinity) }),
      b: expirable({ scope, keyed: true, fetch: async (k: string) => ok(`${k}${++b}`, Infinity) }),
    });
    await E.a();
    await E.b('x');
    await E.b('y');
    await E.clearAll();
    expect(await E.aOrThrow()).toBe(2);
    expect(await E.bOrThrow('x')).toBe('x3');
    expect(await E.bOrThrow('y')).toBe('y4');
    await E.close();
  });

  it('9. keyed: keys by value, (key, state) to fetch, per-key and whole clear, maxKeys evicts the LRU', async () => {
    const seen: unknown[] = [];
    const E = define({
      k: expirable({
        scope,
        keyed: true,
        maxKeys: 2,
        fetch: async (key: { a: number; b: number } | string, state: unknown) => (seen.push([key, state]), ok(JSON.stringify(key), Infinity)),
      }),
    });
    await E.k({ a: 1, b: 2 });
    await E.k({ b: 2, a: 1 });
    expect(seen).toEqual([[{ a: 1, b: 2 }, undefined]]);
    await E.k('x'); // two keys live
    await E.k({ a: 1, b: 2 }); // touch: 'x' is now least recently used
    await E.k('y'); // evicts 'x'
    expect(seen.length).toBe(3);
    await E.k({ a: 1, b: 2 });
    expect(seen.length).toBe(3);
    await E.k('x');
    expect(seen.length).toBe(4);
    await E.clear('k', 'x');
    await E.k('x');
    expect(seen.length).toBe(5);
    await E.clear('k');
    await E.k('x');
    await E.k({ a: 1, b: 2 });
    expect(seen.length).toBe(7);
    await expect(E.k((() => 1) as never)).rejects.toBeInstanceOf(InvalidOptionError);
    await E.close();
  });

  it('9b. an eviction of a key with a valid value is counted, published, and warned once per expirable', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => {
      if ((w as Error & { code?: string }).code === 'EXPIRABLE_STORE_EVICTED') warnings.push(w);
    };
    process.on('warning', onWarning);
    const events: { key: unknown; maxKeys: number }[] = [];
    const onEvict = (m: unknown) => events.push(m as { key: unknown; maxKeys: number });
    diagnostics_channel.subscribe(expirableChannels.evict, onEvict);
    try {
      const E = define({
        k: expirable({ scope, keyed: true, maxKeys: 2, fetch: async (key: string) => ok(key, soon(60_000)) }),
        gone: expirable({ scope, keyed: true, maxKeys: 1, fetch: async (key: string) => ok(key, soon(1)) }),
      });
      await E.k('a');
      await E.k('b');
      expect(E.stats().k.evictions).toBe(0);
      await E.k('c'); // 'a' still valid: evicted
      await E.k('d'); // 'b' too
      expect(E.stats().k.evictions).toBe(2);
      expect(events.filter((e) => e.maxKeys === 2).map((e) => e.key)).toEqual(['a', 'b']);
      // An expired key making room is no eviction of a value anyone could have read.
      await E.gone('x');
      await sleep(5);
      await E.gone('y');
      expect(E.stats().gone.evictions).toBe(0);
      await E.close();
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      const mine = warnings.filter((w) => w.message.includes(`${E.namespace}/`));
      expect(mine.map((w) => w.message)).toEqual([expect.stringMatching(new RegExp(`${E.namespace}/k: .*maxKeys \\(2\\)`))]);
    } finally {
      process.off('warning', onWarning);
      diagnostics_channel.unsubscribe(expirableChannels.evict, onEvict);
    }
  });

  it('10. stateful: state threads through fetches, putState/updateState, failures keep it, clear drops it (fake clock)', async () => {
    const clock = new FakeClock();
    const states: unknown[] = [];
    let failNext = false;
    const E = define({
      counter: expirable({
        scope,
        fetch: async (n: number | undefined) => {
          states.push(n);
          if (failNext) return fail('nope');
          return ok(`v${n ?? 0}`, clock.wallNow() + 100, (n ?? 0) + 1);
        },
      }),
    }, clock);
    expect(await E.counterOrThrow()).toBe('v0');
    await clock.advance(150);
    expect(await E.counterOrThrow()).toBe('v1'); // got nextState 1
    await E.putState('counter', 10);
    expect(await E.counterOrThrow()).toBe('v1'); // the value stays until it expires
    await clock.advance(150);
    expect(await E.counterOrThrow()).toBe('v10');
    await E.updateState('counter', (n) => (n ?? 0) + 5); // 11 -> 16
    failNext = true;
    await clock.advance(150);
    expect((await E.counter()).ok).toBe(false);
    failNext = false;
    expect(await E.counterOrThrow()).toBe('v16'); // the failed fetch kept the state
    await E.clear('counter');
    expect(await E.counterOrThrow()).toBe('v0'); // clear dropped it
    expect(states).toEqual([undefined, 1, 10, 16, 16, undefined]);
    await E.close();
  });

  it('10b. requireInitialState fails with state_required without calling fetch', async () => {
    let calls = 0;
    const E = define({
      tenantApiKey: expirable({
        scope,
        keyed: true,
        requireInitialState: true,
        fetch: async (tenantId: string, state: { secret: string }) => (calls++, ok(`${tenantId}:${state.secret}`, soon(60_000), state)),
      }),
    });
    const r = await E.tenantApiKey('t-1');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.reason).toBe('state_required');
    expect(calls).toBe(0);
    await E.putState('tenantApiKey', 't-1', { secret: 's1' });
    expect(await E.tenantApiKeyOrThrow('t-1')).toBe('t-1:s1');
    await E.updateState('tenantApiKey', 't-1', (s) => ({ secret: `${s!.secret}+` }));
    await E.clear('tenantApiKey', 't-1');
    const again = await E.tenantApiKey('t-1');
    expect(again.ok ? 'ok' : again.error.reason).toBe('state_required');
    expect(calls).toBe(1);
    await E.close();
  });

  it('12. stats and diagnostics events', async () => {
    let calls = 0;
    const E = define({ token: expirable({ scope, fetch: async () => (++calls === 1 ? fail('x') : ok('t', soon(60_000))) }) });
    using events = new EventLog(E.namespace);
    await E.token();
    await E.token();
    await E.token();
    await E.clear('token');
    expect(E.stats().token).toMatchObject({ hits: 1, misses: 2, fetches: 2, failures: 1 });
    expect(events.count((e) => e.channel === 'fetchStart')).toBe(2);
    expect(events.count((e) => e.channel === 'fetchFailure')).toBe(1);
    expect(events.count((e) => e.channel === 'fetchEnd')).toBe(1);
    expect(events.count((e) => e.channel === 'clear')).toBe(1);
    const end = events.events.find((e) => e.channel === 'fetchEnd')!;
    expect(end).toMatchObject({ name: 'token', node: node.name });
    await E.close();
  });

  it('7. timers past 2^31-1 ms do not fire early; Infinity values never refresh (fake clock)', async () => {
    const clock = new FakeClock();
    const day = 86_400_000;
    let calls = 0;
    const E = define({
      far: expirable({ scope, refresh: { eager: { beforeExpiry: 1_000 } }, fetch: async () => ok(++calls, clock.wallNow() + 40 * day) }),
      never: expirable({ scope, refresh: { eager: { beforeExpiry: 0 } }, fetch: async () => ok(++calls, Infinity) }),
    }, clock);
    using events = new EventLog(E.namespace);
    await E.far();
    await E.never();
    await clock.advance(30 * day); // a 40-day timer clamped to setTimeout's ~24.8 days would have fired
    expect(calls).toBe(2);
    expect(events.count((e) => e.channel === 'refresh')).toBe(0);
    await clock.advance(10 * day); // past the refresh point (1 s + jitter before expiry)
    await events.next((e) => e.channel === 'fetchEnd' && e.mode === 'eager');
    expect(calls).toBe(3); // `far` refreshed once; `never` never
    await E.close();
  });

  it('7. a wall-clock jump neither serves an expired value nor refetches a valid one (fake clock)', async () => {
    const clock = new FakeClock();
    let calls = 0;
    const E = define({ token: expirable({ scope, fetch: async () => ok(++calls, clock.wallNow() + 400) }) }, clock);
    await E.token();
    clock.jumpWall(3_600_000); // the wall clock jumps an hour ahead
    expect(await E.tokenOrThrow()).toBe(1); // still valid: no early refetch
    clock.jumpWall(-7_200_000); // and an hour back
    await clock.advance(400);
    // The value expired on the monotonic clock; the fetch runs again (and its expiresAt,
    // read with the jumped-back clock, is in the future for that clock).
    expect(await E.tokenOrThrow()).toBe(2);
    await E.close();
  });

  it("a node that is closed answers with reason 'unavailable', never hangs", async () => {
    const own = await startNode();
    const E = defineExpirables({ token: expirable({ scope, fetch: async () => ok('t', soon(60_000)) }) }, { node: own, namespace: uniqueNamespace(scope) });
    await own.close();
    const r = await E.token();
    expect(r.ok ? 'ok' : r.error.reason).toBe('unavailable');
    await E.close();
  });
});

describe('the embedded node', () => {
  it('with no node option, a store runs on the embedded standalone node started on first use, shared by every store', async () => {
    let calls = 0;
    const A = defineExpirables({ token: expirable({ fetch: async () => ok(`t${++calls}`, Date.now() + 60_000) }) }, { namespace: uniqueNamespace('embedded') });
    const B = defineExpirables({ other: expirable({ scope: 'local', fetch: async () => ok(1, Infinity) }) }, { namespace: uniqueNamespace('embedded') });
    expect(A.replicas('token')).toEqual([]); // nothing started, nothing held
    expect(await A.tokenOrThrow()).toBe('t1');
    expect(await A.tokenOrThrow()).toBe('t1');
    expect(await B.otherOrThrow()).toBe(1);
    const [nameA] = A.replicas('token');
    expect(nameA).toBeTruthy();
    expect(B.replicas('other')).toEqual([nameA]);
    await A.close();
    await B.close();
  });
});
