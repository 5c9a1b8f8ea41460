// Cluster behaviours of the store with several nodes in one process over real TCP: fetch
// once for the cluster, replication and replicas, late joiners, versions, local scope,
// eager refresh once for the cluster, clear across nodes, keyed and stateful across nodes.
// Crashes (kill -9) are in store-cluster.test.ts, with real processes.
import { describe, expect, it, vi } from 'vitest';
import { defineExpirables, type DefineOptions } from '../src/dsl/define.js';
import { expirable } from '../src/dsl/definition.js';
import { fail, ok } from '../src/store/result.js';
import type { Definitions, NoReservedNames } from '../src/dsl/types.js';
import type { Node } from '../src/node.js';
import { localCluster } from './fixtures/store-mesh.js';
import { EventLog, gate, pushTo, sleep, uniqueNamespace } from './fixtures/store-tools.js';

/** The same definitions on every node, as an app deployed on each would have them. */
function defineOn<const D extends Definitions>(nodes: Node[], defs: () => D & NoReservedNames<D>, options: Omit<DefineOptions, 'node'> = {}) {
  const namespace = options.namespace ?? uniqueNamespace('mesh');
  const stores = nodes.map((node) => defineExpirables(defs(), { ...options, node, namespace }));
  return {
    namespace,
    stores,
    on: (node: Node) => defineExpirables(defs(), { ...options, node, namespace }),
    async close() {
      await Promise.all(stores.map((s) => s.close()));
    },
  };
}

const soon = (ms: number) => Date.now() + ms;

