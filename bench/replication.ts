// replication: time from the end of a fetch on one node to the value being held by every
// other replica (the `replicate` diagnostics event there), against the mesh round trip
// (p50 of a remote call) measured in the same run. Node 1 refreshes the value each time it
// expires (`--ttl`); the others hold replicas and never call again. Times are compared
// across processes on CLOCK_MONOTONIC (process.hrtime), shared by the processes of a host.
// With `--backend redis` the store coordinates through one Redis (redisBackend): the figure
// is the end of the fetch on node 1 to the moment a call on every other process answers the
// new value (wall-clock µs, `performance.timeOrigin + performance.now()`, one clock per host;
// matched by value), set against a raw Redis PING round trip measured in the same run (and
// the mesh round trip, the nodes being connected as well), and against a raw PING sent after
// an idle refresh period (Redis and the process both asleep, as they are when a refresh comes:
// on a busy machine, waking them is most of the time a refresh takes to reach every process).
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { fmt, ratio } from './lib/format.js';
import { startCluster } from './lib/cluster.js';
import { BenchChild, killAll } from './lib/procs.js';
import type { PingPongResult } from './lib/raw.js';
import { BACKEND_OPTIONS, backendParams, redisUnavailable, withBenchRedis } from './lib/redis.js';
import { decodeHistogram, newHistogram, type Histogram } from './lib/stats.js';
import { panel } from './lib/chart.js';
import type { BenchModule, BenchResult, RunContext, RunOutput, TableSection } from './lib/types.js';
import type { ActorRefData } from '../src/actors/ref.js';

const PEER = fileURLToPath(new URL('./peers/store-peer.ts', import.meta.url));

interface ReplicationParams extends Record<string, number | string | boolean> {
  nodes: number;
  ttlMs: number;
  backend: string;
  redis: string;
}

type Times = { fetched: Record<string, string>; replicated: Record<string, string> };
type WallTimes = { fetched: Record<string, number>; readable: Record<string, number> };

