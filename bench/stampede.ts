// stampede: N node processes x C concurrent callers of one cold cluster-scope expirable, all
// started at the same instant. The fetch (a stand-in token server that takes `--fetch-ms`)
// must run exactly once for the whole cluster; caller latency p50/p99 is set against the
// fetch time. Repeated on a fresh (cold) store as often as `--duration` allows per run.
// Each run starts fresh processes, whose first stampede also pays for V8 compiling
// every step of the path (call, lock, ask, fetch, push) in every process at once: 2-4x the
// later ones on a 2-CPU machine, and at ~1/15 of the callers it alone was the run's p99.
// That first stampede is run apart and reported as `firstCaller*`; the caller figures are
// those of a cold expirable on running nodes, the case the benchmark is about. Its fetches
// and failures still count.
// On the mesh, each stampede is followed by one of the floor (./lib/raw-push.ts): the same
// processes and callers with nothing of ours, the fetcher chosen beforehand and the value one
// raw TCP frame to each process: what this machine's scheduling costs any design
// (`floorCaller*`).
// With `--backend redis` the store coordinates through one Redis (redisBackend) instead of
// the mesh, and the same stampedes run, interleaved round by round, on bentocache 1.x (memory
// L1, Redis L2 and bus on that same Redis) from as many processes with as many callers.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { fmt } from './lib/format.js';
import { startCluster } from './lib/cluster.js';
import { BenchChild, killAll, startChildren } from './lib/procs.js';
import { BACKEND_OPTIONS, backendParams, redisUnavailable, withBenchRedis } from './lib/redis.js';
import { median, mergeHistograms } from './lib/stats.js';
import { panel } from './lib/chart.js';
import { BenchUsageError, type BenchModule, type BenchResult, type RunContext, type RunOutput, type TableSection } from './lib/types.js';

const PEER = fileURLToPath(new URL('./peers/store-peer.ts', import.meta.url));
const BENTO_PEER = fileURLToPath(new URL('./peers/bentocache-peer.ts', import.meta.url));

interface StampedeParams extends Record<string, number | string | boolean> {
  nodes: number;
  callers: number;
  fetchMs: number;
  backend: string;
  redis: string;
  phases: boolean;
}