describe('cluster scope across nodes (TCP, one process)', () => {
  it('2+3. concurrent callers on every node share one fetch; every caller holds a replica', async () => {
    await using c = await localCluster(3);
    let fetches = 0;
    const g = gate();
    const s = defineOn(c.nodes, () => ({ token: expirable({ fetch: async () => (fetches++, await g.promise, ok(`tok-${fetches}`, soon(60_000))) }) }));
    const calls = s.stores.flatMap((E) => Array.from({ length: 30 }, () => E.token()));
    await sleep(50);
    g.open();
    const results = await Promise.all(calls);
    expect(fetches).toBe(1);
    expect(new Set(results.map((r) => (r.ok ? r.value : r.error.message)))).toEqual(new Set(['tok-1']));
    const names = c.nodes.map((n) => n.name).sort();
    await vi.waitFor(() => {
      for (const E of s.stores) expect(E.replicas('token')).toEqual(names);
    });
    await s.close();
  });

  it('3. a refresh reaches every replica; a late joiner takes the value from a peer with no fetch', async () => {
    await using c = await localCluster(2);
    let fetches = 0;
    // The first token lives 300 ms (to see a refresh pushed), the next one a minute.
    const defs = () => ({ token: expirable({ fetch: async () => (++fetches, ok(`tok-${fetches}`, soon(fetches === 1 ? 300 : 60_000))) }) });
    const s = defineOn(c.nodes, defs);
    const [A, B] = s.stores as [ReturnType<typeof s.on>, ReturnType<typeof s.on>];
    using events = new EventLog(s.namespace);
    expect(await A.tokenOrThrow()).toBe('tok-1');
    // Taken from A: asked under the lock, or pushed by A while B waited for it (A answers
    // its own callers before it pushes).
    expect(await B.tokenOrThrow()).toBe('tok-1');
    expect(fetches).toBe(1);
    const bs = B.stats().token;
    expect([bs.fetches, bs.adopted + bs.replicated]).toEqual([0, 1]);
    await vi.waitFor(() => expect(A.replicas('token')).toHaveLength(2));
    // After expiry, A refreshes lazily and pushes to B: B's next call is a hit.
    await sleep(350);
    const seen = events.events.length;
    expect(await A.tokenOrThrow()).toBe('tok-2');
    await events.next((e) => e.channel === 'replicate' && e.how === 'push' && e.node === c.nodes[1]!.name && e.version !== undefined, 10_000, seen);
    const hitsBefore = B.stats().token.hits;
    expect(await B.tokenOrThrow()).toBe('tok-2');
    expect(B.stats().token.hits).toBe(hitsBefore + 1);
    // A late joiner: no fetch, the value comes from a peer.
    const late = await c.add();
    const L = s.on(late);
    expect(await L.tokenOrThrow()).toBe('tok-2');
    expect(fetches).toBe(2);
    expect(L.stats().token).toMatchObject({ adopted: 1, fetches: 0 });
    await L.close();
    await s.close();
  });

  it('2. callers waiting on other nodes are answered by the fetcher\'s push, not after their own turn at the lock', async () => {
    await using c = await localCluster(3);
    let fetches = 0;
    const g = gate();
    const s = defineOn(c.nodes, () => ({ token: expirable({ fetch: async () => (fetches++, await g.promise, ok(`tok-${fetches}`, soon(60_000))) }) }));
    using events = new EventLog(s.namespace);
    const [A, B, C] = s.stores as [ReturnType<typeof s.on>, ReturnType<typeof s.on>, ReturnType<typeof s.on>];
    const a = A.token();
    await events.next((e) => e.channel === 'fetchStart');
    const waiting = [B.token(), C.token()];
    await sleep(30);
    g.open();
    expect((await Promise.all([a, ...waiting])).map((r) => r.ok && r.value)).toEqual(['tok-1', 'tok-1', 'tok-1']);
    for (const E of [B, C]) expect(E.stats().token).toMatchObject({ replicated: 1, adopted: 0, fetches: 0 });
    await s.close();
  });

  it('3. an older version never overwrites a newer one', async () => {
    await using c = await localCluster(2);
    let fetches = 0;
    const s = defineOn(c.nodes, () => ({ token: expirable({ fetch: async () => ok(`tok-${++fetches}`, soon(60_000)) }) }));
    const [A, B] = s.stores as [ReturnType<typeof s.on>, ReturnType<typeof s.on>];
    await A.token();
    await B.token();
    const group = `expirable-store/${s.namespace}/token/`;
    const [a, b] = c.nodes as [Node, Node];
    await vi.waitFor(() => expect(a.pg.getMembers(group)).toHaveLength(2));
    // A stale push (version 1, far below any fencing token) arriving late is ignored.
    await pushTo(a, b.name, s.namespace, 'token', '', { v: 1, has: true, value: 'stale', exp: soon(60_000), ttl: 60_000, hs: false, st: undefined });
    expect(await B.tokenOrThrow()).toBe('tok-1');
    // A newer one is applied.
    await pushTo(a, b.name, s.namespace, 'token', '', { v: Number.MAX_SAFE_INTEGER, has: true, value: 'newer', exp: soon(60_000), ttl: 60_000, hs: false, st: undefined });
    expect(await B.tokenOrThrow()).toBe('newer');
    await s.close();
  });

  it('local scope: each node fetches and keeps its own', async () => {
    await using c = await localCluster(3);
    const fetchedOn: string[] = [];
    const s = defineOn(c.nodes, () => ({ agentToken: expirable({ scope: 'local', fetch: async () => (fetchedOn.push('x'), ok(fetchedOn.length, soon(60_000))) }) }));
    await Promise.all(s.stores.flatMap((E) => [E.agentToken(), E.agentToken(), E.agentToken()]));
    expect(fetchedOn).toHaveLength(3);
    s.stores.forEach((E, i) => expect(E.replicas('agentToken')).toEqual([c.nodes[i]!.name]));
    await s.close();
  });

  it('5. eager refresh runs once for the cluster, every cycle', async () => {
    await using c = await localCluster(3);
    let fetches = 0;
    const s = defineOn(c.nodes, () => ({
      fx: expirable({ refresh: { eager: { beforeExpiry: 600 } }, fetch: async () => ok(++fetches, soon(2_000)) }), // refresh at ~1.4 s (floor 1 s)
    }));
    using events = new EventLog(s.namespace);
    await Promise.all(s.stores.map((E) => E.fx()));
    expect(fetches).toBe(1);
    // Two more cycles, each refreshed in the background by exactly one node.
    await events.next((e) => e.channel === 'fetchEnd' && e.mode === 'eager' && e.version !== undefined, 5_000);
    const second = events.events.length;
    await events.next((e) => e.channel === 'fetchEnd' && e.mode === 'eager', 5_000, second);
    expect(fetches).toBe(3);
    expect(events.count((e) => e.channel === 'fetchStart')).toBe(3);
    // Callers never missed: the value was always there.
    for (const E of s.stores) expect((await E.fx()).ok).toBe(true);
    expect(s.stores.reduce((n, E) => n + E.stats().fx.misses, 0)).toBe(3);
    await s.close();
  });

  it('6. a failing refresh is retried about once per backoff step by the whole cluster, not once per replica', async () => {
    await using c = await localCluster(3);
    const attempts: number[] = [];
    const s = defineOn(c.nodes, () => ({
      fx: expirable({
        refresh: { eager: { beforeExpiry: 2_400 } },
        fetch: async () => (attempts.push(performance.now()), attempts.length === 1 ? ok('good', soon(3_000)) : fail(new Error('provider down'))),
      }),
    }));
    using events = new EventLog(s.namespace);
    await Promise.all(s.stores.map((E) => E.fx()));
    // Every replica armed a timer; the first failure makes the others stand by.
    await events.next((e) => e.channel === 'refresh' && e.phase === 'failure', 3_000);
    await sleep(1_300); // first failure at ~1 s (the eager floor); until shortly before expiry at ~3 s
    for (const E of s.stores) expect(await E.fxOrThrow()).toBe('good');
    // Backoff from 240 ms doubling up to 1.2 s over ~1.3 s: 3-4 attempts by one node;
    // without coordination each of the 3 replicas would make its own (about 12).
    const refreshAttempts = attempts.length - 1;
    expect(refreshAttempts).toBeGreaterThanOrEqual(2);
    expect(refreshAttempts).toBeLessThanOrEqual(7);
    await s.close();
  });

  it('8. clear drops the value on every replica; a fetch in flight elsewhere does not bring it back', async () => {
    await using c = await localCluster(3);
    let fetches = 0;
    let hold: Promise<void> | undefined;
    const s = defineOn(c.nodes, () => ({ token: expirable({ fetch: async () => (fetches++, await hold, ok(`tok-${fetches}`, soon(60_000))) }) }));
    const [A, B, C] = s.stores as [ReturnType<typeof s.on>, ReturnType<typeof s.on>, ReturnType<typeof s.on>];
    await Promise.all(s.stores.map((E) => E.token()));
    await B.clear('token');
    expect(B.replicas('token')).not.toContain(c.nodes[1]!.name);
    // Other nodes' leaves reach this node's group view right after (pg deltas).
    await vi.waitFor(() => {
      for (const E of s.stores) expect(E.replicas('token')).toEqual([]);
    });
    expect(await C.tokenOrThrow()).toBe('tok-2');
    // A refresh in flight on A when B clears.
    await C.clear('token');
    const g = gate();
    hold = g.promise;
    const inflight = A.token();
    await sleep(30);
    const clearing = B.clear('token');
    g.open();
    expect(await inflight).toMatchObject({ ok: true, value: 'tok-3' });
    await clearing;
    hold = undefined;
    expect(await C.tokenOrThrow()).toBe('tok-4');
    expect(await A.tokenOrThrow()).toBe('tok-4');
    await s.close();
  });

  it('9+10. keyed and stateful across nodes: state put on one node is used by a fetch on another and travels with the value', async () => {
    await using c = await localCluster(3);
    const seen: [string, unknown][] = [];
    const s = defineOn(c.nodes, () => ({
      tenantApiKey: expirable({
        keyed: true,
        requireInitialState: true,
        fetch: async (tenant: string, state: { secret: string; n: number }) => {
          seen.push([tenant, state]);
          return ok(`${tenant}:${state.secret}:${state.n}`, soon(200), { ...state, n: state.n + 1 });
        },
      }),
    }));
    const [A, B, C] = s.stores as [ReturnType<typeof s.on>, ReturnType<typeof s.on>, ReturnType<typeof s.on>];
    const r = await B.tenantApiKey('t-1');
    expect(r.ok ? 'ok' : r.error.reason).toBe('state_required');
    await A.putState('tenantApiKey', 't-1', { secret: 's', n: 0 });
    expect(await B.tenantApiKeyOrThrow('t-1')).toBe('t-1:s:0'); // B fetched with A's state
    await sleep(250);
    expect(await C.tenantApiKeyOrThrow('t-1')).toBe('t-1:s:1'); // C got B's next state
    expect(await A.tenantApiKeyOrThrow({ toString: () => 't-2' } as never).catch((e: Error) => e.name)).toBe('InvalidOptionError');
    await A.clear('tenantApiKey');
    const after = await C.tenantApiKey('t-1');
    expect(after.ok ? 'ok' : after.error.reason).toBe('state_required');
    expect(seen.map(([t]) => t)).toEqual(['t-1', 't-1']);
    await s.close();
  });

  it('13. a node that closes while it fetches under the lock: a waiter elsewhere takes the lock and fetches', async () => {
    await using c = await localCluster(3);
    let fetches = 0;
    const never = new Promise<never>(() => undefined);
    const s = defineOn(c.nodes, () => ({
      token: expirable({ fetchTimeout: 60_000, fetch: async () => (++fetches === 1 ? await never : ok(`tok-${fetches}`, soon(60_000))) }),
    }));
    using events = new EventLog(s.namespace);
    const [A, B, C] = s.stores as [ReturnType<typeof s.on>, ReturnType<typeof s.on>, ReturnType<typeof s.on>];
    void A.token();
    await events.next((e) => e.channel === 'fetchStart');
    const waiting = [B.token(), C.token()];
    await sleep(30);
    await c.nodes[0]!.close();
    const results = await Promise.all(waiting);
    expect(results.map((r) => (r.ok ? r.value : r.error.message))).toEqual(['tok-2', 'tok-2']);
    expect(fetches).toBe(2);
    await s.close();
  });
});
