// Regression tests of the store: each pins one defect that was found and fixed (the first
// line of each test says which). Real nodes over real TCP in this process; wire messages
// crafted here only stand for what a peer would send in the situation described.
import { describe, expect, it, vi } from 'vitest';
import { defineExpirables } from '../src/dsl/define.js';
import { expirable } from '../src/dsl/definition.js';
import { ok } from '../src/store/result.js';
import { ExpirableError } from '../src/errors.js';
import { clockToken } from '../src/mesh/global/fencing.js';
import { startNode, type Node } from '../src/node.js';
import { FakeClock } from './helpers/fake-clock.js';
import { localCluster } from './fixtures/store-mesh.js';
import { gate, pushTo, sleep, uniqueNamespace } from './fixtures/store-tools.js';

const soon = (ms: number) => Date.now() + ms;

/** `holder` takes the lock of `resource` and keeps it until `release()` (which resolves once it let go); resolves once granted, with its token. */
async function holdLock(holder: Node, resource: string): Promise<{ token: number; release: () => Promise<void> }> {
  const release = gate();
  const granted = gate();
  let token = 0;
  const holding = holder.global.trans(resource, async (lock) => {
    token = lock.token;
    granted.open();
    await release.promise;
  });
  await granted.promise;
  return {
    token,
    release: async () => {
      release.open();
      await holding;
    },
  };
}