interface StampedePart {
  histogram: string;
  fetches: number;
  fetchMs: number[];
  failures: number;
  /** With `--phases`: when each step happened on that node, ms after the stampede's start instant. */
  phases?: Partial<Record<'callerStart' | 'answered' | 'lockAsked' | 'lockGranted' | 'lockReleased' | 'fetchStart' | 'fetchEnd' | 'pushed', number>>;
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
    phases: {
      type: 'boolean',
      default: false,
      description: "also time each stampede's steps on every node (lock, ask, fetch, push, answers) from the diagnostics channels: phase*Ms figures",
    },
    ...BACKEND_OPTIONS,
  },
  params: (v) => {
    // The steps are read from the mesh's lock and push events; on Redis there are none to read.
    if (v.phases === true && v.backend === 'redis') throw new BenchUsageError('--phases times the mesh steps of a stampede; it does not apply to --backend redis');
    return {
      nodes: v.nodes as number,
      callers: v.callers as number,
      fetchMs: v['fetch-ms'] as number,
      phases: v.phases === true,
      ...backendParams(v),
    };
  },
  unavailable: (p) => redisUnavailable(p),
  async run(p, ctx) {
    if (p.backend === 'redis') return withBenchRedis(p.redis, (url) => runOnRedis(p, url, ctx));
    let children: BenchChild[] = [];
    try {
      ctx.progress(0, 'starting nodes');
      ({ children } = await startCluster(PEER, p.nodes, 'stampede'));
      // The floor's own links: every process can push to every other (see ./lib/raw-push.ts).
      const ports = await Promise.all(children.map((c) => c.request<{ port: number }>('rawListen')));
      await Promise.all(children.map((c, i) => c.request('rawConnect', { ports: ports.filter((_, j) => j !== i).map((x) => x.port) })));

      const stampedeOn = async (namespace: string): Promise<StampedePart[]> => {
        await Promise.all(children.map((c) => c.request('define', { namespace, fetchMs: p.fetchMs, ttlMs: 3_600_000 })));
        const startAt = String(process.hrtime.bigint() + 100_000_000n);
        return Promise.all(children.map((c) => c.request<StampedePart>('stampede', { namespace, callers: p.callers, startAt, phases: p.phases })));
      };
      // The floor's stampede, the process that fetches taking turns.
      const floorOn = (round: number): Promise<{ histogram: string }[]> => {
        const startAt = String(process.hrtime.bigint() + 100_000_000n);
        return Promise.all(
          children.map((c, i) => c.request<{ histogram: string }>('rawStampede', { startAt, callers: p.callers, fetchMs: p.fetchMs, fetcher: i === round % p.nodes })),
        );
      };
      const firstRound = await stampedeOn(`bench-stampede-${ctx.run}-first`);
      await floorOn(0); // its first stampede too, left out
      const measured: StampedePart[][] = [];
      const floor: { histogram: string }[][] = [];
      let rounds = 0;
      // The duration counts our stampedes only; a floor stampede follows each of them.
      let spent = 0;
      const budget = ctx.common.durationS * 1000;
      do {
        const t0 = Date.now();
        const round = await stampedeOn(`bench-stampede-${ctx.run}-${rounds}`);
        spent += Date.now() - t0;
        measured.push(round);
        floor.push(await floorOn(rounds));
        rounds++;
        ctx.progress(Math.min(1, spent / budget), `stampede ${rounds}`);
      } while (spent < budget);
      await Promise.all(children.map((c) => c.request('rawClose').catch(() => null)));
      await Promise.all(children.map((c) => c.request('close').catch(() => null)));

      return {
        metrics: { ...withFirst(summarize(measured), firstRound), ...floorFigures(floor), ...phaseFigures(p.phases ? measured : []), callers: p.nodes * p.callers },
      };
    } finally {
      await killAll(children);
    }
  },
  charts: (r) => [
    {
      title: `stampede: many callers of a cold value${r.params.backend === 'redis' ? ' (on Redis)' : ''}`,
      panels: [
        panel('caller latency', 'ms', [
          ['one fetch', r.metrics.fetchMs, 'floor'],
          ...(r.metrics.floorCallerP50Ms === undefined
            ? []
            : ([
                ['caller p50 (floor: a fetcher chosen beforehand, one raw push)', r.metrics.floorCallerP50Ms, 'floor'],
                ['caller p99 (floor)', r.metrics.floorCallerP99Ms, 'floor'],
              ] as [string, number | undefined, 'floor'][])),
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
    const onRedis = result.params.backend === 'redis';
    const peers = Object.entries(result.compare);
    const sections: TableSection[] = [
      {
        title:
          `${result.params.nodes} ${onRedis ? 'processes' : 'nodes'} x ${result.params.callers} callers on a cold expirable, fetch ${result.params.fetchMs} ms` +
          (onRedis ? ', the store on Redis (redisBackend)' : ''),
        headers: ['figure', 'value'],
        rows: [
          ['fetches per stampede (max over stampedes; must be 1)', fmt(m.fetches)],
          ['callers per stampede', fmt(m.callers)],
          ['stampedes per run', fmt(m.stampedes)],
          ['fetch time (ms)', fmt(m.fetchMs)],
          ['caller p50 (ms)', `${fmt(m.callerP50Ms)} (${fmt(m.callerP50OverFetch)}x the fetch)`],
          ['caller p99 (ms)', `${fmt(m.callerP99Ms)} (${fmt(m.callerP99OverFetch)}x the fetch)`],
          ['caller max (ms)', fmt(m.callerMaxMs)],
          ["median over the stampedes of each one's slowest caller (ms)", fmt(m.stampedeMaxP50Ms)],
          ...(m.floorCallerP50Ms === undefined
            ? []
            : [
                [
                  'floor (a fetcher chosen beforehand, one raw push to each process): caller p50 / p99 / median slowest (ms)',
                  `${fmt(m.floorCallerP50Ms)} / ${fmt(m.floorCallerP99Ms)} / ${fmt(m.floorStampedeMaxP50Ms)}`,
                ],
              ]),
          ['first stampede of the fresh processes, not in the figures above: caller p50 / p99 (ms)', `${fmt(m.firstCallerP50Ms)} / ${fmt(m.firstCallerP99Ms)}`],
          ['failed calls', fmt(m.failures)],
        ],
      },
    ];
    if (m.phaseLockP50Ms !== undefined) {
      const row = (what: string, k: string): string[] => [what, `${fmt(m[`phase${k}P50Ms`])} / ${fmt(m[`phase${k}P90Ms`])}`];
      sections.push({
        title: 'the steps of one stampede (--phases), ms: median / p90 over the stampedes',
        headers: ['step', 'ms'],
        rows: [
          row('start skew: the last node to start its callers, after the first', 'StartSkew'),
          row('the fetching node: its lock asked -> granted', 'Lock'),
          row('  granted -> fetch starts (its peers asked for a newer value)', 'Ask'),
          row('  the fetch (as the store timed it)', 'Fetch'),
          row('  fetch ends -> its callers answered', 'FetcherAnswered'),
          row('  fetch ends -> lock released', 'Release'),
          row('the other nodes: fetch ends -> the last one has the push', 'Push'),
          row('  fetch ends -> the last caller answered', 'Answered'),
          row('the first caller starts -> the fetch starts', 'BeforeFetch'),
        ],
      });
    }
    if (peers.length > 0) {
      sections.push({
        title: 'side by side, same Redis, same processes x callers, same fetch time, same run',
        headers: ['', 'fetches per stampede (max)', 'caller p50 (ms)', 'caller p99 (ms)', 'fetch (ms)', 'failed calls'],
        rows: [
          ['ours (redisBackend)', fmt(m.fetches), fmt(m.callerP50Ms), fmt(m.callerP99Ms), fmt(m.fetchMs), fmt(m.failures)],
          ...peers.map(([k, c]) => [k, fmt(c.fetches), fmt(c.callerP50Ms), fmt(c.callerP99Ms), fmt(c.fetchMs), fmt(c.failures)]),
        ],
      });
    }
    return sections;
  },
};

/** Fetches, caller latencies and fetch times of a set of stampedes. */
function summarize(rounds: readonly (readonly StampedePart[])[]): Record<string, number> {
  const parts = rounds.flat();
  const perRound = rounds.map((r) => r.reduce((a, x) => a + x.fetches, 0));
  const h = mergeHistograms(parts.map((x) => x.histogram));
  // The callers of one node are answered by one event (the push, or the end of the fetch): a
  // stampede's slowest caller is its slowest node, and the callers' p99 over a few stampedes
  // is about the slowest of them. The median of each stampede's slowest caller says what a
  // stampede's tail usually is.
  const slowest = rounds.map((r) => mergeHistograms(r.map((x) => x.histogram)).maxValue / 1000);
  const fetchMs = median(parts.flatMap((x) => x.fetchMs));
  const callerP50Ms = h.getValueAtPercentile(50) / 1000;
  const callerP99Ms = h.getValueAtPercentile(99) / 1000;
  return {
    fetches: Math.max(0, ...perRound),
    fetchMs,
    callerP50Ms,
    callerP99Ms,
    callerMaxMs: h.maxValue / 1000,
    callersMeasured: h.totalCount,
    stampedeMaxP50Ms: median(slowest),
    callerP50OverFetch: callerP50Ms / fetchMs,
    callerP99OverFetch: callerP99Ms / fetchMs,
    stampedes: perRound.length,
    fetchesTotal: perRound.reduce((a, x) => a + x, 0),
    failures: parts.reduce((a, x) => a + x.failures, 0),
  };
}

/**
 * The floor's caller latencies over its stampedes (`floorCallerP50Ms`, `floorCallerP99Ms`,
 * `floorStampedeMaxP50Ms`: the median of each one's slowest caller), and ours over it.
 */
function floorFigures(rounds: readonly (readonly { histogram: string }[])[]): Record<string, number> {
  const h = mergeHistograms(rounds.flat().map((x) => x.histogram));
  const slowest = rounds.map((r) => mergeHistograms(r.map((x) => x.histogram)).maxValue / 1000);
  return {
    floorCallerP50Ms: h.getValueAtPercentile(50) / 1000,
    floorCallerP99Ms: h.getValueAtPercentile(99) / 1000,
    floorStampedeMaxP50Ms: median(slowest),
    floorCallersMeasured: h.totalCount,
  };
}

/**
 * The figures of the stampedes measured, with the first stampede of the run's fresh processes
 * beside them (`firstCallerP50Ms`, `firstCallerP99Ms`): its fetches count in `fetches` (the
 * most of any stampede) and its failed calls in `failures`, its latencies in no percentile.
 */
function withFirst(measured: Record<string, number>, first: readonly StampedePart[]): Record<string, number> {
  const f = summarize([first]);
  return {
    ...measured,
    fetches: Math.max(measured.fetches!, f.fetches!),
    failures: measured.failures! + f.failures!,
    firstCallerP50Ms: f.callerP50Ms!,
    firstCallerP99Ms: f.callerP99Ms!,
  };
}

/**
 * `--phases`: the median and p90, over the stampedes of a run, of the time each step took
 * (phase<Step>P50Ms, phase<Step>P90Ms), from what every node recorded (see `Phases` in
 * ./peers/store-peer.ts); the node that ran the fetch is the fetcher. Empty without them.
 */
function phaseFigures(rounds: readonly (readonly StampedePart[])[]): Record<string, number> {
  const steps: Record<string, number[]> = {};
  const add = (step: string, ms: number): void => {
    if (Number.isFinite(ms)) (steps[step] ??= []).push(ms);
  };
  for (const round of rounds) {
    const f = round.find((x) => x.phases?.fetchStart !== undefined)?.phases;
    if (!f) continue;
    const others = round.map((x) => x.phases ?? {}).filter((x) => x !== f);
    const starts = round.map((x) => x.phases?.callerStart ?? NaN);
    const last = (k: 'pushed' | 'answered'): number => Math.max(...others.map((x) => x[k] ?? NaN));
    add('StartSkew', Math.max(...starts) - Math.min(...starts));
    add('Lock', f.lockGranted! - f.lockAsked!);
    add('Ask', f.fetchStart! - f.lockGranted!);
    add('Fetch', f.fetchEnd! - f.fetchStart!);
    add('FetcherAnswered', f.answered! - f.fetchEnd!);
    add('Release', f.lockReleased! - f.fetchEnd!);
    if (others.length > 0) {
      add('Push', last('pushed') - f.fetchEnd!);
      add('Answered', Math.max(last('answered'), f.answered!) - f.fetchEnd!);
    } else add('Answered', f.answered! - f.fetchEnd!);
    add('BeforeFetch', f.fetchStart! - Math.min(...starts));
  }
  const out: Record<string, number> = {};
  for (const [step, v] of Object.entries(steps)) {
    const sorted = [...v].sort((a, b) => a - b);
    out[`phase${step}P50Ms`] = median(sorted);
    out[`phase${step}P90Ms`] = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.9))]!;
  }
  return out;
}

