// The store across processes, coordinating through a real redis-server started by the test:
// the shared scenario list of test/scenarios/store-cluster.ts, run by processes that start no
// node, and what only Redis has to prove: no mesh at all, a failed miss round shared through
// Redis, a failed background refresh told to the other holders.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { disposeAllPeers, type Peer } from './helpers/peers.js';
import { hasRedis, startRedis, type RedisServer } from './helpers/redis-server.js';
import { STORE_PEER, type StoreConfig } from './fixtures/store-peer.js';
import { startTokenServer } from './fixtures/store-token-server.js';
import { gate, uniqueNamespace } from './fixtures/store-tools.js';
import { nodelessFleet, storeClusterScenarios } from './scenarios/store-cluster.js';

describe.skipIf(!hasRedis)('the store across processes (redis)', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  storeClusterScenarios({ config: () => ({ redisUrl: redis.url }), fleet: nodelessFleet });

  describe('only on redis', () => {
    afterEach(async () => {
      await disposeAllPeers();
    });
    const define = (peers: Peer[], config: StoreConfig): Promise<unknown> => Promise.all(peers.map((p) => p.run(STORE_PEER, 'defineStore', config)));

    it('a Redis-backed store runs with no node: no mesh listener in any process, and the processes still share one fetch', async () => {
      await using server = await startTokenServer(60_000);
      await using fleet = await nodelessFleet(2);
      await define(fleet.peers, { namespace: uniqueNamespace('nodeless'), tokenUrl: server.url, redisUrl: redis.url });
      const values = await Promise.all(fleet.peers.map((p) => p.run<string[]>(STORE_PEER, 'callMany', 5)));
      expect(new Set(values.flat())).toEqual(new Set(['tok-1']));
      expect(server.requests).toHaveLength(1);
      // Local scope too runs without a node.
      for (const p of fleet.peers) expect(await p.run(STORE_PEER, 'callLocal')).toBe(`local-${p.name}`);
      for (const p of fleet.peers) expect(await p.run(STORE_PEER, 'meshState')).toEqual({ node: false, listening: 0 });
      const names = fleet.peers.map((p) => p.name).sort();
      for (const p of fleet.peers) await expect.poll(() => p.run<string[]>(STORE_PEER, 'replicas'), { timeout: 5_000 }).toEqual(names);
    });

    it('a failed miss round is shared: 3 processes x 10 callers against a failing upstream make 1 upstream call, every caller gets fetch_failed with its message; the next call starts a new round', async () => {
      await using server = await startTokenServer(60_000);
      await using fleet = await nodelessFleet(3);
      const [a, b, c] = fleet.peers as [Peer, Peer, Peer];
      await define(fleet.peers, { namespace: uniqueNamespace('roundfail'), tokenUrl: server.url, redisUrl: redis.url });
      // a's fetch fails, but only once the callers of b and c wait on a's lease.
      const answer = gate();
      server.failNext(1, answer.promise);
      await a.run(STORE_PEER, 'callBehindProbe', 10, 'a');
      await server.request(1);
      await b.run(STORE_PEER, 'callBehindProbe', 10, 'b');
      await c.run(STORE_PEER, 'callBehindProbe', 10, 'c');
      answer.open();
      const failure = 'error:fetch_failed:expirable token: fetch_failed (token server answered 500)';
      for (const [p, tag] of [[a, 'a'], [b, 'b'], [c, 'c']] as const) {
        const [, values] = await p.waitEvent('settled', (t: string) => t === tag, 10_000);
        expect(values).toEqual(Array(10).fill(failure));
      }
      expect(server.requests).toHaveLength(1);
      // Failures are not stored: the next call is a new round, and it fetches.
      expect(await c.run<string[]>(STORE_PEER, 'callMany', 3)).toEqual(Array(3).fill('tok-2'));
      expect(await b.run<string[]>(STORE_PEER, 'callMany', 1)).toEqual(['tok-2']);
      expect(server.requests).toHaveLength(2);
    });

    it('a failed background refresh is told to the other holders: one upstream attempt per backoff step from the whole fleet, and the good value is kept', async () => {
      const ttl = 6_000;
      await using server = await startTokenServer(ttl);
      await using fleet = await nodelessFleet(3);
      await define(fleet.peers, { namespace: uniqueNamespace('refreshfail'), tokenUrl: server.url, redisUrl: redis.url, refresh: { eager: { beforeExpiry: 4_000 } } });
      await Promise.all(fleet.peers.map((p) => p.run(STORE_PEER, 'callMany', 1)));
      expect(server.requests).toHaveLength(1);
      const expiresAt = server.requests[0]!.at + ttl;
      server.failing(true);
      await Promise.all(fleet.peers.map((p) => p.run(STORE_PEER, 'startReading', 50)));
      // The refreshes fail from about 2 s in; watch them until shortly before the value expires.
      await server.request(2);
      await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - 500 - Date.now())));
      for (const p of fleet.peers) {
        const tally = await p.run<{ reads: number; errors: string[] }>(STORE_PEER, 'stopReading');
        expect(tally.errors).toEqual([]);
        expect(await p.run<string[]>(STORE_PEER, 'callMany', 1)).toEqual(['tok-1']);
      }
      // The attempts come in backoff steps (retries about 0.4, 0.8, 1.6 s apart): one process's
      // backoff makes at most 5 in this window. The fleet tries once per step, the others stand
      // by (a step of 2 is tolerated: a process may take the lease the instant before the notice
      // reaches it). Told nothing, each of the 3 processes tries in each step (about 12 here).
      const attempts = server.requests.slice(1).filter((r) => r.at < expiresAt - 500);
      const steps: (typeof attempts)[] = [];
      for (const r of attempts) {
        const last = steps.at(-1);
        if (last && r.at - last.at(-1)!.at < 150) last.push(r);
        else steps.push([r]);
      }
      const trace = JSON.stringify(attempts.map((r) => ({ node: r.node, at: r.at - server.requests[0]!.at })));
      expect(steps.length, trace).toBeGreaterThanOrEqual(2);
      expect(Math.max(...steps.map((s) => s.length)), trace).toBeLessThanOrEqual(2);
      expect(attempts.length, trace).toBeLessThanOrEqual(7);
    }, 60_000);
  });
});