describe('store regressions (cluster scope, TCP)', () => {
  it('an early answer by a push is not handed to later callers once that value has expired', async () => {
    // Pins: a push answered this node's waiting callers, the promise stayed joinable until
    // this node's own lock turn ended, and a miss after expiry got the expired value.
    await using c = await localCluster(2);
    const [a, b] = c.nodes as [Node, Node];
    const namespace = uniqueNamespace('reg');
    let fetches = 0;
    const defs = () => ({ tok: expirable({ fetch: async () => ok(`tok-${++fetches}`, soon(60_000)) }) });
    const A = defineExpirables(defs(), { node: a, namespace });
    const B = defineExpirables(defs(), { node: b, namespace });
    await A.clear('tok'); // attaches A's store (its router answers pushes)
    // Another holder keeps the lock, so A's refresh waits for its turn.
    const { token, release } = await holdLock(b, `expirable-store/${namespace}/tok/`);
    const first = A.tok();
    // The holder pushes what it wrote (a value living 300 ms); A's waiting caller takes it.
    await pushTo(b, a.name, namespace, 'tok', '', { v: token, has: true, value: 'pushed', exp: soon(300), ttl: 300, hs: false, st: undefined });
    expect(await first).toMatchObject({ ok: true, value: 'pushed' });
    await sleep(450); // the pushed value has expired; A's first refresh still waits for the lock
    const later = A.tok();
    await release();
    expect(await later).toMatchObject({ ok: true, value: 'tok-1' });
    await Promise.all([A.close(), B.close()]);
  });

  it('a pushed value expires at its expiresAt, however long the push took to arrive', async () => {
    // Pins: a receiver counted a push's time left from its arrival, so the push's transit (or
    // a receiver frozen with the push in its socket buffer) lengthened the value's life, and a
    // read returned it after its expiresAt (found by the chaos harness, 1-138 ms late).
    await using c = await localCluster(2);
    const [a, b] = c.nodes as [Node, Node];
    const namespace = uniqueNamespace('reg');
    const clock = new FakeClock();
    let fetches = 0;
    const defs = () => ({ tok: expirable({ fetch: async () => ok(`tok-${++fetches}`, soon(60_000)) }) });
    const A = defineExpirables(defs(), { node: a, namespace, clock });
    const B = defineExpirables(defs(), { node: b, namespace });
    const { token, release } = await holdLock(b, `expirable-store/${namespace}/tok/`);
    const first = A.tok();
    // Sent with 60 s left, but its expiresAt is 300 ms away: it spent its life in transit.
    await pushTo(b, a.name, namespace, 'tok', '', { v: token, has: true, value: 'pushed', exp: clock.wallNow() + 300, ttl: 60_000, hs: false, st: undefined });
    expect(await first).toMatchObject({ ok: true, value: 'pushed' });
    await clock.advance(298);
    expect(await A.tok()).toMatchObject({ ok: true, value: 'pushed' });
    await clock.advance(2);
    const later = A.tok(); // expired on the wall clock: a miss, not the pushed value
    await release();
    expect(await later).toMatchObject({ ok: true, value: 'tok-1' });
    await Promise.all([A.close(), B.close()]);
  });

  it('a clear and a refresh win over versions above the lock\'s tokens (a new coordinator whose clock is behind)', async () => {
    // Pins: writes carried the bare lock token as their version, so after a coordinator
    // change to a host whose clock is behind, a clear was ignored by replicas holding a
    // version above the new tokens, and a new value was refused by them.
    await using c = await localCluster(2);
    const [a, b] = c.nodes as [Node, Node];
    const namespace = uniqueNamespace('reg');
    let fetches = 0;
    const defs = () => ({ tok: expirable({ fetch: async () => ok(`tok-${++fetches}`, soon(60_000)) }) });
    const A = defineExpirables(defs(), { node: a, namespace });
    const B = defineExpirables(defs(), { node: b, namespace });
    expect(await A.tokOrThrow()).toBe('tok-1');
    expect(await B.tokOrThrow()).toBe('tok-1');
    const group = `expirable-store/${namespace}/tok/`;
    await vi.waitFor(() => expect(a.pg.getMembers(group)).toHaveLength(2));
    // B holds a value written under a coordinator whose clock ran 10 minutes ahead of the
    // one granting tokens now.
    const ahead = clockToken() + 10 * 60_000 * 1024;
    await pushTo(a, b.name, namespace, 'tok', '', { v: ahead, has: true, value: 'ahead', exp: soon(60_000), ttl: 60_000, hs: false, st: undefined });
    expect(await B.tokOrThrow()).toBe('ahead');
    await A.clear('tok');
    const r = await B.tok();
    expect(r.ok && r.value).not.toBe('ahead');
    // The next value written on A replaces the tombstone on B: B takes it, no fetch.
    expect(await A.tokOrThrow()).toBe(r.ok ? r.value : undefined);
    expect(await B.tokOrThrow()).toBe('tok-2');
    expect(fetches).toBe(2);
    await Promise.all([A.close(), B.close()]);
  });
  it('the callers of a fetch get its value before the push to a silent peer, not after (a short-lived value is still valid)', async () => {
    // Pins: the fetching node answered its callers only after its push, which waits up to
    // peerTimeout for a silent peer, so a value living shorter than that was handed out
    // after it expired.
    await using c = await localCluster(2);
    const [a, silent] = c.nodes as [Node, Node];
    const namespace = uniqueNamespace('reg');
    // A peer that is connected but never answers (a stopped or overloaded process): its
    // router takes the calls and replies to none.
    silent.spawn({ init: () => null, handleCall: (_msg: unknown, state: null) => ({ noreply: true as const, state }) }, { name: `expirable-store/${namespace}` });
    const A = defineExpirables({ tok: expirable({ fetch: async () => ok('short', soon(600)) }) }, { node: a, namespace, peerTimeout: 1_500 });
    const r = await A.tok();
    const at = Date.now();
    expect(r).toMatchObject({ ok: true, value: 'short' });
    expect(r.ok && r.expiresAt).toBeGreaterThan(at);
    await A.close();
  });

  it('a replica that counted the value\'s life short takes the same version back from a peer instead of fetching', async () => {
    // Pins: a replica's reading of a value came late (here: its wall clock was ahead when it
    // adopted it, as a slow ask or push also does), so it expired here while the peer that
    // fetched still held it valid; asked under the lock, that peer's same version was refused
    // as not newer, and the node fetched inside the value's life (chaos, CI seed, Node 20).
    await using c = await localCluster(2);
    const [a, b] = c.nodes as [Node, Node];
    const namespace = uniqueNamespace('reg');
    const clock = new FakeClock();
    let fetches = 0;
    const defs = () => ({ tok: expirable({ fetch: async () => ok(`tok-${++fetches}`, soon(60_000)) }) });
    const A = defineExpirables(defs(), { node: a, namespace });
    const B = defineExpirables(defs(), { node: b, namespace, clock });
    expect(await A.tok()).toMatchObject({ ok: true, value: 'tok-1' });
    clock.jumpWall(59_000); // B reads expiresAt as 1 s away
    expect(await B.tok()).toMatchObject({ ok: true, value: 'tok-1' }); // A's push, or B's ask
    clock.jumpWall(-59_000); // the wall clock is stepped back
    await clock.advance(2_000); // B's reading has run out; A's value lives on
    expect(await B.tok()).toMatchObject({ ok: true, value: 'tok-1' });
    expect(B.stats().tok.misses).toBe(2);
    expect(fetches).toBe(1);
    expect(await B.tok()).toMatchObject({ ok: true, value: 'tok-1' }); // served here again: a hit
    expect(B.stats().tok.hits).toBe(1);
    await Promise.all([A.close(), B.close()]);
  });
});