const replication: BenchModule<ReplicationParams> = {
  name: 'replication',
  summary: 'end of a fetch to the value held on every replica, vs the mesh round trip',
  defaultDurationS: 4,
  latency: true,
  options: {
    nodes: { type: 'number', integer: true, min: 2, default: 3, description: 'node processes (one fetches, the others hold replicas)' },
    ttl: { type: 'number', min: 5, arg: 'ms', default: 20, description: 'ms a value lives; node 1 refreshes it each time it expires' },
    ...BACKEND_OPTIONS,
  },
  params: (v) => ({ nodes: v.nodes as number, ttlMs: v.ttl as number, ...backendParams(v) }),
  unavailable: (p) => redisUnavailable(p),
  run(p, ctx) {
    return p.backend === 'redis' ? withBenchRedis(p.redis, (url) => measure(p, ctx, url)) : measure(p, ctx, undefined);
  },
  charts: (r) => [
    {
      title: `replication: a new value reaching every replica${r.params.backend === 'redis' ? ' (on Redis)' : ''}`,
      panels: [
        panel('latency', 'µs', [
          ['mesh round trip p50 (floor)', r.metrics.meshRttP50Us, 'floor'],
          ...(r.metrics.meshIdleRttP50Us !== undefined ? [['mesh round trip to an idle process p50 (floor)', r.metrics.meshIdleRttP50Us, 'floor'] as [string, number, 'floor']] : []),
          ...(r.metrics.redisRttP50Us !== undefined ? [['Redis PING round trip p50 (floor)', r.metrics.redisRttP50Us, 'floor'] as [string, number, 'floor']] : []),
          ...(r.metrics.redisIdleRttP50Us !== undefined ? [['Redis PING round trip, both ends idle, p50 (floor)', r.metrics.redisIdleRttP50Us, 'floor'] as [string, number, 'floor']] : []),
          ...(r.metrics.floorReplicationP50Us !== undefined
            ? [['one raw push to every idle process p50 (floor)', r.metrics.floorReplicationP50Us, 'floor'] as [string, number, 'floor']]
            : []),
          ['fetch end to every replica p50 (ours)', r.metrics.replicationP50Us, 'ours'],
          ['fetch end to every replica p99 (ours)', r.metrics.replicationP99Us, 'ours'],
          ...(r.metrics.meshReplicationP50Us !== undefined
            ? ([
                ['the same, store on the mesh, p50', r.metrics.meshReplicationP50Us, 'other'],
                ['the same, store on the mesh, p99', r.metrics.meshReplicationP99Us, 'other'],
              ] as [string, number | undefined, 'other'][])
            : []),
        ]),
      ],
    },
  ],
  table(result: BenchResult): TableSection[] {
    const m = result.metrics;
    const onRedis = result.params.backend === 'redis';
    const rows: string[][] = [
      ['fetch end -> on every replica, p50', fmt(m.replicationP50Us), ratio(m.replicationP50Us, m.meshRttP50Us)],
      ['fetch end -> on every replica, p99', fmt(m.replicationP99Us), ratio(m.replicationP99Us, m.meshRttP50Us)],
      ['fetch end -> on every replica, max', fmt(m.replicationMaxUs), ratio(m.replicationMaxUs, m.meshRttP50Us)],
      ['mesh round trip (remote call) p50', fmt(m.meshRttP50Us), '1.00x'],
      [`mesh round trip to a process idle ${result.params.ttlMs} ms, p50`, fmt(m.meshIdleRttP50Us), ratio(m.meshIdleRttP50Us, m.meshRttP50Us)],
      [
        `floor: one raw TCP frame to every other process, all idle ${result.params.ttlMs} ms, p50 / p99 (ours p50 over it: ${fmt(m.replicationOverFloor)}x)`,
        `${fmt(m.floorReplicationP50Us)} / ${fmt(m.floorReplicationP99Us)}`,
        ratio(m.floorReplicationP50Us, m.meshRttP50Us),
      ],
    ];
    if (onRedis) {
      rows.push(['the same on a store on the mesh (same processes, alternating), p50', fmt(m.meshReplicationP50Us), ratio(m.meshReplicationP50Us, m.meshRttP50Us)]);
      rows.push(['the same on a store on the mesh, p99', fmt(m.meshReplicationP99Us), ratio(m.meshReplicationP99Us, m.meshRttP50Us)]);
      rows.push(['Redis PING round trip (raw socket) p50', fmt(m.redisRttP50Us), ratio(m.redisRttP50Us, m.meshRttP50Us)]);
      rows.push(['Redis PING round trip (raw socket) p99', fmt(m.redisRttP99Us), ratio(m.redisRttP99Us, m.meshRttP50Us)]);
      rows.push([`Redis PING round trip, both ends idle ${result.params.ttlMs} ms, p50`, fmt(m.redisIdleRttP50Us), ratio(m.redisIdleRttP50Us, m.meshRttP50Us)]);
    }
    rows.push(['refreshes measured / not seen on every replica', `${fmt(m.refreshes)} / ${fmt(m.incomplete)}`, '']);
    if (onRedis) rows.push(['on the mesh store: refreshes measured / not seen on every replica', `${fmt(m.meshRefreshes)} / ${fmt(m.meshIncomplete)}`, '']);
    const sections: TableSection[] = [
      {
        title:
          `${result.params.nodes} nodes; node 1 refreshes every ${result.params.ttlMs} ms, ${Number(result.params.nodes) - 1} replica(s) take each value` +
          (onRedis ? '; the store on Redis (redisBackend): fetch end -> a call answers it on every other process' : ''),
        headers: ['figure', 'µs', 'vs mesh RTT p50'],
        rows,
      },
    ];
    if (onRedis) {
      sections.push({
        headers: ['goal', 'target', 'measured', 'met'],
        rows: [
          [
            'replication p50 in Redis round trips (PING p50)',
            '<= 2',
            fmt(m.replicationOverRedisRtt),
            Number.isFinite(m.replicationOverRedisRtt) ? ((m.replicationOverRedisRtt ?? Infinity) <= 2 ? 'yes' : 'no') : 'n/a',
          ],
          ['replication p50 in idle Redis round trips (PING after an idle refresh period, p50)', '–', fmt(m.replicationOverRedisIdleRtt), ''],
          ['replication p50 on Redis vs on the mesh, same run', '–', `${fmt(m.replicationOverMeshReplication)}x`, ''],
        ],
      });
    }
    return sections;
  },
};

