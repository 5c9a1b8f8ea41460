// stampede: N node processes x C concurrent callers of one cold cluster-scope expirable, all
// started at the same instant. The fetch (a stand-in token server that takes `--fetch-ms`)
// must run exactly once for the whole cluster; caller latency p50/p99 is set against the
// fetch time. Repeated on a fresh (cold) store as often as `--duration` allows per run.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { fmt } from './lib/format.js';
import { BenchChild, killAll, startChildren } from './lib/procs.js';
import { median, mergeHistograms } from './lib/stats.js';
import { panel } from './lib/chart.js';
import type { BenchModule, BenchResult, TableSection } from './lib/types.js';

const PEER = fileURLToPath(new URL('./peers/store-peer.ts', import.meta.url));

interface StampedeParams extends Record<string, number | string | boolean> {
  nodes: number;
  callers: number;
  fetchMs: number;
}

interface StampedePart {
  histogram: string;
  fetches: number;
  fetchMs: number[];
  failures: number;
}

const stampede: BenchModule<StampedeParams> = {
  name: 'stampede',
  summary: 'N nodes x C concurrent callers on a cold cluster expirable: fetch count (must be 1), caller p50/p99',
  defaultDurationS: 3,
  latency: true,
  options: {
    nodes: { type: 'number', integer: true, min: 1, default: 4, description: 'node processes' },
    callers: { type: 'number', integer: true, min: 1, default: 250, description: 'concurrent callers per node' },
    'fetch-ms': { type: 'number', min: 0, arg: 'ms', default: 50, description: 'ms the fetch (token server) takes' },
  },
  params: (v) => ({ nodes: v.nodes as number, callers: v.callers as number, fetchMs: v['fetch-ms'] as number }),
  async run(p, ctx) {
    let children: BenchChild[] = [];
    try {
      ctx.progress(0, 'starting nodes');
      children = await startChildren(PEER, p.nodes);
      const cookie = randomBytes(12).toString('hex');
      const first = await children[0]!.request<{ address: string }>('startNode', { name: 'stampede-1', port: 0, cookie });
      await Promise.all(
        children.slice(1).map((c, i) => c.request('startNode', { name: `stampede-${i + 2}`, port: 0, cookie, seeds: [first.address] })),
      );
      await Promise.all(children.map((c) => c.request('waitPeers', { n: p.nodes - 1 })));

      const parts: StampedePart[] = [];
      let maxFetches = 0;
      let totalFetches = 0;
      let failures = 0;
      let rounds = 0;
      const started = Date.now();
      const budget = ctx.common.durationS * 1000;
      do {
        const namespace = `bench-stampede-${ctx.run}-${rounds}`;
        await Promise.all(children.map((c) => c.request('define', { namespace, fetchMs: p.fetchMs, ttlMs: 3_600_000 })));
        const startAt = String(process.hrtime.bigint() + 100_000_000n);
        const round = await Promise.all(children.map((c) => c.request<StampedePart>('stampede', { namespace, callers: p.callers, startAt })));
        const fetches = round.reduce((a, x) => a + x.fetches, 0);
        maxFetches = Math.max(maxFetches, fetches);
        totalFetches += fetches;
        failures += round.reduce((a, x) => a + x.failures, 0);
        parts.push(...round);
        rounds++;
        ctx.progress(Math.min(1, (Date.now() - started) / budget), `stampede ${rounds}`);
      } while (Date.now() - started < budget);
      await Promise.all(children.map((c) => c.request('close').catch(() => null)));

      const h = mergeHistograms(parts.map((x) => x.histogram));
      const fetchMs = median(parts.flatMap((x) => x.fetchMs));
      const callerP50Ms = h.getValueAtPercentile(50) / 1000;
      const callerP99Ms = h.getValueAtPercentile(99) / 1000;
      return {
        metrics: {
          fetches: maxFetches,
          callers: p.nodes * p.callers,
          fetchMs,
          callerP50Ms,
          callerP99Ms,
          callerMaxMs: h.maxValue / 1000,
          callerP50OverFetch: callerP50Ms / fetchMs,
          callerP99OverFetch: callerP99Ms / fetchMs,
          stampedes: rounds,
          fetchesTotal: totalFetches,
          failures,
        },
      };
    } finally {
      await killAll(children);
    }
  },
  charts: (r) => [
    {
      title: 'stampede: many callers of a cold value',
      panels: [
        panel('caller latency', 'ms', [
          ['one fetch (floor)', r.metrics.fetchMs, 'floor'],
          ['caller p50 (ours)', r.metrics.callerP50Ms, 'ours'],
          ['caller p99 (ours)', r.metrics.callerP99Ms, 'ours'],
          ...Object.entries(r.compare).flatMap(([k, m]): [string, number | undefined, 'peer'][] => [
            [`caller p50 (${k})`, m.callerP50Ms, 'peer'],
            [`caller p99 (${k})`, m.callerP99Ms, 'peer'],
          ]),
        ]),
        panel('fetches', 'fetches', [
          ['ours', r.metrics.fetches, 'ours'],
          ...Object.entries(r.compare).map(([k, m]): [string, number | undefined, 'peer'] => [k, m.fetches, 'peer']),
        ]),
      ],
    },
  ],
  table(result: BenchResult): TableSection[] {
    const m = result.metrics;
    return [
      {
        title: `${result.params.nodes} nodes x ${result.params.callers} callers on a cold expirable, fetch ${result.params.fetchMs} ms`,
        headers: ['figure', 'value'],
        rows: [
          ['fetches per stampede (max over stampedes; must be 1)', fmt(m.fetches)],
          ['callers per stampede', fmt(m.callers)],
          ['stampedes per run', fmt(m.stampedes)],
          ['fetch time (ms)', fmt(m.fetchMs)],
          ['caller p50 (ms)', `${fmt(m.callerP50Ms)} (${fmt(m.callerP50OverFetch)}x the fetch)`],
          ['caller p99 (ms)', `${fmt(m.callerP99Ms)} (${fmt(m.callerP99OverFetch)}x the fetch)`],
          ['caller max (ms)', fmt(m.callerMaxMs)],
          ['failed calls', fmt(m.failures)],
        ],
      },
    ];
  },
};

export default stampede;
