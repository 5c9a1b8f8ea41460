// pg: how fast process-group membership converges over the mesh, against the mesh round
// trip of the same run (and Erlang's `pg` with `--compare erlang`).
// - joinVisible: node i mod N spawns an actor and calls `pg.join`; the figure is the latest
//   moment any other node's `pg.monitor` callback saw that member, minus the moment of the
//   `join` call. One join at a time; times are wall-clock microseconds read as
//   `performance.timeOrigin + performance.now()` in each process (one host, one clock).
// - rawVisible (the floor of joinVisible): alternating with the joins, the same node writes a
//   4-byte frame on plain sockets to every other node process; the latest arrival minus the
//   write. A one-way message to N-1 processes: on 2 vCPUs, waking a process on the idle one
//   costs 50-60 µs, and the last receiver waits for a CPU. The mesh round trip (a call loop,
//   both ends kept awake) is not that floor.
// - downCleanup: the last node holds `--members` members; once every node sees them, this
//   process notes the time and kills that node with SIGKILL; the figure is the moment the
//   last surviving node had no member of it left in its view, minus the kill. Split in two:
//   killToNodedownMs (the kill until the last survivor's mesh handled the socket closing:
//   the kernel tearing the process down) and downCleanupFromNodedownMs (from each
//   survivor's own `nodedown`, seen ahead of pg's listener, to no member left; worst one).
//   killToRawCloseMs: the kill until a plain socket to the killed process closed (the
//   kernel's moment, nothing of ours on the path), last survivor.
import { fileURLToPath } from 'node:url';
import { panel } from './lib/chart.js';
import { hasErlang } from './lib/erlang.js';
import { runErlangPg } from './lib/erlang-pg.js';
import { fmt, ratio } from './lib/format.js';
import { startCluster } from './lib/cluster.js';
import { BenchChild, killAll } from './lib/procs.js';
import type { PingPongResult } from './lib/raw.js';
import { decodeHistogram, newHistogram } from './lib/stats.js';
import type { BenchModule, BenchResult, TableSection } from './lib/types.js';
import type { ActorRefData } from '../src/actors/ref.js';

const PEER = fileURLToPath(new URL('./peers/pg-peer.ts', import.meta.url));
const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;

interface PgParams extends Record<string, number | string | boolean> {
  nodes: number;
  members: number;
  compare: string;
}

