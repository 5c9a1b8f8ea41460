// scale: how the store behaves as the cluster and the key count grow. For each cluster size
// in `--nodes`, node processes on this machine (all sharing its cores) run a keyed cluster
// expirable whose fetch is cheap and local; for each key count in `--keys`:
// Each keyed expirable's maxKeys is K (the default bound of 10,000 live keys would evict).
// - keysPerSec: every node starts reading all K keys at one shared instant (node i starting
//   at key i*K/N, 64 reads in flight per node); K divided by the time until the last node
//   has read (and so holds) every key. Each key is fetched once in the cluster.
// - bytesPerKey: heapUsed after a forced GC (peers run with --expose-gc), after the fill
//   minus before it, divided by K; the mean over the nodes.
// - hitNs: a read of a key already held, keys in rotation, on node 1.
// - coldKeyP50Us / coldKeyP99Us: node 1 holds `--cold` keys of a second keyed expirable;
//   node 2 then reads each for the first time, one at a time.
// - coldFetchP50Us / coldFetchP99Us: node 2 reads `--cold` keys of that expirable that nobody
//   holds, one at a time: the lock, the ask of every node under it, the fetch (which returns at
//   once) and the push; the first read of a new key in a cluster.
// - meshRttP50Us: the floor of a cold key held elsewhere, node 2 calling an echo actor on
//   node 1 back to back (the same pair, the same pattern as the cold reads, just before them).
// - replicationP50Us: a key of a third expirable (ttl 20 ms) refreshed by node 1 on expiry;
//   end of the fetch to the value held on every other node (as the replication bench).
// - joinSyncMs: one more node starts (seeded with node 1) while the cluster holds the K
//   keys: from its startNode call, through connecting to every node, until it has read
//   every key (64 reads in flight) — joinSyncFetches counts the reads that ran the fetch
//   there instead of taking the cluster's value (0 when it joined the cluster's values).
// `runs` holds one entry per (nodes, keys); `metrics` is the largest of them.
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ActorRefData } from '../src/actors/ref.js';
import type { BarKind, Chart, Panel } from './lib/chart.js';
import { fmt } from './lib/format.js';
import { startCluster } from './lib/cluster.js';
import { BenchChild, killAll } from './lib/procs.js';
import { decodeHistogram, newHistogram } from './lib/stats.js';
import { BenchUsageError, type BenchModule, type BenchResult, type TableSection } from './lib/types.js';

const PEER = fileURLToPath(new URL('./peers/scale-peer.ts', import.meta.url));
const CHILD = { execArgv: ['--expose-gc'] };
const CONCURRENCY = 64;
const REP_TTL_MS = 20;
const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;

interface ScaleParams extends Record<string, number | string | boolean> {
  nodes: string;
  keys: string;
  cold: number;
}

/** A comma-separated list of integers, each at least `min`, named after its option. */
export function intList(option: string, text: string, min: number): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const out = parts.map((s) => Number(s));
  if (parts.length === 0 || parts.some((s) => s === '') || out.some((n) => !Number.isInteger(n) || n < min)) {
    throw new BenchUsageError(`--${option} must be a comma-separated list of integers of at least ${min}, got ${JSON.stringify(text)}`);
  }
  return [...new Set(out)].sort((a, b) => a - b);
}

type Times = { fetched: Record<string, number>; replicated: Record<string, number> };

