// The store's §5 scenarios across real node processes, written once and run against every
// coordination backend (test/store-cluster.test.ts: the mesh; test/store-cluster-redis.test.ts:
// Redis): one fetch for a cluster of processes, replicas and a late joiner, eager refresh that
// goes on after kill -9 of the process that fetched last, kill -9 of the process fetching,
// clear on every replica, and the counters. On the mesh the processes are nodes of one
// cluster; on Redis they run no node at all (`Fleet`).
import { afterEach, expect, it } from 'vitest';
import { disposeAll, disposeAllPeers, spawnPeer, startCluster, type Peer } from '../helpers/peers.js';
import { STORE_PEER, type StoreConfig } from '../fixtures/store-peer.js';
import { startTokenServer } from '../fixtures/store-token-server.js';
import { uniqueNamespace } from '../fixtures/store-tools.js';

/** A backend the scenarios run against: what it adds to every process's store config. */
export interface ScenarioBackend {
  /** Extra config of every process's store (e.g. the Redis URL). */
  config(): Partial<StoreConfig>;
  /** The processes of a scenario. @default nodes of one mesh cluster */
  fleet?(n: number): Promise<Fleet>;
}

/** The processes of one scenario: each `peer.name` is the name `replicas()` lists. */
export interface Fleet extends AsyncDisposable {
  readonly peers: Peer[];
  /** One more process, named `name`, ready to define its store. */
  add(name: string): Promise<Peer>;
}

const MESH = { cookie: 'store-cluster', heartbeatInterval: 100, failureTimeout: 800, callTimeout: 2_000 };

/** Nodes of one full mesh. */
export async function meshFleet(n: number): Promise<Fleet> {
  const cluster = await startCluster(n, MESH);
  return {
    peers: cluster.peers,
    add: (name) => cluster.add({ ...MESH, name }),
    [Symbol.asyncDispose]: () => cluster[Symbol.asyncDispose](),
  };
}

/** Processes that start no node (a backend that needs no mesh): each only named. */
export async function nodelessFleet(n: number): Promise<Fleet> {
  const prefix = `p${Math.random().toString(36).slice(2, 7)}`;
  const peers: Peer[] = [];
  const add = async (name: string): Promise<Peer> => {
    const p = await spawnPeer();
    peers.push(p);
    p.name = name;
    await p.run(STORE_PEER, 'nameProcess', name);
    return p;
  };
  try {
    await Promise.all(Array.from({ length: n }, (_, i) => add(`${prefix}-${i}`)));
  } catch (err) {
    await disposeAll(peers);
    throw err;
  }
  // In index order, as startCluster gives them.
  peers.sort((a, b) => a.name.localeCompare(b.name));
  return { peers, add, [Symbol.asyncDispose]: () => disposeAll(peers) };
}

async function defineEverywhere(peers: Peer[], config: StoreConfig): Promise<void> {
  await Promise.all(peers.map((p) => p.run(STORE_PEER, 'defineStore', config)));
}

