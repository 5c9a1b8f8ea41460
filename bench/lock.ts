// lock: the lock-contention benchmark (issue 5). N node processes x C contenders each loop
// `node.global.trans` on R resources with a critical section of H ms, for D seconds.
// Reports grants/s, acquire latency p50/p99/max (HDR histograms merged over processes),
// per-contender grant counts and Jain's fairness index, and mutual-exclusion violations on
// a shared invariant (must be 0); next to it, in the same run, one uncontended
// acquire+release against one raw loopback TCP round trip (twice: as `trans` runs by
// default, where a node that keeps taking a lock holds a lease on it, and with
// `lease: false`, where every acquire is a round trip to the lock's coordinator), and with
// `--compare erlang` the same workload against Erlang's :global.trans on as many BEAM nodes,
// with `--compare redlock` against redlock 4 on one redis-server (`--redis <url>`, or one
// started here), from as many processes with the same contenders and hold.
// Goals at 3 nodes x 32 contenders, H = 0: >= 10x the grants/s of :global.trans, Jain >= 0.95,
// uncontended acquire+release <= 1.5x one loopback round trip.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, ratio } from './lib/format.js';
import { hasErlang, runErlangLock, type ErlangLockFigures } from './lib/erlang.js';
import { startCluster } from './lib/cluster.js';
import { BenchChild, killAll, startChildren, tempDir } from './lib/procs.js';
import { hasRedisServer, startBenchRedis, type BenchRedis } from './lib/redis.js';
import type { PingPongResult } from './lib/raw.js';
import { decodeHistogram, median } from './lib/stats.js';
import { contendFigures, progressTicker, type ContendArgs, type LockWorkload } from './lib/lock-workload.js';
import { panel } from './lib/chart.js';
import { BenchUsageError, type BenchModule, type BenchResult, type TableSection } from './lib/types.js';
import type { TransContendResult } from './peers/lock-peer.js';
import type { RedlockContendArgs, RedlockContendResult } from './peers/redlock-peer.js';

const PEER = fileURLToPath(new URL('./peers/lock-peer.ts', import.meta.url));
const REDLOCK_PEER = fileURLToPath(new URL('./peers/redlock-peer.ts', import.meta.url));
/** Redlock's retry delay and jitter (ms) under contention (its defaults: 200 ± 200). */
const REDLOCK_RETRY_DELAY_MS = 10;
const REDLOCK_RETRY_JITTER_MS = 5;

interface LockParams extends Record<string, number | string | boolean> {
  nodes: number;
  contenders: number;
  resources: number;
  holdMs: number;
  compare: string;
  redis: string;
}

/** Alternating rounds of the raw round trip and the uncontended lock. */
const FLOOR_ROUNDS = 5;

/** Median of an encoded ns histogram, in µs. */
const p50Us = (r: PingPongResult): number => decodeHistogram(r.histogram).getValueAtPercentile(50) / 1000;

