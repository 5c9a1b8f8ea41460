// read: a cached hit through an expirable's named function, side by side in the same run
// with `Map.get`, `lru-cache`'s `get` and the floor: `await` of an async function returning a
// cached value. Goal (issue 6): the hit at least 0.5x the ops/s of that floor (it does no
// mailbox hop and allocates nothing beyond the promise). Each run is a fresh process
// (bench/peers/read-peer.ts), which also measures the floor before any node or store ran.
import { fileURLToPath } from 'node:url';
import { fmt, ratio } from './lib/format.js';
import { BenchChild } from './lib/procs.js';
import { panel } from './lib/chart.js';
import type { BenchModule, BenchResult, TableSection } from './lib/types.js';

const READ_PEER = fileURLToPath(new URL('./peers/read-peer.ts', import.meta.url));

const read: BenchModule = {
  name: 'read',
  summary: 'cached hit of an expirable vs Map.get, lru-cache get and an `await` floor',
  defaultDurationS: 3,
  latency: false,
  options: {},
  params: () => ({}),
  async run(_params, ctx) {
    const child = await BenchChild.start(READ_PEER);
    const off = child.onEvent((e, data) => {
      if (e === 'progress') ctx.progress((data as { f: number }).f, (data as { phase: string }).phase);
    });
    try {
      const metrics = await child.request<Record<string, number>>(
        'measure',
        { durationMs: ctx.common.durationS * 1000, namespace: `bench-read-${ctx.run}` },
        ctx.common.durationS * 1000 + 60_000,
      );
      return { metrics };
    } finally {
      off();
      await child.kill();
    }
  },
  charts: (r) => [
    {
      title: 'read: a cached hit vs the floor, Map.get and lru-cache',
      panels: [
        panel('one read', 'ns/op', [
          ['await floor, before any store', r.metrics.awaitFloorBeforeStoreNs, 'floor'],
          ['await floor, after a store ran', r.metrics.awaitFloorNs, 'floor'],
          ['cached hit (ours)', r.metrics.hitNs, 'ours'],
          ['keyed hit (ours)', r.metrics.keyedHitNs, 'ours'],
          ['Map.get', r.metrics.mapGetNs, 'peer'],
          ['lru-cache get', r.metrics.lruGetNs, 'peer'],
        ]),
      ],
    },
  ],
  table(result: BenchResult): TableSection[] {
    const m = result.metrics;
    const row = (label: string, k: string): string[] => [label, fmt(m[k]), fmt(1e9 / m[k]!), ratio(m.awaitFloorNs, m[k])];
    return [
      {
        headers: ['read', 'ns/op', 'ops/s', 'ops/s vs await floor'],
        rows: [
          row('await async fn returning a cached value (floor)', 'awaitFloorNs'),
          row('Expirables.token() cached hit (a value that never expires)', 'hitNs'),
          row('Expirables.expiring() cached hit (a value that expires: one clock read)', 'expiringHitNs'),
          row('Expirables.tokenOrThrow() cached hit', 'hitOrThrowNs'),
          row('Expirables.tenantKey(k) keyed hit (4 keys held, rotated)', 'keyedHitNs'),
          row('Map.get (synchronous)', 'mapGetNs'),
          row('lru-cache get (synchronous)', 'lruGetNs'),
          row('the floor before any node or store ran in the process', 'awaitFloorBeforeStoreNs'),
        ],
      },
      {
        headers: ['goal', 'target', 'measured', 'met'],
        rows: [
          ['hit ops/s vs await floor (median of per-run ratios)', '>= 0.5x', `${fmt(m.hitVsFloorOps)}x`, (m.hitVsFloorOps ?? 0) >= 0.5 ? 'yes' : 'no'],
          ['await floor after the store vs before (median of per-run ratios)', '<= 1.1x', `${fmt(m.awaitTaxRatio)}x`, (m.awaitTaxRatio ?? Infinity) <= 1.1 ? 'yes' : 'no'],
          ['hit ns vs the floor before the store (median of per-run ratios)', '<= 1.5x', `${fmt(m.hitVsUntaxedFloor)}x`, (m.hitVsUntaxedFloor ?? Infinity) <= 1.5 ? 'yes' : 'no'],
          ['the same, a value that expires (one clock read)', '<= 1.5x', `${fmt(m.expiringHitVsUntaxedFloor)}x`, (m.expiringHitVsUntaxedFloor ?? Infinity) <= 1.5 ? 'yes' : 'no'],
          ['promise hooks on after the store ran (median over runs, 1 = on)', '0', fmt(m.promiseTrackingAfterStore), m.promiseTrackingAfterStore === 0 ? 'yes' : 'no'],
        ],
      },
    ];
  },
};

export default read;
