// The Redis backend on a local 3-master Redis Cluster: every key and the channel of a
// namespace share one hash tag (one slot), scripts run on its node, values travel by
// sharded pub/sub (SPUBLISH / SSUBSCRIBE).
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { disposeAllPeers, spawnPeer, type Peer } from './helpers/peers.js';
import { hasRedis, startRedisCluster, type RedisClusterFixture } from './helpers/redis-server.js';

const FIX = fileURLToPath(new URL('./fixtures/redis-peer.ts', import.meta.url));

describe.skipIf(!hasRedis)('redis backend on a 3-master Redis Cluster', () => {
  let cluster: RedisClusterFixture;

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });
  afterEach(async () => {
    await disposeAllPeers();
  });

  async function peers(n: number, ns: string): Promise<Peer[]> {
    const ps = await Promise.all(Array.from({ length: n }, () => spawnPeer()));
    // Each process is given a different node to start from: the client discovers the rest.
    await Promise.all(ps.map((p, i) => p.run(FIX, 'open', { url: cluster.servers[i % cluster.servers.length]!.url, cluster: true, name: `c${i}` }, ns)));
    return ps;
  }

  it('the keys of a namespace live in one slot, on one node of the three', async () => {
    const slots = await Promise.all(['{es:ns-a}:seq', '{es:ns-a}:e:5:token:', '{es:ns-a}:ch'].map((k) => cluster.servers[0]!.cli('CLUSTER', 'KEYSLOT', k)));
    for (const s of slots) expect(s.trim(), `CLUSTER KEYSLOT answered ${JSON.stringify(s)}`).toMatch(/^\d+$/);
    expect(new Set(slots.map((s) => s.trim())).size, JSON.stringify(slots)).toBe(1);
  });

  it('claim, commit and publish (sharded), then clear, across processes', { timeout: 120_000 }, async () => {
    // One namespace per master (`--cluster create` gives each of the three a third of the
    // slots, in order), so every node serves scripts and sharded messages.
    const byThird = new Map<number, string>();
    for (let i = 0; byThird.size < 3; i++) {
      const slot = Number((await cluster.servers[0]!.cli('CLUSTER', 'KEYSLOT', `{es:cl-${i}}`)).trim());
      const third = slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2;
      if (!byThird.has(third)) byThird.set(third, `cl-${i}`);
    }
    for (const ns of byThird.values()) {
      const ps = await peers(3, ns);
      const results = await Promise.all(ps.map((p, i) => p.run<{ fetched: boolean; value: unknown; v: number }>(FIX, 'getOrFetch', 'token', '', 300, `v-${i}`, 60_000)));
      expect(results.filter((r) => r.fetched)).toHaveLength(1);
      const winner = results.find((r) => r.fetched)!;
      await Promise.all(ps.map((p) => p.waitEvent('snap', (n: string, _c: string, v: number, value: unknown) => n === 'token' && v === winner.v && value === winner.value)));
      const v = await ps[2]!.run<number>(FIX, 'clear', 'token', '');
      await Promise.all(ps.map((p) => p.waitEvent('clear', (n: string, _c: string, cv: number) => n === 'token' && cv === v)));
      expect(await ps[0]!.run(FIX, 'claim', 'token', '')).toMatchObject({ kind: 'lease' });
      await disposeAllPeers();
    }
    const sizes = await Promise.all(cluster.servers.map((srv) => srv.cli('DBSIZE')));
    for (const size of sizes) expect(Number(size.trim())).toBeGreaterThan(0);
  });

  it('clearAll and a fenced commit on the cluster', async () => {
    const [a, b] = await peers(2, 'cl-fence');
    const c = await a!.run<{ token: number }>(FIX, 'claim', 'keyed', '"k"');
    await b!.run(FIX, 'clearAll', 'keyed');
    expect(await a!.run(FIX, 'commit', c.token, 'stale', 60_000)).toEqual({ ok: false, reason: 'cleared' });
    await a!.run(FIX, 'hold', 'keyed', '"k"');
    expect(await b!.run(FIX, 'holders', 'keyed', '"k"')).toEqual(['c0']);
  });
});