describe.each(['cluster', 'local'] as const)('store regressions (scope %s, one node)', (scope) => {
  it('a state written under the lock the same context already holds is kept (updateState whose fn reads the expirable)', async () => {
    // Pins: re-entrant writes got the same version (the same lock token) and the second was
    // refused, so the state set by updateState was lost (local scope: a deadlock).
    await using node = await startNode();
    const got: unknown[] = [];
    const E = defineExpirables(
      { tok: expirable({ scope, fetch: async (s: number | undefined) => (got.push(s), ok(`t${s}`, soon(60_000))) }) },
      { node, namespace: uniqueNamespace('reg') },
    );
    await E.updateState('tok', async () => {
      expect(await E.tokOrThrow()).toBe('tundefined');
      return 42;
    });
    await E.clear('tok');
    await E.putState('tok', 7);
    await E.updateState('tok', async (s) => (await E.tokOrThrow(), (s ?? 0) + 1));
    expect(got).toEqual([undefined, 7]);
    // The state written after the fetch is the newest: the next fetch gets it.
    await E.updateState('tok', async (s) => {
      expect(s).toBe(8);
      return s ?? 0;
    });
    await E.close();
  });

  it('a fetch that calls putState stores its value (one fetch for three calls)', async () => {
    // Pins: the fetch's putState took the grant's version, so the fetched value (same
    // version) was refused and never cached: every call fetched again.
    await using node = await startNode();
    let fetches = 0;
    const E = defineExpirables(
      {
        tok: expirable({
          scope,
          fetch: async (s: number | undefined) => {
            fetches++;
            await E.putState('tok', (s ?? 0) + 1);
            return ok(`t${fetches}`, soon(60_000));
          },
        }),
      },
      { node, namespace: uniqueNamespace('reg') },
    );
    for (let i = 0; i < 3; i++) expect(await E.tokOrThrow()).toBe('t1');
    expect(fetches).toBe(1);
    expect(E.replicas('tok')).toEqual([node.name]);
    await E.updateState('tok', async (s) => {
      expect(s).toBe(1);
      return s ?? 0;
    });
    await E.close();
  });

  it("updateState's fn that never settles fails with reason 'timeout' after fetchTimeout and frees the lock", async () => {
    // Pins: the fn ran under the lock with no timeout, so one hung fn held every caller.
    await using node = await startNode();
    const E = defineExpirables(
      { tok: expirable({ scope, fetchTimeout: 300, fetch: async (s: number | undefined) => ok(`t${s}`, soon(60_000)) }) },
      { node, namespace: uniqueNamespace('reg') },
    );
    await E.putState('tok', 1);
    const hung = E.updateState('tok', () => new Promise<number>(() => undefined));
    const read = E.tok();
    const err = await hung.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ExpirableError);
    expect((err as ExpirableError).reason).toBe('timeout');
    expect(await read).toMatchObject({ ok: true, value: 't1' }); // the state is unchanged
    await E.close();
  });

  it('a keyed entry keeps a frozen copy of its key: mutating the caller\'s object later does not change what the next refresh fetches', async () => {
    // Pins: the entry kept the caller's key object by reference, so a later refresh fetched
    // whatever the caller had changed it into.
    await using node = await startNode();
    const seen: unknown[] = [];
    const E = defineExpirables(
      {
        tenant: expirable({
          scope,
          keyed: true,
          fetch: async (key: { t: string; tags: string[] }) => (seen.push(JSON.stringify(key)), ok(`token-of-${key.t}`, soon(60_000))),
        }),
      },
      { node, namespace: uniqueNamespace('reg') },
    );
    const key = { t: 'alice', tags: ['a'] };
    expect(await E.tenantOrThrow(key)).toBe('token-of-alice');
    key.t = 'mallory';
    key.tags.push('b');
    await E.clear('tenant', { t: 'alice', tags: ['a'] }); // keeps nothing: the next call refetches the same entry
    expect(await E.tenantOrThrow({ t: 'alice', tags: ['a'] })).toBe('token-of-alice');
    expect(seen).toEqual(['{"t":"alice","tags":["a"]}', '{"t":"alice","tags":["a"]}']);
    await E.close();
  });

  it('close() racing the first call: the namespace is usable again by a new store on this node', async () => {
    // Pins: the router was spawned after close() when the attach completed later, so it kept
    // the namespace's well-known name and every later store of that namespace failed.
    await using node = await startNode();
    const namespace = uniqueNamespace('reg');
    const defs = () => ({ tok: expirable({ scope, fetch: async () => ok('t', soon(60_000)) }) });
    const E = defineExpirables(defs(), { node, namespace });
    const first = E.tok();
    await E.close();
    expect(await first).toMatchObject({ ok: false, error: { reason: 'unavailable' } });
    const E2 = defineExpirables(defs(), { node, namespace });
    expect(await E2.tok()).toMatchObject({ ok: true, value: 't' });
    await E2.close();
  });

  it("a closed store answers 'unavailable', not the value it had cached", async () => {
    // Pins: after close() the named functions kept serving the cached value (which a clear
    // elsewhere could no longer reach).
    await using node = await startNode();
    const E = defineExpirables(
      {
        tok: expirable({ scope, fetch: async () => ok('t', soon(60_000)) }),
        key: expirable({ scope, keyed: true, fetch: async (k: string) => ok(k, soon(60_000)) }),
      },
      { node, namespace: uniqueNamespace('reg') },
    );
    expect(await E.tokOrThrow()).toBe('t');
    expect(await E.keyOrThrow('k')).toBe('k');
    await E.close();
    for (const r of [await E.tok(), await E.key('k'), await E.fetch('tok')]) expect(r).toMatchObject({ ok: false, error: { reason: 'unavailable' } });
    await expect(E.tokOrThrow()).rejects.toMatchObject({ reason: 'unavailable' });
  });

  it('a key evicted while its fetch runs is not fetched a second time by the next caller of that key', async () => {
    // Pins: eviction disposed the entry at once, the next caller of the key made a new entry
    // and fetched again while the first fetch of the same key still ran on this node.
    await using node = await startNode();
    const fetched: string[] = [];
    const g = gate();
    const E = defineExpirables(
      { k: expirable({ scope, keyed: true, maxKeys: 1, fetch: async (key: string) => (fetched.push(key), await g.promise, ok(`${key}${fetched.length}`, soon(60_000))) }) },
      { node, namespace: uniqueNamespace('reg') },
    );
    const x1 = E.k('x');
    const y = E.k('y'); // evicts x while its fetch runs
    const x2 = E.k('x'); // evicts y while its fetch runs; finds x's running refresh
    g.open();
    const [rx1, ry, rx2] = await Promise.all([x1, y, x2]);
    expect(fetched.sort()).toEqual(['x', 'y']);
    expect(rx2).toEqual(rx1);
    expect(ry).toMatchObject({ ok: true });
    expect(await E.kOrThrow('x')).toBe((rx1 as { value: string }).value); // kept: a hit
    expect(E.stats().k.hits).toBe(1);
    await E.close();
  });
});
