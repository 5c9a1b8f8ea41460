// The store's §5 scenarios across real node processes, written once and run against every
// coordination backend (test/store-cluster.test.ts: the mesh; test/store-cluster-redis.test.ts:
// Redis): one fetch for a cluster of processes, replicas and a late joiner, eager refresh that
// goes on after kill -9 of the process that fetched last, kill -9 of the process fetching,
// clear on every replica, and the counters.
import { afterEach, expect, it } from 'vitest';
import { disposeAllPeers, startCluster, type Cluster, type Peer } from '../helpers/peers.js';
import { STORE_PEER, type StoreConfig } from '../fixtures/store-peer.js';
import { startTokenServer } from '../fixtures/store-token-server.js';
import { uniqueNamespace } from '../fixtures/store-tools.js';

/** A backend the scenarios run against: what it adds to every process's store config. */
export interface ScenarioBackend {
  /** Extra config of every process's store (e.g. the Redis URL). */
  config(): Partial<StoreConfig>;
}

const MESH = { cookie: 'store-cluster', heartbeatInterval: 100, failureTimeout: 800, callTimeout: 2_000 };

async function defineEverywhere(peers: Peer[], config: StoreConfig): Promise<void> {
  await Promise.all(peers.map((p) => p.run(STORE_PEER, 'defineStore', config)));
}

/** Declares every scenario (inside the caller's `describe`). */
export function storeClusterScenarios(backend: ScenarioBackend): void {
  const configOf = (extra: Partial<StoreConfig> & { tokenUrl: string }): StoreConfig => ({ namespace: uniqueNamespace('proc'), ...backend.config(), ...extra });

  afterEach(async () => {
    await disposeAllPeers();
  });

  it('one fetch for 3 processes x 50 concurrent callers; every caller holds a replica; a late joiner takes the value without a fetch', async () => {
    await using server = await startTokenServer(60_000);
    await using cluster: Cluster = await startCluster(3, MESH);
    const config = configOf({ tokenUrl: server.url });
    await defineEverywhere(cluster.peers, config);
    const values = await Promise.all(cluster.peers.map((p) => p.run<string[]>(STORE_PEER, 'callMany', 50)));
    expect(server.requests).toHaveLength(1);
    expect(new Set(values.flat())).toEqual(new Set(['tok-1']));
    const names = cluster.peers.map((p) => p.name).sort();
    for (const p of cluster.peers) {
      await expect.poll(() => p.run<string[]>(STORE_PEER, 'replicas'), { timeout: 5_000 }).toEqual(names);
    }
    const late = await cluster.add({ ...MESH, name: `${cluster.peers[0]!.name}-late` });
    await late.run(STORE_PEER, 'defineStore', config);
    expect(await late.run<string[]>(STORE_PEER, 'callMany', 5)).toEqual(Array(5).fill('tok-1'));
    expect(server.requests).toHaveLength(1);
    expect(await late.run(STORE_PEER, 'stats')).toMatchObject({ fetches: 0, adopted: 1 });
  });

  it('5. eager refresh goes on, once per cycle, after kill -9 of the node that fetched last', async () => {
    const ttl = 1_500;
    await using server = await startTokenServer(ttl);
    await using cluster: Cluster = await startCluster(3, MESH);
    await defineEverywhere(cluster.peers, configOf({ tokenUrl: server.url, refresh: { eager: { beforeExpiry: 700 } } }));
    await Promise.all(cluster.peers.map((p) => p.run(STORE_PEER, 'callMany', 1)));
    expect(server.requests).toHaveLength(1);
    // The first background refresh: whoever wins the lock fetches.
    const second = await server.request(2);
    const fetcher = cluster.peers.find((p) => p.name === second.node)!;
    const survivors = cluster.peers.filter((p) => p !== fetcher);
    await Promise.all(survivors.map((p) => p.run(STORE_PEER, 'startReading', 20)));
    // Kill it only once its new value reached the others (else this is the mid-fetch case).
    await Promise.all(survivors.map((p) => expect.poll(() => p.run<string[]>(STORE_PEER, 'callMany', 1), { timeout: 5_000, interval: 20 }).toEqual([second.token])));
    fetcher.kill();
    const killedAt = Date.now();
    await fetcher.exited();
    // The next refresh runs on a survivor: every replica armed the timer.
    const third = await server.request(3);
    expect(survivors.map((p) => p.name)).toContain(third.node);
    const fourth = await server.request(4);
    expect(survivors.map((p) => p.name)).toContain(fourth.node);
    // Once per cycle: consecutive fetches are about a cycle apart, never in a burst.
    const trace = JSON.stringify({ killed: fetcher.name, killedAt, requests: server.requests });
    for (let i = 1; i < server.requests.length; i++) {
      expect(server.requests[i]!.at - server.requests[i - 1]!.at, trace).toBeGreaterThan(300);
    }
    // The readers never saw an error and never waited on a refresh.
    for (const p of survivors) {
      const tally = await p.run<{ reads: number; errors: string[]; slowMs: number }>(STORE_PEER, 'stopReading');
      expect(tally.reads).toBeGreaterThan(10);
      expect(tally.errors).toEqual([]);
    }
  });

  it('13. kill -9 of the node fetching under the lock: a waiter on another node takes the lock and fetches; nobody hangs', async () => {
    await using server = await startTokenServer(60_000);
    await using cluster: Cluster = await startCluster(3, MESH);
    await defineEverywhere(cluster.peers, configOf({ tokenUrl: server.url }));
    const [a, b, c] = cluster.peers as [Peer, Peer, Peer];
    server.holdNext(1); // a's fetch never gets an answer
    await a.run(STORE_PEER, 'callInBackground', 3, 'a');
    await server.request(1);
    await b.run(STORE_PEER, 'callInBackground', 3, 'b');
    await c.run(STORE_PEER, 'callInBackground', 3, 'c');
    a.kill();
    const [, bValues] = await b.waitEvent('settled', (tag: string) => tag === 'b', 10_000);
    const [, cValues] = await c.waitEvent('settled', (tag: string) => tag === 'c', 10_000);
    expect(bValues).toEqual(Array(3).fill('tok-2'));
    expect(cValues).toEqual(Array(3).fill('tok-2'));
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1]!.node).not.toBe(a.name);
  });

  it('8. clear on one process drops the value on every replica', async () => {
    await using server = await startTokenServer(60_000);
    await using cluster: Cluster = await startCluster(3, MESH);
    await defineEverywhere(cluster.peers, configOf({ tokenUrl: server.url }));
    await Promise.all(cluster.peers.map((p) => p.run(STORE_PEER, 'callMany', 2)));
    expect(server.requests).toHaveLength(1);
    await cluster.peers[1]!.run(STORE_PEER, 'clear');
    for (const p of cluster.peers) await expect.poll(() => p.run<string[]>(STORE_PEER, 'replicas'), { timeout: 5_000 }).toEqual([]);
    expect(await cluster.peers[2]!.run<string[]>(STORE_PEER, 'callMany', 2)).toEqual(['tok-2', 'tok-2']);
    expect(await cluster.peers[0]!.run<string[]>(STORE_PEER, 'callMany', 1)).toEqual(['tok-2']);
    expect(server.requests).toHaveLength(2);
  });
}