/** One run: `redisUrl` undefined for the mesh backend. */
async function measure(p: ReplicationParams, ctx: RunContext, redisUrl: string | undefined): Promise<RunOutput> {
  const d = ctx.common.durationS * 1000;
  let children: BenchChild[] = [];
  try {
    ctx.progress(0, 'starting nodes');
    ({ children } = await startCluster(PEER, p.nodes, 'replication'));
    // The floor's own links (./lib/raw-push.ts): node 1 pushes raw frames to the others.
    const ports = await Promise.all(children.map((c) => c.request<{ port: number }>('rawListen')));
    await children[0]!.request('rawConnect', { ports: ports.slice(1).map((x) => x.port) });

    // The mesh round trip, node 1 -> node 2 (and on Redis, node 1's raw PING round trip).
    ctx.progress(0.05, 'mesh rtt');
    const ref = await children[1]!.request<ActorRefData>('spawnEcho');
    const rtt = await children[0]!.request<PingPongResult>('callLoop', { ref, durationMs: redisUrl ? d * 0.1 : d * 0.2 });
    const redisRtt = redisUrl ? await children[0]!.request<PingPongResult>('redisPing', { url: redisUrl, durationMs: d * 0.1 }) : undefined;
    // The same round trip to a process idle for a refresh period, as a replica is when a push
    // reaches it: waking it is part of the floor (on a 2-vCPU machine, more than a hot round trip).
    ctx.progress(0.15, 'mesh rtt, idle');
    const idle = await children[0]!.request<{ histogram: string }>('idleCallLoop', { ref, gapMs: p.ttlMs, durationMs: d * 0.1 });
    // On Redis, the same for a raw PING: Redis and the process both idle a refresh period.
    const redisIdle = redisUrl ? await children[1]!.request<PingPongResult>('redisPing', { url: redisUrl, durationMs: d * 0.1, gapMs: p.ttlMs }) : undefined;

    // Replicas everywhere, then node 1 refreshes on every expiry. On Redis, a second store on
    // the mesh takes turns with it (segments alternate), timed the same way: the two backends
    // side by side in the same run.
    const tag = `${ctx.run}-${randomBytes(4).toString('hex')}`;
    const namespace = `bench-replication-${tag}`;
    const meshNamespace = `bench-replication-mesh-${tag}`;
    const stores = redisUrl ? [{ namespace, redisUrl }, { namespace: meshNamespace, redisUrl: undefined }] : [{ namespace, redisUrl: undefined }];
    for (const st of stores) {
      await Promise.all(children.map((c) => c.request('define', { ...st, fetchMs: 0, ttlMs: p.ttlMs, wallTimes: redisUrl !== undefined })));
      await children[0]!.request('call', { namespace: st.namespace });
      for (const c of children.slice(1)) await c.request('call', { namespace: st.namespace });
    }
    ctx.progress(0.25, 'refreshing');
    const started = Date.now();
    const ticker = setInterval(() => ctx.progress(0.25 + 0.75 * Math.min(1, (Date.now() - started) / (d * 0.8)), 'refreshing'), 200);
    try {
      const segments = redisUrl ? 4 : 1;
      for (let i = 0; i < segments; i++) {
        const st = stores[i % stores.length]!;
        await children[0]!.request('refreshLoop', { namespace: st.namespace, ttlMs: p.ttlMs, durationMs: (d * 0.8) / segments });
      }
    } finally {
      clearInterval(ticker);
    }
    await new Promise((r) => setTimeout(r, 200)); // let the last pushes land
    // The floor: node 1 pushes one raw frame to every other process each refresh period, all of
    // them idle in between; the time from the push to its arrival at the last of them.
    ctx.progress(1, 'floor');
    await Promise.all(children.slice(1).map((c) => c.request('rawTimeArrivals')));
    const { sent } = await children[0]!.request<{ sent: string[] }>('rawPushLoop', { gapMs: p.ttlMs, durationMs: d * 0.2 });
    await new Promise((r) => setTimeout(r, 200));
    const { h: floor } = latestRaw(sent, await Promise.all(children.slice(1).map((c) => c.request<{ at: string[] }>('rawArrivals'))));
    await Promise.all(children.map((c) => c.request('rawClose').catch(() => null)));
    const wallOf = async (ns: string): Promise<{ h: Histogram; incomplete: number }> =>
      latestWall(await Promise.all(children.map((c) => c.request<WallTimes>('wallTimes', { namespace: ns }))));
    const { h, incomplete } = redisUrl
      ? await wallOf(namespace)
      : latestMonotonic(await Promise.all(children.map((c) => c.request<Times>('times', { namespace }))));
    const onMesh = redisUrl ? await wallOf(meshNamespace) : undefined;
    await Promise.all(children.map((c) => c.request('close').catch(() => null)));

    const mesh = decodeHistogram(rtt.histogram);
    const meshRttP50Us = mesh.getValueAtPercentile(50) / 1000;
    const meshIdleRttP50Us = decodeHistogram(idle.histogram).getValueAtPercentile(50) / 1000;
    const replicationP50Us = h.totalCount ? h.getValueAtPercentile(50) : NaN;
    const floorP50Us = floor.totalCount ? floor.getValueAtPercentile(50) : NaN;
    const metrics: Record<string, number> = {
      replicationP50Us,
      replicationP99Us: h.totalCount ? h.getValueAtPercentile(99) : NaN,
      replicationMaxUs: h.totalCount ? h.maxValue : NaN,
      meshRttP50Us,
      meshIdleRttP50Us,
      replicationOverRtt: replicationP50Us / meshRttP50Us,
      replicationOverIdleRtt: replicationP50Us / meshIdleRttP50Us,
      floorReplicationP50Us: floorP50Us,
      floorReplicationP99Us: floor.totalCount ? floor.getValueAtPercentile(99) : NaN,
      floorPushes: floor.totalCount,
      replicationOverFloor: replicationP50Us / floorP50Us,
      refreshes: h.totalCount,
      incomplete,
    };
    if (redisRtt) {
      const r = decodeHistogram(redisRtt.histogram);
      metrics.redisRttP50Us = r.getValueAtPercentile(50) / 1000;
      metrics.redisRttP99Us = r.getValueAtPercentile(99) / 1000;
      metrics.replicationOverRedisRtt = replicationP50Us / metrics.redisRttP50Us;
    }
    if (redisIdle) {
      metrics.redisIdleRttP50Us = decodeHistogram(redisIdle.histogram).getValueAtPercentile(50) / 1000;
      metrics.replicationOverRedisIdleRtt = replicationP50Us / metrics.redisIdleRttP50Us;
    }
    if (onMesh) {
      const mh = onMesh.h;
      metrics.meshReplicationP50Us = mh.totalCount ? mh.getValueAtPercentile(50) : NaN;
      metrics.meshReplicationP99Us = mh.totalCount ? mh.getValueAtPercentile(99) : NaN;
      metrics.meshRefreshes = mh.totalCount;
      metrics.meshIncomplete = onMesh.incomplete;
      metrics.replicationOverMeshReplication = replicationP50Us / metrics.meshReplicationP50Us;
    }
    return { metrics };
  } finally {
    await killAll(children);
  }
}

