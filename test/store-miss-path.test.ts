// The miss path of a cluster-scope expirable across nodes (src/store/replication.ts): what a
// refresh waits for, and what it does not. Real nodes over real TCP in this process; a
// "silent" peer is a connected node whose store router takes messages and answers none (a
// stopped or overloaded process), with a peerTimeout far beyond the margins used here.
import diagnostics_channel from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { defineExpirables } from '../src/dsl/define.js';
import { expirable } from '../src/dsl/definition.js';
import { ok } from '../src/store/result.js';
import type { Node } from '../src/node.js';
import type { ActorRef } from '../src/actors/ref.js';
import { localCluster } from './fixtures/store-mesh.js';
import { gate, sleep, uniqueNamespace } from './fixtures/store-tools.js';

const soon = (ms: number) => Date.now() + ms;
/** Far beyond the margin of each race below: waiting for it fails the test. */
const PEER_TIMEOUT = 25_000;
/** How long an outcome that needs no peer timeout may take here (a loaded 2-core machine). */
const MARGIN = 8_000;

/** Resolves with `p`'s value, or with 'waited' if `ms` pass first. */
const within = <T>(p: Promise<T>, ms: number): Promise<T | 'waited'> => Promise.race([p, sleep(ms).then(() => 'waited' as const)]);

/** Resolves once everything `from` sent to the store `namespace` on `to` before this call was delivered there (one link is FIFO). */
async function delivered(from: Node, to: Node, namespace: string): Promise<void> {
  await from.ref({ node: to.name, id: `expirable-store/${namespace}` }).call({ t: 'ask', n: 'tok', k: '' });
}

/** Makes `node` a silent peer of the store `namespace`: its router answers asks with `ask()`, nothing else, ever. */
function silentRouter(node: Node, namespace: string, ask: () => 'none' | 'never'): ActorRef {
  return node.spawn(
    {
      init: () => null,
      handleCall: (msg: { t?: string }, state: null) => (msg?.t === 'ask' && ask() === 'none' ? { reply: null, state } : { noreply: true as const, state }),
    },
    { name: `expirable-store/${namespace}` },
  );
}

