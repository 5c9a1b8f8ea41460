// The process of one run of the read benchmark (forked by bench/read.ts): every run gets a
// fresh process, as an application has, so nothing a previous run left behind (a node, an
// AsyncLocalStorage) weighs on this one. It first measures the `await` floor before anything
// of ours has run here, then starts a node and a store, and measures the cached hit (and the hit of a key
// already held, a few keys in rotation) side by side with the floor, Map.get and lru-cache get.
// With `redisUrl` (`--backend redis`) the measured store runs on redisBackend, and a store on
// the mesh is read side by side with it (`meshHitNs`, `meshKeyedHitNs`); the commands Redis
// ran while the hits were measured are counted (`redisCommandsDuringReads`).
import { executionAsyncId } from 'node:async_hooks';
import { LRUCache } from 'lru-cache';
import { defineExpirables, expirable, ok, redisBackend, startNode } from '../../src/index.js';
import { emit, serve } from '../lib/child.js';
import { interleaveAsync, interleaveSync } from '../lib/loop.js';
import { redisCommandsProcessed } from '../lib/redis-ping.js';

const TOKEN = 'ghs_16C7e42F292c6912E7710c838347Ae178B4a';

/**
 * True while async_hooks' promise hooks are on in this process (what an enabled
 * AsyncLocalStorage costs every promise on Node 20 and 22): a promise continuation then runs
 * under the promise's own async id, otherwise under 0.
 */
async function promiseTracking(): Promise<boolean> {
  await null;
  return executionAsyncId() !== 0;
}

/**
 * The `await` floor before any node or store exists in this process (the untaxed floor), in
 * the first tenth of the run; with the progress reporter and the floor op the rest reuses.
 */
async function untaxedFloor(durationMs: number) {
  const progress = (f: number, phase: string): void => emit('progress', { f, phase });
  const cached = { ok: true as const, value: TOKEN, expiresAt: Infinity };
  const floor = async (): Promise<typeof cached> => cached;
  const before = await interleaveAsync([{ name: 'floor', op: () => floor() }], {
    durationMs: durationMs * 0.1,
    batch: 1000,
    onProgress: (f) => progress(f * 0.1, 'floor before the store'),
  });
  return { progress, cached, floor, before };
}

/** The figures both backends report, from the interleaved async and sync reads and the untaxed floor. */
function readMetrics(asyncNs: Record<string, number>, syncNs: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return {
    hitNs: asyncNs.hitNs!,
    keyedHitNs: asyncNs.keyedHitNs!,
    mapGetNs: syncNs.mapGetNs!,
    lruGetNs: syncNs.lruGetNs!,
    awaitFloorNs: asyncNs.awaitFloorNs!,
    hitOrThrowNs: asyncNs.hitOrThrowNs!,
    hitsPerSec: 1e9 / asyncNs.hitNs!,
    hitVsFloorOps: asyncNs.awaitFloorNs! / asyncNs.hitNs!,
    awaitFloorBeforeStoreNs: before.floor!,
  };
}

serve({
  async measure({ durationMs, namespace, redisUrl }: { durationMs: number; namespace: string; redisUrl?: string }): Promise<Record<string, number>> {
    if (redisUrl) return measureOnRedis(durationMs, namespace, redisUrl);
    const { progress, cached, floor, before } = await untaxedFloor(durationMs);

    const node = await startNode();
    try {
      const E = defineExpirables(
        {
          token: expirable({ fetch: async () => ok(TOKEN, Infinity) }),
          // A value that expires (in a day): its hit reads the monotonic clock, `token`'s does not.
          expiring: expirable({ fetch: async () => ok(TOKEN, Date.now() + 86_400_000) }),
          tenantKey: expirable({ keyed: true, fetch: async (tenant: string) => ok(`${TOKEN}-${tenant}`, Infinity) }),
        },
        { node, namespace },
      );
      const first = await E.token();
      if (!first.ok || first.value !== TOKEN) throw new Error(`priming fetch failed: ${JSON.stringify(first)}`);
      if ((await E.expiringOrThrow()) !== TOKEN) throw new Error('priming fetch of the expiring value failed');
      // A few keys already held, read in rotation: every keyed read is a hit.
      const tenants = ['t-1', 't-2', 't-3', 't-4'];
      for (const t of tenants) {
        const r = await E.tenantKey(t);
        if (!r.ok) throw new Error(`priming keyed fetch failed: ${JSON.stringify(r)}`);
      }
      // One turn of the event loop, as an application's next request comes through I/O. On
      // Node 20 and 22 the library turns its re-entrance context off (it costs on every
      // promise there) when the last fetch or lock settles, but after several in one turn
      // (the priming above) only at the next turn, and the measurement below runs in
      // microtasks only.
      await new Promise<void>((resolve) => setImmediate(resolve));
      let turn = 0;
      const map = new Map([['token', cached]]);
      const lru = new LRUCache<string, typeof cached>({ max: 10_000 });
      lru.set('token', cached);
      const asyncNs = await interleaveAsync(
        [
          { name: 'awaitFloorNs', op: () => floor() },
          { name: 'hitNs', op: () => E.token() },
          { name: 'expiringHitNs', op: () => E.expiring() },
          { name: 'hitOrThrowNs', op: () => E.tokenOrThrow() },
          { name: 'keyedHitNs', op: () => E.tenantKey(tenants[turn++ & 3]!) },
        ],
        { durationMs: durationMs * 0.7, batch: 1000, onProgress: (f) => progress(0.1 + f * 0.7, 'async reads') },
      );
      const syncNs = await interleaveSync(
        [
          { name: 'mapGetNs', op: () => map.get('token') },
          { name: 'lruGetNs', op: () => lru.get('token') },
        ],
        { durationMs: durationMs * 0.2, batch: 10_000, onProgress: (f) => progress(0.8 + f * 0.2, 'sync reads') },
      );
      const tracking = await promiseTracking();
      const stats = E.stats().token;
      if (stats && stats.fetches !== 1) throw new Error(`expected exactly one fetch, saw ${stats.fetches}`);
      const keyedStats = E.stats().tenantKey;
      if (keyedStats && keyedStats.fetches !== tenants.length) {
        throw new Error(`expected one fetch per key (${tenants.length}), saw ${keyedStats.fetches}`);
      }
      return {
        ...readMetrics(asyncNs, syncNs, before),
        awaitTaxRatio: asyncNs.awaitFloorNs! / before.floor!,
        hitVsUntaxedFloor: asyncNs.hitNs! / before.floor!,
        expiringHitNs: asyncNs.expiringHitNs!,
        expiringHitVsUntaxedFloor: asyncNs.expiringHitNs! / before.floor!,
        promiseTrackingAfterStore: tracking ? 1 : 0,
      };
    } finally {
      await node.close();
    }
  },
});