const pg: BenchModule<PgParams> = {
  name: 'pg',
  summary: 'a pg join seen by every other node, and a killed node cleaned from every view, vs the mesh round trip',
  defaultDurationS: 3,
  latency: true,
  options: {
    nodes: { type: 'number', integer: true, min: 2, default: 3, description: 'node processes' },
    members: { type: 'number', integer: true, min: 1, default: 10, description: 'members the killed node holds' },
    compare: { type: 'string', choices: ['none', 'erlang'], default: 'none', description: "also run the workload on Erlang's pg (needs erl on the PATH)" },
  },
  params: (v) => ({ nodes: v.nodes as number, members: v.members as number, compare: v.compare as string }),
  async run(p, ctx) {
    const d = ctx.common.durationS * 1000;
    let children: BenchChild[] = [];
    let metrics: Record<string, number>;
    try {
      ctx.progress(0, 'starting nodes');
      const cluster = await startCluster(PEER, p.nodes, 'pg');
      children = cluster.children;

      const rawPorts = await Promise.all(children.map((c) => c.request<number>('rawListen')));
      await Promise.all(children.map((c, i) => c.request('rawConnect', { ports: rawPorts.filter((_, k) => k !== i) })));

      ctx.progress(0.05, 'mesh rtt');
      const ref = await children[1]!.request<ActorRefData>('spawnEcho');
      const rtt = await children[0]!.request<PingPongResult>('callLoop', { ref, durationMs: d * 0.2 });

      ctx.progress(0.25, 'joins');
      const h = newHistogram();
      const raw = newHistogram();
      const end = Date.now() + d;
      for (let i = 0; Date.now() < end || i === 0; i++) {
        const j = i % p.nodes;
        const others = children.filter((_, k) => k !== j);
        const { key, at } = await children[j]!.request<{ key: string; at: number }>('join');
        const seen = await Promise.all(others.map((c) => c.request<number>('waitSeen', { key }, 30_000)));
        h.recordValue(Math.max(1, Math.round(Math.max(...seen) - at)));
        const rawAt = await children[j]!.request<number>('rawSend', { k: i });
        const rawSeen = await Promise.all(others.map((c) => c.request<number>('waitRawSeen', { k: i }, 30_000)));
        raw.recordValue(Math.max(1, Math.round(Math.max(...rawSeen) - rawAt)));
        if (i % 20 === 0) ctx.progress(0.25 + 0.6 * Math.min(1, 1 - (end - Date.now()) / d), 'joins');
      }

      ctx.progress(0.85, 'down cleanup');
      const victim = children.at(-1)!;
      const victimName = cluster.names.at(-1)!;
      const survivors = children.slice(0, -1);
      const keys: string[] = [];
      for (let m = 0; m < p.members; m++) keys.push((await victim.request<{ key: string }>('join')).key);
      for (const c of survivors) for (const key of keys) await c.request('waitSeen', { key }, 30_000);
      const gone = survivors.map((c) =>
        c.request<{ goneAt: number; downAt: number | undefined; rawClosedAt: number | undefined }>('waitGone', { name: victimName }, 60_000),
      );
      const killedAt = nowUs();
      await victim.kill();
      const g = await Promise.all(gone);
      const lastGone = Math.max(...g.map((x) => x.goneAt));
      const fromDown = g.map((x) => (x.downAt === undefined ? NaN : x.goneAt - x.downAt));
      const lastDown = Math.max(...g.map((x) => (x.downAt === undefined ? NaN : x.downAt)));
      const lastRawClose = Math.max(...g.map((x) => (x.rawClosedAt === undefined ? NaN : x.rawClosedAt)));
      const mesh = decodeHistogram(rtt.histogram);
      metrics = {
        joinVisibleP50Us: h.getValueAtPercentile(50),
        joinVisibleP99Us: h.getValueAtPercentile(99),
        rawVisibleP50Us: raw.getValueAtPercentile(50),
        rawVisibleP99Us: raw.getValueAtPercentile(99),
        meshRttP50Us: mesh.getValueAtPercentile(50) / 1000,
        downCleanupMs: (lastGone - killedAt) / 1000,
        killToNodedownMs: (lastDown - killedAt) / 1000,
        killToRawCloseMs: (lastRawClose - killedAt) / 1000,
        downCleanupFromNodedownMs: Math.max(...fromDown) / 1000,
        joins: h.totalCount,
      };
      await Promise.all(survivors.map((c) => c.request('close').catch(() => null)));
    } finally {
      await killAll(children);
    }
    if (p.compare !== 'erlang') return { metrics };
    if (!hasErlang()) {
      ctx.log('pg --compare erlang: `erl`, `erlc` or `epmd` is not on the PATH; ours alone was measured.');
      return { metrics, notes: ['--compare erlang asked for, but erl/erlc/epmd is not on the PATH: ours alone was measured'] };
    }
    ctx.progress(0.9, "Erlang's pg");
    const erl = await runErlangPg(p.nodes, d, p.members);
    const { joins: erlJoins, ...erlang } = erl;
    return { metrics, compare: { erlang: { ...erlang, joins: erlJoins } } };
  },
  charts: (r) => {
    const e = r.compare.erlang;
    const peer = (label: string, v: number | undefined): [string, number | undefined, 'peer'][] => (e ? [[label, v, 'peer']] : []);
    return [
      {
        title: `pg: membership over ${r.params.nodes} nodes`,
        panels: [
          panel('a join seen by every other node', 'µs', [
            ['raw one-way to every other process p50 (floor)', r.metrics.rawVisibleP50Us, 'floor'],
            ['mesh round trip p50', r.metrics.meshRttP50Us, 'floor'],
            ['join visible p50 (ours)', r.metrics.joinVisibleP50Us, 'ours'],
            ['join visible p99 (ours)', r.metrics.joinVisibleP99Us, 'ours'],
            ...peer('Erlang distribution round trip p50', e?.meshRttP50Us),
            ...peer("join visible p50 (Erlang's pg)", e?.joinVisibleP50Us),
            ...peer("join visible p99 (Erlang's pg)", e?.joinVisibleP99Us),
          ]),
          panel('kill -9 to no member left in any view', 'ms', [
            ['ours', r.metrics.downCleanupMs, 'ours'],
            ...peer("Erlang's pg", e?.downCleanupMs),
          ]),
        ],
      },
    ];
  },
  table(result: BenchResult, notes: string[]): TableSection[] {
    const m = result.metrics;
    const e = result.compare.erlang;
    const headers = ['figure', 'ours', 'vs mesh RTT p50', 'vs raw one-way p50', ...(e ? ["Erlang's pg", 'vs its RTT p50'] : [])];
    const row = (label: string, k: string, rel: boolean): string[] => [
      label,
      fmt(m[k]),
      rel ? ratio(m[k], m.meshRttP50Us) : '',
      rel ? ratio(m[k], m.rawVisibleP50Us) : '',
      ...(e ? [fmt(e[k]), rel ? ratio(e[k], e.meshRttP50Us) : ''] : []),
    ];
    const sections: TableSection[] = [
      {
        title: `${result.params.nodes} nodes; one join at a time; the killed node held ${result.params.members} member(s)${e ? '' : notes.length ? ' (Erlang not measured: erl not on the PATH)' : ''}`,
        headers,
        rows: [
          row('join -> seen by every other node, p50 (µs)', 'joinVisibleP50Us', true),
          row('join -> seen by every other node, p99 (µs)', 'joinVisibleP99Us', true),
          row('raw frame -> seen by every other process, p50 (µs)', 'rawVisibleP50Us', true),
          row('raw frame -> seen by every other process, p99 (µs)', 'rawVisibleP99Us', true),
          row('mesh round trip p50 (µs)', 'meshRttP50Us', true),
          row('kill -9 -> no member left in any view (ms)', 'downCleanupMs', false),
          row('kill -9 -> socket close handled, last node (ms)', 'killToNodedownMs', false),
          row('kill -9 -> a raw socket to it closed, last node (ms)', 'killToRawCloseMs', false),
          row('nodedown -> no member left, worst node (ms)', 'downCleanupFromNodedownMs', false),
          row('joins measured', 'joins', false),
        ],
      },
    ];
    return sections;
  },
};

export default pg;
