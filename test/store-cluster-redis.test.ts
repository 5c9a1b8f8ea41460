// The store across real node processes, with real faults, coordinating through a real
// redis-server started by the test: the shared scenario list of test/scenarios/store-cluster.ts.
import { afterAll, beforeAll, describe } from 'vitest';
import { hasRedis, startRedis, type RedisServer } from './helpers/redis-server.js';
import { storeClusterScenarios } from './scenarios/store-cluster.js';

describe.skipIf(!hasRedis)('the store across processes (redis)', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  storeClusterScenarios({ config: () => ({ redisUrl: redis.url }) });
});