const TENANTS = ['t-1', 't-2', 't-3', 't-4'];

/** The same reads on a store on Redis, side by side with a store on the mesh, in one process. */
async function measureOnRedis(durationMs: number, namespace: string, url: string): Promise<Record<string, number>> {
  const { progress, cached, floor, before } = await untaxedFloor(durationMs);

  const node = await startNode();
  const defs = {
    token: expirable({ fetch: async () => ok(TOKEN, Infinity) }),
    tenantKey: expirable({ keyed: true, fetch: async (tenant: string) => ok(`${TOKEN}-${tenant}`, Infinity) }),
  };
  const R = defineExpirables(defs, { node, namespace, backend: redisBackend({ url }) });
  const M = defineExpirables(defs, { node, namespace: `${namespace}-mesh` });
  try {
    for (const E of [R, M]) {
      const first = await E.token();
      if (!first.ok || first.value !== TOKEN) throw new Error(`priming fetch failed: ${JSON.stringify(first)}`);
      for (const t of TENANTS) {
        const r = await E.tenantKey(t);
        if (!r.ok) throw new Error(`priming keyed fetch failed: ${JSON.stringify(r)}`);
      }
    }
    let turn = 0;
    let meshTurn = 0;
    const hitsBefore = R.stats().token!.hits + R.stats().tenantKey!.hits;
    const commandsBefore = await redisCommandsProcessed(url);
    const asyncNs = await interleaveAsync(
      [
        { name: 'awaitFloorNs', op: () => floor() },
        { name: 'hitNs', op: () => R.token() },
        { name: 'hitOrThrowNs', op: () => R.tokenOrThrow() },
        { name: 'keyedHitNs', op: () => R.tenantKey(TENANTS[turn++ & 3]!) },
        { name: 'meshHitNs', op: () => M.token() },
        { name: 'meshKeyedHitNs', op: () => M.tenantKey(TENANTS[meshTurn++ & 3]!) },
      ],
      { durationMs: durationMs * 0.7, batch: 1000, onProgress: (f) => progress(0.1 + f * 0.7, 'async reads') },
    );
    // The INFO that read `commandsBefore` is counted in this one's figure: not a read's.
    const redisCommandsDuringReads = (await redisCommandsProcessed(url)) - commandsBefore - 1;
    const redisReads = R.stats().token!.hits + R.stats().tenantKey!.hits - hitsBefore;
    const map = new Map([['token', cached]]);
    const lru = new LRUCache<string, typeof cached>({ max: 10_000 });
    lru.set('token', cached);
    const syncNs = await interleaveSync(
      [
        { name: 'mapGetNs', op: () => map.get('token') },
        { name: 'lruGetNs', op: () => lru.get('token') },
      ],
      { durationMs: durationMs * 0.2, batch: 10_000, onProgress: (f) => progress(0.8 + f * 0.2, 'sync reads') },
    );
    for (const [label, E] of [['redis', R], ['mesh', M]] as const) {
      const st = E.stats();
      if (st.token!.fetches + st.token!.adopted !== 1) throw new Error(`${label}: expected the value taken once, saw ${JSON.stringify(st.token)}`);
      if (st.tenantKey!.fetches + st.tenantKey!.adopted !== TENANTS.length) {
        throw new Error(`${label}: expected each key taken once (${TENANTS.length}), saw ${JSON.stringify(st.tenantKey)}`);
      }
    }
    return {
      ...readMetrics(asyncNs, syncNs, before),
      meshHitNs: asyncNs.meshHitNs!,
      meshKeyedHitNs: asyncNs.meshKeyedHitNs!,
      hitVsMeshHit: asyncNs.hitNs! / asyncNs.meshHitNs!,
      keyedHitVsMeshKeyedHit: asyncNs.keyedHitNs! / asyncNs.meshKeyedHitNs!,
      redisReads,
      redisCommandsDuringReads,
    };
  } finally {
    await R.close();
    await M.close();
    await node.close();
  }
}