/**
 * The floor: per raw push of node 1 (the first left out, as the priming fetch is), the latest
 * arrival over the other processes, in µs; each link delivers in order, so the i-th arrival on
 * each is the i-th push.
 */
function latestRaw(sent: readonly string[], arrivals: readonly { at: string[] }[]): { h: Histogram; incomplete: number } {
  const byPush = (times: readonly string[]): Record<string, bigint> => Object.fromEntries(times.map((t, i) => [String(i), BigInt(t)]));
  return latestArrival(Object.entries(byPush(sent)), arrivals.map((a) => byPush(a.at)), (last, end) => Number(last - end) / 1000);
}

/** Mesh: per fetch on node 1 (after the priming one), by version, the latest arrival over the other nodes (hrtime ns, recorded in µs). */
function latestMonotonic(times: readonly Times[]): { h: Histogram; incomplete: number } {
  const bigints = (r: Record<string, string>): Record<string, bigint> => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, BigInt(v)]));
  const [first, ...others] = times;
  return latestArrival(Object.entries(bigints(first!.fetched)), others.map((t) => bigints(t.replicated)), (last, end) => Number(last - end) / 1000);
}

/**
 * Redis: per value fetched on node 1 (after the priming one), the latest moment a call on
 * another process answered it, minus the end of its fetch (wall-clock µs).
 */
function latestWall(times: readonly WallTimes[]): { h: Histogram; incomplete: number } {
  const [first, ...others] = times;
  return latestArrival(Object.entries(first!.fetched).sort((a, b) => a[1] - b[1]), others.map((t) => t.readable), (last, end) => Math.round(last - end));
}

/**
 * `fetched`: node 1's fetches in order, each its key and the end of the fetch, the priming one
 * first (left out). For each other: the latest moment over `arrived` (one record a node, key ->
 * moment), minus the end of the fetch, in µs as `us` reads the clock (at least 1); a key some
 * node never had counts as incomplete.
 */
function latestArrival<T extends number | bigint>(
  fetched: readonly [string, T][],
  arrived: readonly Record<string, T>[],
  us: (last: T, end: T) => number,
): { h: Histogram; incomplete: number } {
  const h = newHistogram();
  let incomplete = 0;
  for (const [key, end] of fetched.slice(1)) {
    let last: T | undefined;
    for (const a of arrived) {
      const at = a[key];
      if (at === undefined) {
        last = undefined;
        break;
      }
      if (last === undefined || at > last) last = at;
    }
    if (last === undefined) incomplete++;
    else h.recordValue(Math.max(1, us(last, end)));
  }
  return { h, incomplete };
}

export default replication;