const lock: BenchModule<LockParams> = {
  name: 'lock',
  summary: 'global lock contention: N nodes x C contenders, grants/s, acquire p50/p99, fairness, violations',
  defaultDurationS: 10,
  latency: true,
  options: {
    nodes: { type: 'number', integer: true, min: 2, default: 3, description: 'node processes' },
    contenders: { type: 'number', integer: true, min: 1, default: 32, description: 'concurrent contenders per node' },
    resources: { type: 'number', integer: true, min: 1, default: 1, description: 'resources the contenders spread over' },
    hold: { type: 'number', min: 0, arg: 'ms', default: 0, description: 'ms each grant holds the lock' },
    compare: { type: 'string', choices: ['none', 'erlang', 'redlock'], default: 'none', description: "also run the workload on Erlang's :global.trans (erlang) or on redlock 4 over one redis-server (redlock)" },
    redis: { type: 'string', arg: 'url', description: 'with --compare redlock: the Redis to use (default: a redis-server started for the run)' },
  },
  params(v) {
    const p = {
      nodes: v.nodes as number,
      contenders: v.contenders as number,
      resources: v.resources as number,
      holdMs: v.hold as number,
      compare: v.compare as string,
      redis: (v.redis as string | undefined) ?? '',
    };
    if (p.resources > p.nodes * p.contenders) throw new BenchUsageError('--resources must not exceed nodes x contenders');
    return p;
  },
  async run(p, ctx) {
    const durationMs = ctx.common.durationS * 1000;
    const warmupMs = Math.min(1000, durationMs * 0.2);
    const erlang = p.compare === 'erlang';
    if (erlang && ctx.run === 0 && !hasErlang()) {
      ctx.log("lock: `erl` is not on the PATH: skipping the Erlang comparison (install it with `apt-get install erlang-nox`).");
    }
    const withErlang = erlang && hasErlang();
    const redlock = p.compare === 'redlock';
    if (redlock && ctx.run === 0 && !p.redis && !hasRedisServer()) {
      ctx.log('lock: `redis-server` is not on the PATH and no --redis was given: skipping the redlock comparison (install it with `apt-get install redis-server`).');
    }
    const withRedlock = redlock && (p.redis !== '' || hasRedisServer());
    const share = withErlang || withRedlock ? 0.5 : 1; // progress share of our part
    const tmp = tempDir('lock-bench-');
    const file = join(tmp.path, 'invariant.bin');
    let children: BenchChild[] = [];
    try {
      // The cluster.
      ctx.progress(0, 'starting nodes');
      ({ children } = await startCluster(PEER, p.nodes, 'lock-bench', { peersTimeout: 15_000 }));

      // The floor and the uncontended lock, side by side: rounds that alternate a raw round
      // trip and an uncontended acquire+release from each node in turn, so the machine's
      // drift (other load, CPU frequency, wake-up latency) hits both alike; each figure is the
      // median of its rounds' p50s. One node coordinates the resource (a local acquire); the
      // others go over the mesh, and the slowest of them is the figure set against the floor.
      ctx.progress(0.02 * share, 'floor');
      const roundMs = Math.min(400, Math.max(100, durationMs * 0.02));
      const port = await children[0]!.request<number>('echoServer');
      const rawRounds: number[] = [];
      const uncRounds: number[][] = children.map(() => []);
      const rttRounds: number[][] = children.map(() => []);
      for (let round = 0; round < FLOOR_ROUNDS; round++) {
        const roundWarmupMs = round === 0 ? 500 : 50;
        rawRounds.push(p50Us(await children[1]!.request<PingPongResult>('pingPong', { port, bytes: 64, durationMs: roundMs, warmupMs: roundWarmupMs })));
        for (const [lease, rounds] of [[true, uncRounds], [false, rttRounds]] as const) {
          const resource = `bench-uncontended-${lease ? 'lease' : 'rtt'}-${ctx.run}`;
          for (const [i, c] of children.entries()) {
            const args = { resource, lease, durationMs: roundMs, warmupMs: roundWarmupMs };
            rounds[i]!.push(p50Us(await c.request<PingPongResult>('uncontended', args, roundMs + roundWarmupMs + 15_000)));
          }
        }
      }
      const uncPerNode = uncRounds.map(median);
      const rttPerNode = rttRounds.map(median);

      // Contention.
      const workload: LockWorkload = { nodes: p.nodes, contenders: p.contenders, resources: p.resources, holdMs: p.holdMs, warmupMs, durationMs, file };
      writeFileSync(file, Buffer.alloc(16 * p.resources));
      const stopTicker = progressTicker(workload, (f) => ctx.progress((0.1 + 0.9 * f) * share, 'contention'));
      let parts: TransContendResult[];
      try {
        parts = await Promise.all(
          children.map((c, nodeIndex) => c.request<TransContendResult>('contend', { ...workload, nodeIndex } satisfies ContendArgs, warmupMs + durationMs + 30_000)),
        );
      } finally {
        stopTicker();
      }
      await Promise.all(children.map((c) => c.request('close').catch(() => null)));
      await killAll(children);
      children = [];

      const counts = parts.flatMap((x) => x.counts);
      const rawRttUs = median(rawRounds);
      const uncontendedUs = Math.max(...uncPerNode);
      const uncontendedRttUs = Math.max(...rttPerNode);
      const sorted = [...counts].sort((a, b) => a - b);
      const metrics: Record<string, number> = {
        ...contendFigures(parts),
        tokenViolations: parts.reduce((a, x) => a + x.tokenViolations, 0),
        stuckContenders: parts.reduce((a, x) => a + x.stuck, 0),
        uncontendedUs,
        uncontendedNoLeaseUs: uncontendedRttUs,
        uncontendedLocalUs: Math.min(...rttPerNode),
        rawRttUs,
        uncontendedVsRawRtt: uncontendedUs / rawRttUs,
        uncontendedNoLeaseVsRawRtt: uncontendedRttUs / rawRttUs,
        contenderGrantsMin: sorted[0] ?? 0,
        contenderGrantsMax: sorted.at(-1) ?? 0,
      };
      const stuckNotes = parts.flatMap((x, i) => (x.stuck > 0 ? [`n${i + 1}: ${x.stuck} contender(s) never granted after the end; lock stats: ${x.stats}`] : []));
      if (stuckNotes.length > 0) ctx.log(`lock: ${stuckNotes.join('\n')}`);
      const notes = [
        ...stuckNotes,
        `per-contender grants (ours, last run), node by node: ${parts.map((x, i) => `n${i + 1} [${x.counts.join(' ')}]`).join('; ')}`,
        `uncontended acquire+release p50 by node (µs, median of ${FLOOR_ROUNDS} rounds): default (lease) ${uncPerNode.map((u, i) => `n${i + 1} ${fmt(u)}`).join(', ')}; lease: false ${rttPerNode.map((u, i) => `n${i + 1} ${fmt(u)}`).join(', ')}; raw TCP round trip by round: ${rawRounds.map(fmt).join(', ')}`,
        `fencing tokens checked: ${parts.reduce((a, x) => a + x.tokenChecks, 0)} grants` +
          (parts.every((x) => x.tokenChecks === 0) ? ' (tokens are not numeric: order not checked)' : ''),
      ];

      let compare: Record<string, Record<string, number>> | undefined;
      if (withErlang) {
        writeFileSync(file, Buffer.alloc(16 * p.resources));
        const e: ErlangLockFigures = await runErlangLock(
          workload,
          (f) => ctx.progress(0.5 + 0.5 * f, 'erlang :global.trans'),
        );
        compare = {
          erlang: {
            grantsPerSec: e.grantsPerSec,
            jain: e.jain,
            acquireP50Us: e.acquireP50Us,
            acquireP99Us: e.acquireP99Us,
            acquireMaxUs: e.acquireMaxUs,
            violations: e.violations,
            missing: e.missing,
          },
        };
        notes.push(`per-contender grants (:global.trans, last run): [${e.counts.join(' ')}]`);
      }
      if (withRedlock) {
        writeFileSync(file, Buffer.alloc(16 * p.resources));
        const r = await runRedlock(workload, p.redis, (f) => ctx.progress(0.5 + 0.5 * f, 'redlock'));
        compare = { ...compare, redlock: r.figures };
        notes.push(
          `redlock 4 (ioredis, one redis-server${p.redis ? ` at ${p.redis}` : ' started for the run'}), retries every ${REDLOCK_RETRY_DELAY_MS} ± ${REDLOCK_RETRY_JITTER_MS} ms without end; per-contender grants (last run): [${r.counts.join(' ')}]`,
        );
      }
      return { metrics, ...(compare ? { compare } : {}), notes };
    } finally {
      await killAll(children);
      tmp.remove();
    }
  },
  charts: (r) => {
    const peers = Object.entries(r.compare);
    return [
      {
        title: 'lock: global lock contention',
        panels: [
          panel('grants', '/s', [['ours', r.metrics.grantsPerSec, 'ours'], ...peers.map(([k, m]): [string, number | undefined, 'peer'] => [k, m.grantsPerSec, 'peer'])]),
          panel('acquire p50', 'µs', [
            ['raw TCP round trip (floor)', r.metrics.rawRttUs, 'floor'],
            ['uncontended acquire (ours)', r.metrics.uncontendedUs, 'ours'],
            ['contended acquire (ours)', r.metrics.acquireP50Us, 'ours'],
            ...peers.map(([k, m]): [string, number | undefined, 'peer'] => [`contended acquire (${k})`, m.acquireP50Us, 'peer']),
          ]),
        ],
      },
    ];
  },
  table(result: BenchResult): TableSection[] {
    const m = result.metrics;
    const e = result.compare.erlang ?? result.compare.redlock;
    const peer = result.compare.erlang ? ':global.trans' : 'redlock';
    const rows: [string, string][] = [
      ['grants/s', 'grantsPerSec'],
      ['Jain fairness index', 'jain'],
      ['acquire p50 (µs)', 'acquireP50Us'],
      ['acquire p99 (µs)', 'acquireP99Us'],
      ['acquire max (µs)', 'acquireMaxUs'],
      ['violations', 'violations'],
      ['contenders never granted (stuck)', 'stuckContenders'],
      ['uncontended acquire+release p50 (µs), default (a lease after 3 grants)', 'uncontendedUs'],
      ['uncontended acquire+release p50 (µs), lease: false, remote coordinator', 'uncontendedNoLeaseUs'],
      ['uncontended acquire+release p50 (µs), lease: false, local coordinator', 'uncontendedLocalUs'],
      ['raw TCP round trip p50 (µs)', 'rawRttUs'],
    ];
    const main: TableSection = {
      title: `${result.params.nodes} nodes x ${result.params.contenders} contenders, ${result.params.resources} resource(s), hold ${result.params.holdMs} ms`,
      headers: e ? ['figure', 'ours', peer, 'ours / theirs'] : ['figure', 'ours'],
      rows: rows.map(([label, k]) => (e ? [label, fmt(m[k]), fmt(e[k]), e[k] === undefined ? '' : ratio(m[k], e[k])] : [label, fmt(m[k])])),
    };
    const goals: TableSection = {
      headers: ['goal', 'target', 'measured', 'met'],
      rows: [
        ['uncontended acquire+release (default: lease) vs raw TCP round trip', '<= 1.5x', `${fmt(m.uncontendedUs)} µs vs ${fmt(m.rawRttUs)} µs = ${fmt(m.uncontendedVsRawRtt)}x`, (m.uncontendedVsRawRtt ?? Infinity) <= 1.5 ? 'yes' : 'no'],
        ['uncontended, lease: false (a round trip to the coordinator) vs raw TCP round trip', '<= 1.5x', `${fmt(m.uncontendedNoLeaseUs)} µs vs ${fmt(m.rawRttUs)} µs = ${fmt(m.uncontendedNoLeaseVsRawRtt)}x`, (m.uncontendedNoLeaseVsRawRtt ?? Infinity) <= 1.5 ? 'yes' : 'no'],
        ['Jain fairness index', '>= 0.95', fmt(m.jain), (m.jain ?? 0) >= 0.95 ? 'yes' : 'no'],
        ['violations', '0', fmt(m.violations), m.violations === 0 && result.runs.every((r) => r.violations === 0) ? 'yes' : 'no'],
      ],
    };
    if (result.compare.erlang) goals.rows.unshift(['grants/s vs :global.trans', '>= 10x', ratio(m.grantsPerSec, e!.grantsPerSec), (m.grantsPerSec ?? 0) >= 10 * (e!.grantsPerSec ?? Infinity) ? 'yes' : 'no']);
    return [main, goals];
  },
};