async function measure(n: number, keyCounts: number[], cold: number, durationMs: number, run: number, progress: (f: number, phase: string) => void) {
  const entries: Record<string, number>[] = [];
  let children: BenchChild[] = [];
  let joiner: BenchChild | undefined;
  try {
    const cluster = await startCluster(PEER, n, 'scale', CHILD);
    children = cluster.children;
    for (const [ki, k] of keyCounts.entries()) {
      const at = (f: number, phase: string): void => progress((ki + f) / keyCounts.length, `${n} nodes, ${k} keys: ${phase}`);
      const namespace = `bench-scale-${run}-${n}-${k}`;
      const slow = Math.max(120_000, k * 5); // request timeouts grow with the key count
      await Promise.all(children.map((c) => c.request('define', { namespace, ttlMs: REP_TTL_MS, maxKeys: Math.max(k, cold) })));
      const before = await Promise.all(children.map((c) => c.request<number>('heap')));

      at(0.05, 'fill');
      const startAt = nowUs() + 200_000;
      const fills = await Promise.all(
        children.map((c, i) => c.request<{ endAt: number; failures: number }>('fill', { namespace, keys: k, offset: Math.floor((i * k) / n), startAt, concurrency: CONCURRENCY }, slow)),
      );
      const fillUs = Math.max(...fills.map((f) => f.endAt)) - startAt;
      const after = await Promise.all(children.map((c) => c.request<number>('heap')));
      const bytesPerKey = after.reduce((a, x, i) => a + (x - before[i]!), 0) / n / k;
      const stats = await Promise.all(children.map((c) => c.request<Record<string, { fetches: number }>>('stats', { namespace })));
      const fetches = stats.reduce((a, s) => a + s.key!.fetches, 0);

      at(0.45, 'hits');
      const hitNs = await children[0]!.request<number>('hitLoop', { namespace, keys: k, durationMs: Math.max(50, durationMs * 0.2) });

      at(0.5, 'cold keys');
      const c = Math.min(cold, k);
      await children[0]!.request('primeCold', { namespace, count: c }, slow);
      const echo = await children[0]!.request<ActorRefData>('spawnEcho');
      const rtt = await children[1]!.request<{ histogram: string }>('callLoop', { ref: echo, durationMs: Math.max(100, durationMs * 0.2) }, slow);
      const meshRttP50Us = decodeHistogram(rtt.histogram).getValueAtPercentile(50) / 1000;
      const coldRes = await children[1]!.request<{ histogram: string; failures: number }>('coldReads', { namespace, count: c }, slow);
      const coldH = decodeHistogram(coldRes.histogram);
      const fetchRes = await children[1]!.request<{ histogram: string; failures: number }>('coldReads', { namespace, count: c, prefix: 'new-' }, slow);
      const fetchH = decodeHistogram(fetchRes.histogram);

      at(0.6, 'replication');
      await children[0]!.request('repOnce', { namespace });
      for (const ch of children.slice(1)) await ch.request('repOnce', { namespace });
      await children[0]!.request('refreshLoop', { namespace, ttlMs: REP_TTL_MS, durationMs: Math.max(100, durationMs * 0.5) });
      await new Promise((r) => setTimeout(r, 100)); // the last pushes land
      const times = await Promise.all(children.map((ch) => ch.request<Times>('times', { namespace })));
      const rep = newHistogram();
      for (const v of Object.keys(times[0]!.fetched).slice(1)) {
        const arrivals = times.slice(1).map((t) => t.replicated[v]);
        if (arrivals.some((x) => x === undefined)) continue;
        rep.recordValue(Math.max(1, Math.round(Math.max(...(arrivals as number[])) - times[0]!.fetched[v]!)));
      }

      at(0.75, 'a node joins');
      joiner = await BenchChild.start(PEER, CHILD);
      const started = await joiner.request<{ startedAt: number }>('startNode', { name: `scale-join-${k}`, port: 0, cookie: cluster.cookie, seeds: [cluster.seed] });
      await joiner.request('define', { namespace, ttlMs: REP_TTL_MS, maxKeys: Math.max(k, cold) });
      const join = await joiner.request<{ connectedAt: number; endAt: number; failures: number; fetches: number }>(
        'joinRead',
        { namespace, keys: k, peers: n, concurrency: CONCURRENCY },
        slow,
      );
      await joiner.request('close').catch(() => null);
      await joiner.kill();
      joiner = undefined;
      await Promise.all(children.map((ch) => ch.request('clear', { namespace }, slow).catch(() => null)));

      entries.push({
        nodes: n,
        keys: k,
        keysPerSec: k / (fillUs / 1e6),
        fillMs: fillUs / 1000,
        fetches,
        fillFailures: fills.reduce((a, f) => a + f.failures, 0),
        bytesPerKey,
        hitNs,
        coldKeyP50Us: coldH.getValueAtPercentile(50),
        coldKeyP99Us: coldH.getValueAtPercentile(99),
        coldKeyFailures: coldRes.failures,
        coldFetchP50Us: fetchH.getValueAtPercentile(50),
        coldFetchP99Us: fetchH.getValueAtPercentile(99),
        coldFetchFailures: fetchRes.failures,
        meshRttP50Us,
        replicationP50Us: rep.totalCount ? rep.getValueAtPercentile(50) : NaN,
        replicationP99Us: rep.totalCount ? rep.getValueAtPercentile(99) : NaN,
        joinSyncMs: (join.endAt - started.startedAt) / 1000,
        joinConnectMs: (join.connectedAt - started.startedAt) / 1000,
        joinSyncFetches: join.fetches,
        joinFailures: join.failures,
      });
    }
    await Promise.all(children.map((ch) => ch.request('close').catch(() => null)));
  } finally {
    await killAll([...children, joiner]);
  }
  return entries;
}

