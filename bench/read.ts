// read: a cached hit through an expirable's named function, side by side in the same run
// with `Map.get`, `lru-cache`'s `get` and the floor: `await` of an async function returning a
// cached value. Goal (issue 6): the hit at least 0.5x the ops/s of that floor (it does no
// mailbox hop and allocates nothing beyond the promise). Each run is a fresh process
// (bench/peers/read-peer.ts), which also measures the floor before any node or store ran.
// With `--backend redis` the same figures are taken on a store on Redis (redisBackend), with
// a store on the mesh read side by side in the same process (goal: the Redis hit within 1.2x
// of the mesh hit; a hit never touches Redis, which the count of Redis commands shows).
import { fileURLToPath } from 'node:url';
import { fmt, ratio } from './lib/format.js';
import { BenchChild } from './lib/procs.js';
import { BACKEND_OPTIONS, backendParams, redisUnavailable, withBenchRedis } from './lib/redis.js';
import { panel } from './lib/chart.js';
import type { BenchModule, BenchResult, TableSection } from './lib/types.js';

const READ_PEER = fileURLToPath(new URL('./peers/read-peer.ts', import.meta.url));

const read: BenchModule = {
  name: 'read',
  summary: 'cached hit of an expirable vs Map.get, lru-cache get and an `await` floor',
  defaultDurationS: 3,
  latency: false,
  options: { ...BACKEND_OPTIONS },
  params: (v) => backendParams(v),
  unavailable: (p) => redisUnavailable(p as { backend: string; redis: string }),
  async run(params, ctx) {
    const measure = async (redisUrl: string | undefined): Promise<Record<string, number>> => {
      const child = await BenchChild.start(READ_PEER);
      const off = child.onEvent((e, data) => {
        if (e === 'progress') ctx.progress((data as { f: number }).f, (data as { phase: string }).phase);
      });
      try {
        return await child.request<Record<string, number>>(
          'measure',
          { durationMs: ctx.common.durationS * 1000, namespace: `bench-read-${ctx.run}-${process.pid}`, redisUrl },
          ctx.common.durationS * 1000 + 60_000,
        );
      } finally {
        off();
        await child.kill();
      }
    };
    const metrics = params.backend === 'redis' ? await withBenchRedis(String(params.redis), measure) : await measure(undefined);
    return { metrics };
  },
  charts: (r) => [
    {
      title: `read: a cached hit vs the floor, Map.get and lru-cache${r.params.backend === 'redis' ? ' (the store on Redis)' : ''}`,
      panels: [
        panel('one read', 'ns/op', [
          ['await floor, before any store', r.metrics.awaitFloorBeforeStoreNs, 'floor'],
          ['await floor, after a store ran', r.metrics.awaitFloorNs, 'floor'],
          [`cached hit (ours${r.params.backend === 'redis' ? ', on Redis' : ''})`, r.metrics.hitNs, 'ours'],
          [`keyed hit (ours${r.params.backend === 'redis' ? ', on Redis' : ''})`, r.metrics.keyedHitNs, 'ours'],
          ...(r.metrics.meshHitNs !== undefined
            ? ([
                ['cached hit (ours, on the mesh)', r.metrics.meshHitNs, 'other'],
                ['keyed hit (ours, on the mesh)', r.metrics.meshKeyedHitNs, 'other'],
              ] as [string, number | undefined, 'other'][])
            : []),
          ['Map.get', r.metrics.mapGetNs, 'peer'],
          ['lru-cache get', r.metrics.lruGetNs, 'peer'],
        ]),
      ],
    },
  ],
  table(result: BenchResult): TableSection[] {
    const m = result.metrics;
    const onRedis = result.params.backend === 'redis';
    const on = onRedis ? ' (on Redis)' : '';
    const row = (label: string, k: string): string[] => [label, fmt(m[k]), fmt(1e9 / m[k]!), ratio(m.awaitFloorNs, m[k])];
    const goals: string[][] = [['hit ops/s vs await floor (median of per-run ratios)', '>= 0.5x', `${fmt(m.hitVsFloorOps)}x`, (m.hitVsFloorOps ?? 0) >= 0.5 ? 'yes' : 'no']];
    if (m.awaitTaxRatio !== undefined) {
      goals.push(['await floor after the store vs before (median of per-run ratios)', '<= 1.1x', `${fmt(m.awaitTaxRatio)}x`, (m.awaitTaxRatio ?? Infinity) <= 1.1 ? 'yes' : 'no']);
      goals.push(['hit ns vs the floor before the store (median of per-run ratios)', '<= 1.5x', `${fmt(m.hitVsUntaxedFloor)}x`, (m.hitVsUntaxedFloor ?? Infinity) <= 1.5 ? 'yes' : 'no']);
    }
    if (m.expiringHitVsUntaxedFloor !== undefined) {
      goals.push(['the same, a value that expires (one clock read)', '<= 1.5x', `${fmt(m.expiringHitVsUntaxedFloor)}x`, (m.expiringHitVsUntaxedFloor ?? Infinity) <= 1.5 ? 'yes' : 'no']);
      goals.push(['promise hooks on after the store ran (median over runs, 1 = on)', '0', fmt(m.promiseTrackingAfterStore), m.promiseTrackingAfterStore === 0 ? 'yes' : 'no']);
    }
    if (onRedis) {
      goals.push(['Redis hit ns vs mesh hit ns, same process (median of per-run ratios)', '<= 1.2x', `${fmt(m.hitVsMeshHit)}x`, (m.hitVsMeshHit ?? Infinity) <= 1.2 ? 'yes' : 'no']);
      goals.push(['Redis keyed hit ns vs mesh keyed hit ns', '<= 1.2x', `${fmt(m.keyedHitVsMeshKeyedHit)}x`, (m.keyedHitVsMeshKeyedHit ?? Infinity) <= 1.2 ? 'yes' : 'no']);
      goals.push(['Redis commands while the hits were measured (hits on Redis)', 'none from hits', `${fmt(m.redisCommandsDuringReads)} (${fmt(m.redisReads)} hits)`, '']);
    }
    return [
      {
        ...(onRedis ? { title: 'the measured store on Redis (redisBackend); a store on the mesh read side by side in the same process' } : {}),
        headers: ['read', 'ns/op', 'ops/s', 'ops/s vs await floor'],
        rows: [
          row('await async fn returning a cached value (floor)', 'awaitFloorNs'),
          row(`Expirables.token() cached hit (a value that never expires)${on}`, 'hitNs'),
          ...(m.expiringHitNs !== undefined ? [row('Expirables.expiring() cached hit (a value that expires: one clock read)', 'expiringHitNs')] : []),
          row(`Expirables.tokenOrThrow() cached hit${on}`, 'hitOrThrowNs'),
          row(`Expirables.tenantKey(k) keyed hit (4 keys held, rotated)${on}`, 'keyedHitNs'),
          ...(onRedis
            ? [row('Expirables.token() cached hit, store on the mesh', 'meshHitNs'), row('Expirables.tenantKey(k) keyed hit, store on the mesh', 'meshKeyedHitNs')]
            : []),
          row('Map.get (synchronous)', 'mapGetNs'),
          row('lru-cache get (synchronous)', 'lruGetNs'),
          row('the floor before any node or store ran in the process', 'awaitFloorBeforeStoreNs'),
        ],
      },
      { headers: ['goal', 'target', 'measured', 'met'], rows: goals },
    ];
  },
};

export default read;
