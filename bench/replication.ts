// replication: time from the end of a fetch on one node to the value being held by every
// other replica (the `replicate` diagnostics event there), against the mesh round trip
// (p50 of a remote call) measured in the same run. Node 1 refreshes the value each time it
// expires (`--ttl`); the others hold replicas and never call again. Times are compared
// across processes on CLOCK_MONOTONIC (process.hrtime), shared by the processes of a host.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { fmt, ratio } from './lib/format.js';
import { BenchChild, killAll, startChildren } from './lib/procs.js';
import type { PingPongResult } from './lib/raw.js';
import { decodeHistogram, newHistogram } from './lib/stats.js';
import { panel } from './lib/chart.js';
import type { BenchModule, BenchResult, TableSection } from './lib/types.js';
import type { ActorRefData } from '../src/actors/ref.js';

const PEER = fileURLToPath(new URL('./peers/store-peer.ts', import.meta.url));

interface ReplicationParams extends Record<string, number | string | boolean> {
  nodes: number;
  ttlMs: number;
}

type Times = { fetched: Record<string, string>; replicated: Record<string, string> };

const replication: BenchModule<ReplicationParams> = {
  name: 'replication',
  summary: 'end of a fetch to the value held on every replica, vs the mesh round trip',
  defaultDurationS: 4,
  latency: true,
  options: {
    nodes: { type: 'number', integer: true, min: 2, default: 3, description: 'node processes (one fetches, the others hold replicas)' },
    ttl: { type: 'number', min: 5, arg: 'ms', default: 20, description: 'ms a value lives; node 1 refreshes it each time it expires' },
  },
  params: (v) => ({ nodes: v.nodes as number, ttlMs: v.ttl as number }),
  async run(p, ctx) {
    const d = ctx.common.durationS * 1000;
    let children: BenchChild[] = [];
    try {
      ctx.progress(0, 'starting nodes');
      children = await startChildren(PEER, p.nodes);
      const cookie = randomBytes(12).toString('hex');
      const first = await children[0]!.request<{ address: string }>('startNode', { name: 'replication-1', port: 0, cookie });
      await Promise.all(
        children.slice(1).map((c, i) => c.request('startNode', { name: `replication-${i + 2}`, port: 0, cookie, seeds: [first.address] })),
      );
      await Promise.all(children.map((c) => c.request('waitPeers', { n: p.nodes - 1 })));

      // The mesh round trip, node 1 -> node 2.
      ctx.progress(0.05, 'mesh rtt');
      const ref = await children[1]!.request<ActorRefData>('spawnEcho');
      const rtt = await children[0]!.request<PingPongResult>('callLoop', { ref, durationMs: d * 0.2 });
      // The same round trip to a process idle for a refresh period, as a replica is when a push
      // reaches it: waking it is part of the floor (on a 2-vCPU machine, more than a hot round trip).
      ctx.progress(0.15, 'mesh rtt, idle');
      const idle = await children[0]!.request<{ histogram: string }>('idleCallLoop', { ref, gapMs: p.ttlMs, durationMs: d * 0.2 });

      // Replicas everywhere, then node 1 refreshes on every expiry.
      const namespace = `bench-replication-${ctx.run}`;
      await Promise.all(children.map((c) => c.request('define', { namespace, fetchMs: 0, ttlMs: p.ttlMs })));
      await children[0]!.request('call', { namespace });
      for (const c of children.slice(1)) await c.request('call', { namespace });
      ctx.progress(0.25, 'refreshing');
      const started = Date.now();
      const ticker = setInterval(() => ctx.progress(0.25 + 0.75 * Math.min(1, (Date.now() - started) / (d * 0.8)), 'refreshing'), 200);
      try {
        await children[0]!.request('refreshLoop', { namespace, ttlMs: p.ttlMs, durationMs: d * 0.8 });
      } finally {
        clearInterval(ticker);
      }
      await new Promise((r) => setTimeout(r, 200)); // let the last pushes land
      const times = await Promise.all(children.map((c) => c.request<Times>('times', { namespace })));
      await Promise.all(children.map((c) => c.request('close').catch(() => null)));

      // Per fetch on node 1 (after the priming one): the latest arrival over the other nodes.
      const h = newHistogram();
      let incomplete = 0;
      const versions = Object.keys(times[0]!.fetched).slice(1);
      for (const v of versions) {
        const end = BigInt(times[0]!.fetched[v]!);
        let last = -1n;
        for (const t of times.slice(1)) {
          const at = t.replicated[v];
          if (at === undefined) {
            last = -1n;
            break;
          }
          if (BigInt(at) > last) last = BigInt(at);
        }
        if (last < 0n) incomplete++;
        else h.recordValue(Math.max(1, Number(last - end) / 1000));
      }
      const mesh = decodeHistogram(rtt.histogram);
      const meshRttP50Us = mesh.getValueAtPercentile(50) / 1000;
      const meshIdleRttP50Us = decodeHistogram(idle.histogram).getValueAtPercentile(50) / 1000;
      const replicationP50Us = h.totalCount ? h.getValueAtPercentile(50) : NaN;
      return {
        metrics: {
          replicationP50Us,
          replicationP99Us: h.totalCount ? h.getValueAtPercentile(99) : NaN,
          replicationMaxUs: h.totalCount ? h.maxValue : NaN,
          meshRttP50Us,
          meshIdleRttP50Us,
          replicationOverRtt: replicationP50Us / meshRttP50Us,
          replicationOverIdleRtt: replicationP50Us / meshIdleRttP50Us,
          refreshes: h.totalCount,
          incomplete,
        },
      };
    } finally {
      await killAll(children);
    }
  },
  charts: (r) => [
    {
      title: 'replication: a new value reaching every replica',
      panels: [
        panel('latency', 'µs', [
          ['mesh round trip p50 (floor)', r.metrics.meshRttP50Us, 'floor'],
          ...(r.metrics.meshIdleRttP50Us !== undefined ? [['mesh round trip to an idle process p50 (floor)', r.metrics.meshIdleRttP50Us, 'floor'] as [string, number, 'floor']] : []),
          ...(r.metrics.redisRttP50Us !== undefined ? [['Redis PING p50 (peer)', r.metrics.redisRttP50Us, 'peer'] as [string, number, 'peer']] : []),
          ['fetch end to every replica p50 (ours)', r.metrics.replicationP50Us, 'ours'],
          ['fetch end to every replica p99 (ours)', r.metrics.replicationP99Us, 'ours'],
        ]),
      ],
    },
  ],
  table(result: BenchResult): TableSection[] {
    const m = result.metrics;
    return [
      {
        title: `${result.params.nodes} nodes; node 1 refreshes every ${result.params.ttlMs} ms, ${Number(result.params.nodes) - 1} replica(s) take each value`,
        headers: ['figure', 'µs', 'vs mesh RTT p50'],
        rows: [
          ['fetch end -> on every replica, p50', fmt(m.replicationP50Us), ratio(m.replicationP50Us, m.meshRttP50Us)],
          ['fetch end -> on every replica, p99', fmt(m.replicationP99Us), ratio(m.replicationP99Us, m.meshRttP50Us)],
          ['fetch end -> on every replica, max', fmt(m.replicationMaxUs), ratio(m.replicationMaxUs, m.meshRttP50Us)],
          ['mesh round trip (remote call) p50', fmt(m.meshRttP50Us), '1.00x'],
          [`mesh round trip to a process idle ${result.params.ttlMs} ms, p50`, fmt(m.meshIdleRttP50Us), ratio(m.meshIdleRttP50Us, m.meshRttP50Us)],
          ['refreshes measured / not seen on every replica', `${fmt(m.refreshes)} / ${fmt(m.incomplete)}`, ''],
        ],
      },
    ];
  },
};

export default replication;