/** Declares every scenario (inside the caller's `describe`). */
export function storeClusterScenarios(backend: ScenarioBackend): void {
  const startFleet = (n: number): Promise<Fleet> => (backend.fleet ?? meshFleet)(n);
  const configOf = (extra: Partial<StoreConfig> & { tokenUrl: string }): StoreConfig => ({ namespace: uniqueNamespace('proc'), ...backend.config(), ...extra });

  afterEach(async () => {
    await disposeAllPeers();
  });

  it('one fetch for 3 processes x 50 concurrent callers; every caller holds a replica; a late joiner takes the value without a fetch', async () => {
    await using server = await startTokenServer(60_000);
    await using cluster = await startFleet(3);
    const config = configOf({ tokenUrl: server.url });
    await defineEverywhere(cluster.peers, config);
    const values = await Promise.all(cluster.peers.map((p) => p.run<string[]>(STORE_PEER, 'callMany', 50)));
    expect(server.requests).toHaveLength(1);
    expect(new Set(values.flat())).toEqual(new Set(['tok-1']));
    const names = cluster.peers.map((p) => p.name).sort();
    for (const p of cluster.peers) {
      await expect.poll(() => p.run<string[]>(STORE_PEER, 'replicas'), { timeout: 5_000 }).toEqual(names);
    }
    const late = await cluster.add(`${cluster.peers[0]!.name}-late`);
    await late.run(STORE_PEER, 'defineStore', config);
    expect(await late.run<string[]>(STORE_PEER, 'callMany', 5)).toEqual(Array(5).fill('tok-1'));
    expect(server.requests).toHaveLength(1);
    expect(await late.run(STORE_PEER, 'stats')).toMatchObject({ fetches: 0, adopted: 1 });
  });

  it('5. eager refresh goes on, once per cycle, after kill -9 of the node that fetched last', async () => {
    const ttl = 1_500;
    await using server = await startTokenServer(ttl);
    await using cluster = await startFleet(3);
    await defineEverywhere(cluster.peers, configOf({ tokenUrl: server.url, refresh: { eager: { beforeExpiry: 700 } } }));
    // Connected first: the short-lived value's refresh (1 s after the fetch) must not start before every process has called.
    await Promise.all(cluster.peers.map((p) => p.run(STORE_PEER, 'warmUp')));
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
    await using cluster = await startFleet(3);
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
    await using cluster = await startFleet(3);
    await defineEverywhere(cluster.peers, configOf({ tokenUrl: server.url }));
    await Promise.all(cluster.peers.map((p) => p.run(STORE_PEER, 'callMany', 2)));
    expect(server.requests).toHaveLength(1);
    await cluster.peers[1]!.run(STORE_PEER, 'clear');
    for (const p of cluster.peers) await expect.poll(() => p.run<string[]>(STORE_PEER, 'replicas'), { timeout: 5_000 }).toEqual([]);
    expect(await cluster.peers[2]!.run<string[]>(STORE_PEER, 'callMany', 2)).toEqual(['tok-2', 'tok-2']);
    expect(await cluster.peers[0]!.run<string[]>(STORE_PEER, 'callMany', 1)).toEqual(['tok-2']);
    expect(server.requests).toHaveLength(2);
  });

  it('keyed and stateful: a state put on one process is the next fetch\'s state on another; one fetch per key; clearing every key drops values and states everywhere', async () => {
    await using server = await startTokenServer(60_000);
    await using cluster = await startFleet(3);
    await defineEverywhere(cluster.peers, configOf({ tokenUrl: server.url }));
    const [a, b, c] = cluster.peers as [Peer, Peer, Peer];
    expect(await b.run(STORE_PEER, 'callTenant', 't1')).toBe('error:state_required');
    expect(server.requests).toHaveLength(0);
    await a.run(STORE_PEER, 'putTenantSecret', 't1', 's1');
    const values = await Promise.all([b, c, b, c].map((p) => p.run<string>(STORE_PEER, 'callTenant', 't1')));
    expect(new Set(values)).toEqual(new Set(['t1:s1:tok-1']));
    expect(await a.run(STORE_PEER, 'callTenant', 't1')).toBe('t1:s1:tok-1');
    expect(await a.run(STORE_PEER, 'callTenant', 't2')).toBe('error:state_required');
    expect(server.requests).toHaveLength(1);
    await c.run(STORE_PEER, 'clearTenants');
    for (const p of cluster.peers) {
      await expect.poll(() => p.run<string>(STORE_PEER, 'callTenant', 't1'), { timeout: 5_000 }).toBe('error:state_required');
    }
    expect(server.requests).toHaveLength(1);
  });

  it('a failed background refresh keeps the value until it expires, retried with backoff, not in a loop; the counters say so', async () => {
    const ttl = 3_000;
    await using server = await startTokenServer(ttl);
    await using cluster = await startFleet(3);
    await defineEverywhere(cluster.peers, configOf({ tokenUrl: server.url, refresh: { eager: { beforeExpiry: 2_000 } }, fetchTimeout: 300 }));
    await Promise.all(cluster.peers.map((p) => p.run(STORE_PEER, 'warmUp')));
    const first = await Promise.all(cluster.peers.map((p) => p.run(STORE_PEER, 'callMany', 1)));
    expect(server.requests, JSON.stringify(first)).toHaveLength(1); // the callers' answers, if not
    const fetchedAt = server.requests[0]!.at;
    server.holdNext(1_000); // every refresh hangs past its fetchTimeout
    await server.request(2);
    await Promise.all(cluster.peers.map((p) => p.run(STORE_PEER, 'startReading', 20)));
    // Until the value really expires, every read is the value, with no error.
    await new Promise((r) => setTimeout(r, Math.max(0, fetchedAt + ttl - 600 - Date.now())));
    for (const p of cluster.peers) {
      const tally = await p.run<{ reads: number; errors: string[] }>(STORE_PEER, 'stopReading');
      expect(tally.reads).toBeGreaterThan(5);
      expect(tally.errors).toEqual([]);
      expect(await p.run<string[]>(STORE_PEER, 'callMany', 1)).toEqual(['tok-1']);
    }
    // A handful of attempts in ~1.4 s, not one per read or per millisecond.
    const attempts = server.requests.length - 1;
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(attempts).toBeLessThan(20);
    const stats = await Promise.all(cluster.peers.map((p) => p.run<{ fetches: number; refreshFailures: number; hits: number }>(STORE_PEER, 'stats')));
    // Counted when it ends (a refresh may still be waiting on the held request, one per process at most).
    const failures = stats.reduce((n, s) => n + s.refreshFailures, 0);
    expect(failures).toBeGreaterThanOrEqual(1);
    expect(failures).toBeLessThanOrEqual(attempts);
    expect(failures).toBeGreaterThanOrEqual(attempts - cluster.peers.length);
    // Counted when it starts (its request may still be on its way to the token server).
    const fetches = stats.reduce((n, s) => n + s.fetches, 0);
    expect(fetches).toBeGreaterThanOrEqual(server.requests.length);
    expect(fetches).toBeLessThanOrEqual(server.requests.length + cluster.peers.length);
    for (const s of stats) expect(s.hits).toBeGreaterThan(5);
  }, 60_000); // held requests and three processes: wide margin on a loaded machine
}
