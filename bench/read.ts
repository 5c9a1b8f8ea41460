// read: a cached hit through an expirable's named function, side by side in the same run
// with `Map.get`, `lru-cache`'s `get` and the floor: `await` of an async function returning a
// cached value. Goal (issue 6): the hit at least 0.5x the ops/s of that floor (it does no
// mailbox hop and allocates nothing beyond the promise).
import { fileURLToPath } from 'node:url';
import { LRUCache } from 'lru-cache';
import { defineExpirables, expirable, ok, startNode } from '../src/index.js';
import { fmt, ratio } from './lib/format.js';
import { interleaveAsync, interleaveSync } from './lib/loop.js';
import { BenchChild } from './lib/procs.js';
import type { BenchModule, BenchResult, TableSection } from './lib/types.js';

const TOKEN = 'ghs_16C7e42F292c6912E7710c838347Ae178B4a';
const FLOOR_PEER = fileURLToPath(new URL('./peers/floor-peer.ts', import.meta.url));

const read: BenchModule = {
  name: 'read',
  summary: 'cached hit of an expirable vs Map.get, lru-cache get and an `await` floor',
  defaultDurationS: 3,
  latency: false,
  options: {},
  params: () => ({}),
  async run(_params, ctx) {
    const node = await startNode();
    try {
      const E = defineExpirables(
        { token: expirable({ fetch: async () => ok(TOKEN, Infinity) }) },
        { node, namespace: `bench-read-${ctx.run}` },
      );
      const first = await E.token();
      if (!first.ok || first.value !== TOKEN) throw new Error(`priming fetch failed: ${JSON.stringify(first)}`);
      const cached = { ok: true as const, value: TOKEN, expiresAt: Infinity };
      const floor = async (): Promise<typeof cached> => cached;
      const map = new Map([['token', cached]]);
      const lru = new LRUCache<string, typeof cached>({ max: 10_000 });
      lru.set('token', cached);
      const d = ctx.common.durationS * 1000;
      const asyncNs = await interleaveAsync(
        [
          { name: 'awaitFloorNs', op: () => floor() },
          { name: 'hitNs', op: () => E.token() },
          { name: 'hitOrThrowNs', op: () => E.tokenOrThrow() },
        ],
        { durationMs: d * 0.7, batch: 1000, onProgress: (f) => ctx.progress(f * 0.7, 'async reads') },
      );
      const syncNs = await interleaveSync(
        [
          { name: 'mapGetNs', op: () => map.get('token') },
          { name: 'lruGetNs', op: () => lru.get('token') },
        ],
        { durationMs: d * 0.2, batch: 10_000, onProgress: (f) => ctx.progress(0.7 + f * 0.2, 'sync reads') },
      );
      // The same floor in a fresh process where no AsyncLocalStorage ever ran.
      ctx.progress(0.95, 'fresh-process floor');
      const fresh = await BenchChild.start(FLOOR_PEER);
      let freshFloorNs: number;
      try {
        freshFloorNs = await fresh.request<number>('floor', { durationMs: Math.max(100, d * 0.1), value: cached });
      } finally {
        await fresh.kill();
      }
      const stats = E.stats().token;
      if (stats && stats.fetches !== 1) throw new Error(`expected exactly one fetch, saw ${stats.fetches}`);
      return {
        metrics: {
          hitNs: asyncNs.hitNs!,
          mapGetNs: syncNs.mapGetNs!,
          lruGetNs: syncNs.lruGetNs!,
          awaitFloorNs: asyncNs.awaitFloorNs!,
          hitOrThrowNs: asyncNs.hitOrThrowNs!,
          hitsPerSec: 1e9 / asyncNs.hitNs!,
          hitVsFloorOps: asyncNs.awaitFloorNs! / asyncNs.hitNs!,
          awaitFloorFreshProcessNs: freshFloorNs,
        },
      };
    } finally {
      await node.close();
    }
  },
  table(result: BenchResult): TableSection[] {
    const m = result.metrics;
    const row = (label: string, k: string): string[] => [label, fmt(m[k]), fmt(1e9 / m[k]!), ratio(m.awaitFloorNs, m[k])];
    return [
      {
        headers: ['read', 'ns/op', 'ops/s', 'ops/s vs await floor'],
        rows: [
          row('await async fn returning a cached value (floor)', 'awaitFloorNs'),
          row('Expirables.token() cached hit', 'hitNs'),
          row('Expirables.tokenOrThrow() cached hit', 'hitOrThrowNs'),
          row('Map.get (synchronous)', 'mapGetNs'),
          row('lru-cache get (synchronous)', 'lruGetNs'),
          row('the floor in a fresh process (no AsyncLocalStorage ever ran)', 'awaitFloorFreshProcessNs'),
        ],
      },
      {
        headers: ['goal', 'target', 'measured', 'met'],
        rows: [['hit ops/s vs await floor (median of per-run ratios)', '>= 0.5x', `${fmt(m.hitVsFloorOps)}x`, (m.hitVsFloorOps ?? 0) >= 0.5 ? 'yes' : 'no']],
      },
    ];
  },
};

export default read;