/** `--compare redlock`: the same workload on redlock 4 (on `redis`, or a redis-server started here when empty), from `w.nodes` processes. */
async function runRedlock(
  w: LockWorkload,
  redis: string,
  onTick: (f: number) => void,
): Promise<{ figures: Record<string, number>; counts: number[] }> {
  let server: BenchRedis | undefined;
  let children: BenchChild[] = [];
  const stopTicker = progressTicker(w, onTick);
  try {
    if (!redis) server = await startBenchRedis();
    const url = redis || server!.url;
    children = await startChildren(REDLOCK_PEER, w.nodes);
    const parts = await Promise.all(
      children.map((c, nodeIndex) => {
        const args: RedlockContendArgs = { ...w, nodeIndex, url, retryDelayMs: REDLOCK_RETRY_DELAY_MS, retryJitterMs: REDLOCK_RETRY_JITTER_MS };
        return c.request<RedlockContendResult>('contend', args, w.warmupMs + w.durationMs + 30_000);
      }),
    );
    return {
      figures: { ...contendFigures(parts), errors: parts.reduce((a, x) => a + x.errors, 0) },
      counts: parts.flatMap((x) => x.counts),
    };
  } finally {
    stopTicker();
    await killAll(children);
    await server?.stop();
  }
}

export default lock;