const scale: BenchModule<ScaleParams> = {
  name: 'scale',
  summary: 'keys held, memory per key, cold-key, hit, replication and join-sync figures as nodes and keys grow',
  defaultDurationS: 1,
  defaultRuns: 1,
  latency: false,
  options: {
    nodes: { type: 'string', arg: 'list', default: '2,4', description: 'cluster sizes, comma-separated (node processes on this machine)' },
    keys: { type: 'string', arg: 'list', default: '1000,10000', description: 'key counts, comma-separated (100000 works; it takes minutes)' },
    cold: { type: 'number', integer: true, min: 1, default: 200, description: 'first reads measured for the cold-key figures' },
  },
  params: (v) => {
    const nodes = intList('nodes', String(v.nodes), 2);
    const keys = intList('keys', String(v.keys), 1);
    return { nodes: nodes.join(','), keys: keys.join(','), cold: v.cold as number };
  },
  async run(p, ctx) {
    const nodes = intList('nodes', p.nodes, 2);
    const keys = intList('keys', p.keys, 1);
    const entries: Record<string, number>[] = [];
    for (const [i, n] of nodes.entries()) {
      entries.push(
        ...(await measure(n, keys, p.cold, ctx.common.durationS * 1000, ctx.run, (f, phase) => ctx.progress((i + f) / nodes.length, phase))),
      );
    }
    const largest = entries.at(-1)!;
    const cores = availableParallelism();
    return {
      metrics: { ...largest },
      entries,
      notes: [
        `every node is a process on this machine: up to ${nodes.at(-1)! + 1} node processes (and this one) share ${cores} CPU core(s)`,
        'metrics = the largest point (most nodes, most keys); runs = one entry per (nodes, keys)',
      ],
    };
  },
  charts(r: BenchResult): Chart[] {
    const nodes = [...new Set(r.runs.map((e) => e.nodes!))];
    const keys = [...new Set(r.runs.map((e) => e.keys!))];
    const maxKeys = keys.at(-1)!;
    const maxNodes = nodes.at(-1)!;
    const byNodes = r.runs.filter((e) => e.keys === maxKeys);
    const byKeys = r.runs.filter((e) => e.nodes === maxNodes);
    const latency = (title: string, rows: Record<string, number>[], label: (e: Record<string, number>) => string): Panel => ({
      title,
      unit: 'µs',
      groups: rows.map((e) => ({
        label: label(e),
        bars: [
          { label: 'cold key p50', value: e.coldKeyP50Us!, kind: 'ours' as BarKind },
          { label: 'cold key p99', value: e.coldKeyP99Us!, kind: 'ours' as BarKind },
          { label: 'new key (nobody holds it) p50', value: e.coldFetchP50Us!, kind: 'ours' as BarKind },
          { label: 'replication p50', value: e.replicationP50Us!, kind: 'other' as BarKind },
          { label: 'hit', value: e.hitNs! / 1000, kind: 'floor' as BarKind },
        ],
      })),
    });
    const memory = (title: string, rows: Record<string, number>[], label: (e: Record<string, number>) => string): Panel => ({
      title,
      unit: 'bytes/key/node',
      groups: rows.map((e) => ({ label: label(e), bars: [{ label: 'heap per key', value: e.bytesPerKey!, kind: 'ours' as BarKind }] })),
    });
    const nodesLabel = (e: Record<string, number>): string => `${e.nodes} nodes`;
    const keysLabel = (e: Record<string, number>): string => `${e.keys} keys`;
    const nodesPanels = [latency(`latency vs nodes (${maxKeys} keys)`, byNodes, nodesLabel), memory(`memory vs nodes (${maxKeys} keys)`, byNodes, nodesLabel)];
    const keysPanels = [latency(`latency vs keys (${maxNodes} nodes)`, byKeys, keysLabel), memory(`memory vs keys (${maxNodes} nodes)`, byKeys, keysLabel)];
    return [
      { title: 'scale: latency and memory vs nodes and keys', panels: [...nodesPanels, ...keysPanels] },
      { suffix: 'nodes', title: `scale: latency and memory vs nodes (${maxKeys} keys)`, panels: nodesPanels },
      { suffix: 'keys', title: `scale: latency and memory vs keys (${maxNodes} nodes)`, panels: keysPanels },
    ];
  },
  table(result: BenchResult, notes: string[]): TableSection[] {
    void notes;
    const rows = result.runs.map((e) => [
      fmt(e.nodes),
      fmt(e.keys),
      fmt(e.keysPerSec),
      fmt(e.bytesPerKey),
      fmt(e.hitNs),
      fmt(e.coldKeyP50Us),
      fmt(e.coldKeyP99Us),
      `${fmt(e.coldFetchP50Us)} / ${fmt(e.coldFetchP99Us)}`,
      fmt(e.meshRttP50Us),
      fmt(e.replicationP50Us),
      fmt(e.joinSyncMs),
      `${fmt(e.joinSyncFetches)} / ${fmt(e.fetches)}`,
    ]);
    return [
      {
        title: 'one row per (nodes, keys); metrics = the last row',
        headers: ['nodes', 'keys', 'keys/s (all held)', 'heap B/key/node', 'hit ns', 'cold p50 µs', 'cold p99 µs', 'new key p50 / p99 µs', 'mesh call p50 µs', 'replication p50 µs', 'join sync ms', 'join fetches / fill fetches'],
        rows,
      },
    ];
  },
};

export default scale;
