// The store across processes, coordinating through a real redis-server started by the test:
// the shared scenario list of test/scenarios/store-cluster.ts, run by processes that start no
// node, and what only Redis has to prove: no mesh at all.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { disposeAllPeers, type Peer } from './helpers/peers.js';
import { hasRedis, startRedis, type RedisServer } from './helpers/redis-server.js';
import { STORE_PEER, type StoreConfig } from './fixtures/store-peer.js';
import { startTokenServer } from './fixtures/store-token-server.js';
import { uniqueNamespace } from './fixtures/store-tools.js';
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
  });
});