/** True when bentocache can be loaded here (a dev dependency: absent from a production install). */
async function hasBentocache(): Promise<string | undefined> {
  try {
    await import('bentocache');
    await import('ioredis');
    return undefined;
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
}

/**
 * `--backend redis`: ours on redisBackend and, unless it cannot be loaded, bentocache, each
 * from `nodes` processes, rounds interleaved (ours, then bentocache, on fresh cold keys).
 */
async function runOnRedis(p: StampedeParams, url: string, ctx: RunContext): Promise<RunOutput> {
  let ours: BenchChild[] = [];
  let bento: BenchChild[] = [];
  const notes: string[] = [];
  try {
    ctx.progress(0, 'starting processes');
    const missing = await hasBentocache();
    if (missing !== undefined) {
      const line = `bentocache could not be loaded (${missing}): running ours alone (npm install --save-dev bentocache@1 ioredis)`;
      if (ctx.run === 0) ctx.log(`stampede: ${line}`);
      notes.push(line);
    }
    const prefix = `bench-stampede-${randomBytes(6).toString('hex')}`;
    ours = await startChildren(PEER, p.nodes);
    if (missing === undefined) {
      bento = await startChildren(BENTO_PEER, p.nodes);
      await Promise.all(bento.map((c) => c.request('setup', { url, prefix: `${prefix}-bento` })));
    }
    // A first store in each process loads the Redis client and connects (seconds on a loaded
    // machine): done once here, so the rounds below measure stampedes, not start-up.
    const warm = `${prefix}-${ctx.run}-warm`;
    await Promise.all(ours.map((c) => c.request('define', { namespace: warm, fetchMs: 0, ttlMs: 3_600_000, redisUrl: url })));
    await Promise.all(ours.map((c) => c.request('closeStore', { namespace: warm })));
    const oursOn = async (namespace: string): Promise<StampedePart[]> => {
      await Promise.all(ours.map((c) => c.request('define', { namespace, fetchMs: p.fetchMs, ttlMs: 3_600_000, redisUrl: url })));
      const startAt = String(process.hrtime.bigint() + 100_000_000n);
      const a = await Promise.all(ours.map((c) => c.request<StampedePart>('stampede', { namespace, callers: p.callers, startAt })));
      await Promise.all(ours.map((c) => c.request('closeStore', { namespace })));
      return a;
    };
    const bentoOn = (namespace: string): Promise<StampedePart[]> => {
      const startAt = String(process.hrtime.bigint() + 100_000_000n);
      return Promise.all(bento.map((c) => c.request<StampedePart>('stampede', { key: `${namespace}-token`, callers: p.callers, startAt, fetchMs: p.fetchMs })));
    };
    // The first stampede of each side's fresh processes, apart (see the head of this file).
    const oursFirst = await oursOn(`${prefix}-${ctx.run}-first`);
    const bentoFirst = bento.length > 0 ? await bentoOn(`${prefix}-${ctx.run}-first`) : [];
    const oursRounds: StampedePart[][] = [];
    const bentoRounds: StampedePart[][] = [];
    const started = Date.now();
    const budget = ctx.common.durationS * 1000;
    let round = 0;
    do {
      const namespace = `${prefix}-${ctx.run}-${round}`;
      oursRounds.push(await oursOn(namespace));
      if (bento.length > 0) bentoRounds.push(await bentoOn(namespace));
      round++;
      ctx.progress(Math.min(1, (Date.now() - started) / budget), `stampede ${round}`);
    } while (Date.now() - started < budget);
    await Promise.all([...ours, ...bento].map((c) => c.request('close').catch(() => null)));
    const metrics = { ...withFirst(summarize(oursRounds), oursFirst), callers: p.nodes * p.callers };
    const fetchesOf = (rounds: StampedePart[][]): string => rounds.map((r) => r.reduce((n, x) => n + x.fetches, 0)).join(' ');
    notes.push(`Redis ${p.redis ? `at ${p.redis}` : 'started for the run'}; ours: redisBackend, one store per process; fetches per stampede (last run): [${fetchesOf(oursRounds)}]`);
    if (bento.length > 0) {
      notes.push(`bentocache: memory L1 + Redis L2 + Redis bus, getOrSet per caller; fetches per stampede (last run): [${fetchesOf(bentoRounds)}]`);
      return { metrics, compare: { bentocache: withFirst(summarize(bentoRounds), bentoFirst) }, notes };
    }
    return { metrics, notes };
  } finally {
    await killAll([...ours, ...bento]);
  }
}

export default stampede;