describe('the miss path (cluster scope, TCP)', () => {
  it('the fetching node lets go of the lock without waiting for its push to be acknowledged (a silent peer)', async () => {
    // Before: the push was a call to every node, awaited under the lock, so a silent peer held
    // the lock (and every waiter in the cluster) for peerTimeout after each fetch.
    await using c = await localCluster(3);
    const [a, b, silent] = c.nodes as [Node, Node, Node];
    const namespace = uniqueNamespace('miss');
    silentRouter(silent, namespace, () => 'none'); // answers asks (it holds nothing), never a push
    let fetches = 0;
    const defs = () => ({ tok: expirable({ fetch: async () => ok(`tok-${++fetches}`, soon(60_000)) }) });
    const A = defineExpirables(defs(), { node: a, namespace, peerTimeout: PEER_TIMEOUT });
    const B = defineExpirables(defs(), { node: b, namespace, peerTimeout: PEER_TIMEOUT });
    expect(await A.tokOrThrow()).toBe('tok-1');
    // The lock is free again: another node is granted it at once.
    const granted = within(b.global.trans(`expirable-store/${namespace}/tok/`, async () => 'granted'), MARGIN);
    expect(await granted).toBe('granted');
    // And B, which never called, takes A's value with no fetch.
    expect(await B.tokOrThrow()).toBe('tok-1');
    expect(fetches).toBe(1);
    await Promise.all([A.close(), B.close()]);
  });

  it('an ask ends at the first answer that serves: a silent peer costs a node that joins a held value nothing', async () => {
    // Before: an ask waited for every node, so one silent peer added peerTimeout to every
    // cold node's first call even though another node held the value.
    await using c = await localCluster(3);
    const [a, b, silent] = c.nodes as [Node, Node, Node];
    const namespace = uniqueNamespace('miss');
    let mute = false;
    silentRouter(silent, namespace, () => (mute ? 'never' : 'none'));
    let fetches = 0;
    const defs = () => ({ tok: expirable({ fetch: async () => ok(`tok-${++fetches}`, soon(60_000)) }) });
    const A = defineExpirables(defs(), { node: a, namespace, peerTimeout: PEER_TIMEOUT });
    const B = defineExpirables(defs(), { node: b, namespace, peerTimeout: PEER_TIMEOUT });
    expect(await A.tokOrThrow()).toBe('tok-1');
    mute = true; // from now on the silent peer answers no ask either
    await delivered(a, b, namespace); // A's push came and went: B has no entry, it took nothing
    expect(await within(B.tok(), MARGIN)).toMatchObject({ ok: true, value: 'tok-1' });
    expect(B.stats().tok).toMatchObject({ fetches: 0, adopted: 1 });
    expect(fetches).toBe(1);
    await Promise.all([A.close(), B.close()]);
  });

  it('a miss takes a value another node holds without a turn at the lock (its request is withdrawn)', async () => {
    // Before: a node that missed asked its peers only once granted the lock, so N cold nodes
    // joining a value the cluster held took N lock turns, one after the other.
    await using c = await localCluster(3);
    const [a, b, holder] = c.nodes as [Node, Node, Node];
    const namespace = uniqueNamespace('miss');
    let fetches = 0;
    const defs = () => ({ tok: expirable({ fetch: async () => ok(`tok-${++fetches}`, soon(60_000)) }) });
    const A = defineExpirables(defs(), { node: a, namespace });
    const B = defineExpirables(defs(), { node: b, namespace });
    expect(await A.tokOrThrow()).toBe('tok-1');
    await delivered(a, b, namespace); // A's push came and went: B has no entry, it took nothing
    // Another node takes the entry's lock and keeps it.
    const release = gate();
    const held = gate();
    const holding = holder.global.trans(`expirable-store/${namespace}/tok/`, async () => {
      held.open();
      await release.promise;
    });
    await held.promise;
    // B misses while the lock is held: A's replica answers it.
    expect(await within(B.tok(), MARGIN)).toMatchObject({ ok: true, value: 'tok-1' });
    expect(B.stats().tok).toMatchObject({ fetches: 0, adopted: 1 });
    // Its lock request was withdrawn (or never made): nothing of B's waits behind the holder.
    await expect.poll(() => b.global.stats().waiting, { timeout: MARGIN }).toBe(0);
    release.open();
    await holding;
    expect(fetches).toBe(1);
    await Promise.all([A.close(), B.close()]);
  });

  it('a miss on a node that holds no replica asks the holders first and asks no lock when one of them serves', async () => {
    // Before: the lock was asked for at once, beside the ask, and withdrawn when the ask
    // answered: two more messages per cold key, and a turn at the lock service for each.
    await using c = await localCluster(3);
    const [a, b] = c.nodes as [Node, Node, Node];
    const namespace = uniqueNamespace('miss');
    let fetches = 0;
    const defs = () => ({ tenant: expirable({ keyed: true, fetch: async (k: string) => ok(`${k}-${++fetches}`, soon(60_000)) }) });
    const A = defineExpirables(defs(), { node: a, namespace });
    const B = defineExpirables(defs(), { node: b, namespace });
    const keys = ['k1', 'k2', 'k3', 'k4', 'k5'];
    for (const k of keys) await A.tenantOrThrow(k);
    // A is in every key's group on B before B reads (a join is one frame on the link).
    await expect.poll(() => keys.every((k) => B.replicas('tenant', k).includes(a.name)), { timeout: MARGIN }).toBe(true);
    const asked: string[] = [];
    const onAcquire = (m: unknown): void => {
      const e = m as { node: string; lock: string };
      if (e.node === b.name && e.lock.includes(namespace)) asked.push(e.lock);
    };
    diagnostics_channel.subscribe('expirable-store:lock:acquire', onAcquire);
    try {
      for (const [i, k] of keys.entries()) expect(await B.tenantOrThrow(k)).toBe(`${k}-${i + 1}`);
    } finally {
      diagnostics_channel.unsubscribe('expirable-store:lock:acquire', onAcquire);
    }
    expect(asked).toEqual([]);
    expect(B.stats().tenant).toMatchObject({ fetches: 0, adopted: keys.length });
    // A key nobody holds goes to the lock at once (and is fetched once).
    diagnostics_channel.subscribe('expirable-store:lock:acquire', onAcquire);
    try {
      expect(await B.tenantOrThrow('fresh')).toBe(`fresh-${keys.length + 1}`);
    } finally {
      diagnostics_channel.unsubscribe('expirable-store:lock:acquire', onAcquire);
    }
    expect(asked).toHaveLength(1);
    await Promise.all([A.close(), B.close()]);
  });

  it('a holder that never answers delays the lock request by a short hedge, not by the peer timeout', async () => {
    // The only holder of the key is silent (its router takes asks and answers none). The miss
    // asks it, gives up waiting after the hedge, asks for the lock, and under the lock asks
    // every node (the silent one costs peerTimeout there, as any fetch with a silent peer):
    // about one peerTimeout in all. Without the hedge it waited for the holder first: two.
    await using c = await localCluster(3);
    const [a, b, silent] = c.nodes as [Node, Node, Node];
    const namespace = uniqueNamespace('miss');
    const peerTimeout = 5_000;
    const router = silentRouter(silent, namespace, () => 'never');
    silent.pg.join(`expirable-store/${namespace}/tok/`, router);
    let fetches = 0;
    const defs = () => ({ tok: expirable({ fetch: async () => ok(`tok-${++fetches}`, soon(60_000)) }) });
    const A = defineExpirables(defs(), { node: a, namespace, peerTimeout });
    const B = defineExpirables(defs(), { node: b, namespace, peerTimeout });
    await expect.poll(() => B.replicas('tok'), { timeout: MARGIN }).toEqual([silent.name]);
    const t0 = performance.now();
    expect(await B.tokOrThrow()).toBe('tok-1');
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(peerTimeout - 100); // the ask under the lock waited for the silent node
    expect(took).toBeLessThan(2 * peerTimeout - 500);
    await Promise.all([A.close(), B.close()]);
  });

  it('a holder that answers after the hedge still answers the callers, and the lock request made meanwhile is withdrawn', async () => {
    await using c = await localCluster(3);
    const [b, slow, locker] = c.nodes as [Node, Node, Node];
    const namespace = uniqueNamespace('miss');
    const resource = `expirable-store/${namespace}/tok/`;
    // The only holder answers an ask when the test lets it (past the hedge) with a valid value.
    const answer = gate();
    const router = slow.spawn(
      {
        init: () => null,
        handleCall: async (msg: { t?: string }, state: null) => {
          if (msg?.t !== 'ask') return { noreply: true as const, state };
          await answer.promise;
          return { reply: { v: 5, has: true, value: 'tok-slow', exp: soon(60_000), ttl: 60_000, hs: false, st: null }, state };
        },
      },
      { name: `expirable-store/${namespace}` },
    );
    slow.pg.join(resource, router);
    // Another node holds the entry's lock meanwhile: a lock request from B waits.
    const release = gate();
    const held = gate();
    const holding = locker.global.trans(resource, async () => {
      held.open();
      await release.promise;
    });
    await held.promise;
    let fetches = 0;
    const B = defineExpirables({ tok: expirable({ fetch: async () => ok(`tok-${++fetches}`, soon(60_000)) }) }, { node: b, namespace, peerTimeout: PEER_TIMEOUT });
    await expect.poll(() => B.replicas('tok'), { timeout: MARGIN }).toEqual([slow.name]);
    const call = B.tok();
    // Past the hedge, B waits for the lock as well; then the holder answers.
    await expect.poll(() => b.global.stats().waiting, { timeout: MARGIN }).toBe(1);
    answer.open();
    expect(await within(call, MARGIN)).toMatchObject({ ok: true, value: 'tok-slow' });
    expect(B.stats().tok).toMatchObject({ fetches: 0, adopted: 1 });
    // The answer withdrew the lock request.
    await expect.poll(() => b.global.stats().waiting, { timeout: MARGIN }).toBe(0);
    release.open();
    await holding;
    expect(fetches).toBe(0);
    await B.close();
  });
});
