// mesh-rtt: remote `call` round trips between two node processes over TCP (p50/p99), side by
// side in the same run with a raw `net` ping-pong of the same frame between the same two
// processes; over the worker-thread transport vs a raw MessagePort ping-pong; and pipelined
// throughput with `--inflight` calls outstanding over one TCP link.
// Goals (issue 4): p50 remote call within 1.5x of the raw ping-pong; >= 100k pipelined calls/s.
// Ratios are medians of the per-run ratios.
import { fileURLToPath } from 'node:url';
import { fmt } from './lib/format.js';
import { startCluster } from './lib/cluster.js';
import { BenchChild, killAll } from './lib/procs.js';
import type { PingPongResult } from './lib/raw.js';
import { mergeHistograms } from './lib/stats.js';
import { panel } from './lib/chart.js';
import type { BenchModule, BenchResult, TableSection } from './lib/types.js';
import type { ActorRefData } from '../src/actors/ref.js';

const PEER = fileURLToPath(new URL('./peers/mesh-peer.ts', import.meta.url));

interface RttParams extends Record<string, number | string | boolean> {
  inflight: number;
}

/** Round trips of several slices as one distribution: p50/p99 in µs, and calls/s. */
function summarize(parts: PingPongResult[]): { p50: number; p99: number; perSec: number } {
  const h = mergeHistograms(parts.map((x) => x.histogram));
  const count = parts.reduce((a, x) => a + x.count, 0);
  const ns = parts.reduce((a, x) => a + x.elapsedNs, 0);
  return { p50: h.getValueAtPercentile(50) / 1000, p99: h.getValueAtPercentile(99) / 1000, perSec: count / (ns / 1e9) };
}

const meshRtt: BenchModule<RttParams> = {
  name: 'mesh-rtt',
  summary: 'remote call round trip over TCP and worker transport vs raw ping-pong; pipelined calls/s',
  defaultDurationS: 4,
  latency: true,
  options: {
    inflight: { type: 'number', integer: true, min: 1, default: 1000, description: 'calls in flight for the pipelined figure' },
  },
  params: (v) => ({ inflight: v.inflight as number }),
  async run(p, ctx) {
    const d = ctx.common.durationS * 1000;
    let children: BenchChild[] = [];
    try {
      ctx.progress(0, 'starting nodes');
      ({ children } = await startCluster(PEER, 2, (i) => ['rtt-a', 'rtt-b'][i]!));
      const [a, b] = children as [BenchChild, BenchChild];
      const ref = await a.request<ActorRefData>('spawnEcho');
      const port = await a.request<number>('echoServer');

      // TCP: raw and ours, interleaved in two slices each.
      const raw: PingPongResult[] = [];
      const calls: PingPongResult[] = [];
      const slice = d * 0.125;
      for (let i = 0; i < 2; i++) {
        ctx.progress(0.05 + i * 0.3, 'tcp raw');
        raw.push(await b.request<PingPongResult>('pingPong', { port, durationMs: slice }));
        ctx.progress(0.2 + i * 0.3, 'tcp call');
        calls.push(await b.request<PingPongResult>('callLoop', { ref, durationMs: slice }));
      }
      ctx.progress(0.6, 'pipelined');
      const piped = await b.request<{ perSec: number }>('pipelined', { ref, inflight: p.inflight, durationMs: d * 0.2 });

      // Worker transport: a worker-thread node of B, called from B's main thread, against a
      // raw MessagePort ping-pong between B's main thread and a thread; interleaved.
      const wref = await b.request<ActorRefData>('startWorker', { name: 'rtt-b-w1' });
      const portRaw: PingPongResult[] = [];
      const wcalls: PingPongResult[] = [];
      for (let i = 0; i < 2; i++) {
        ctx.progress(0.85 + i * 0.075, 'worker raw');
        portRaw.push(await b.request<PingPongResult>('portPingPong', { durationMs: d * 0.05 }));
        ctx.progress(0.85 + i * 0.075 + 0.0375, 'worker call');
        wcalls.push(await b.request<PingPongResult>('callLoop', { ref: wref, durationMs: d * 0.05 }));
      }
      await Promise.all(children.map((c) => c.request('close').catch(() => null)));

      const tcpRaw = summarize(raw);
      const tcpCall = summarize(calls);
      const wRaw = summarize(portRaw);
      const wCall = summarize(wcalls);
      return {
        metrics: {
          tcpCallP50Us: tcpCall.p50,
          tcpCallP99Us: tcpCall.p99,
          tcpRawP50Us: tcpRaw.p50,
          tcpRawP99Us: tcpRaw.p99,
          workerCallP50Us: wCall.p50,
          workerCallP99Us: wCall.p99,
          workerRawP50Us: wRaw.p50,
          workerRawP99Us: wRaw.p99,
          pipelinedCallsPerSec: piped.perSec,
          tcpCallsPerSec: tcpCall.perSec,
          tcpCallVsRaw: tcpCall.p50 / tcpRaw.p50,
          workerCallVsRaw: wCall.p50 / wRaw.p50,
        },
      };
    } finally {
      await killAll(children);
    }
  },
  charts: (r) => [
    {
      title: 'mesh-rtt: remote call round trip vs raw ping-pong (p50)',
      panels: [
        panel('round trip p50', 'µs', [
          ['raw TCP ping-pong (floor)', r.metrics.tcpRawP50Us, 'floor'],
          ['remote call over TCP (ours)', r.metrics.tcpCallP50Us, 'ours'],
          ['raw MessagePort ping-pong (floor)', r.metrics.workerRawP50Us, 'floor'],
          ['remote call to a worker (ours)', r.metrics.workerCallP50Us, 'ours'],
        ]),
      ],
    },
  ],
  table(result: BenchResult): TableSection[] {
    const m = result.metrics;
    return [
      {
        headers: ['path', 'ours p50 (µs)', 'ours p99 (µs)', 'raw p50 (µs)', 'raw p99 (µs)', 'ours / raw (p50, median of runs)'],
        rows: [
          ['TCP, two processes', fmt(m.tcpCallP50Us), fmt(m.tcpCallP99Us), fmt(m.tcpRawP50Us), fmt(m.tcpRawP99Us), `${fmt(m.tcpCallVsRaw)}x`],
          ['worker thread / MessagePort', fmt(m.workerCallP50Us), fmt(m.workerCallP99Us), fmt(m.workerRawP50Us), fmt(m.workerRawP99Us), `${fmt(m.workerCallVsRaw)}x`],
        ],
      },
      {
        headers: ['goal', 'target', 'measured', 'met'],
        rows: [
          ['TCP call p50 vs raw ping-pong', '<= 1.5x', `${fmt(m.tcpCallVsRaw)}x`, (m.tcpCallVsRaw ?? Infinity) <= 1.5 ? 'yes' : 'no'],
          ['worker call p50 vs raw MessagePort ping-pong', '<= 1.5x', `${fmt(m.workerCallVsRaw)}x`, (m.workerCallVsRaw ?? Infinity) <= 1.5 ? 'yes' : 'no'],
          [`pipelined calls/s (${result.params.inflight} in flight)`, '>= 100,000', fmt(m.pipelinedCallsPerSec), (m.pipelinedCallsPerSec ?? 0) >= 100_000 ? 'yes' : 'no'],
        ],
      },
    ];
  },
};

export default meshRtt;
