// A node process of the stampede and replication benchmarks (forked by bench/stampede.ts and
// bench/replication.ts, driven over IPC): a cluster node with a store of one cluster-scope
// expirable per namespace, whose fetch stands in for a token server (it sleeps `fetchMs`).
// The store coordinates over the mesh, or over one Redis (`redisUrl`, `--backend redis`).
// Times that are compared across processes are read from `process.hrtime`, i.e. Linux's
// CLOCK_MONOTONIC, which every process of one machine shares; on Redis, replication times
// are wall-clock µs (`performance.timeOrigin + performance.now()`, one clock per host),
// matched by value (a replica's version is the one Redis stored, which is the fetcher's only
// as long as Redis keeps the version the writer proposed).
import diagnostics_channel from 'node:diagnostics_channel';
import { defineExpirables, expirable, ok, redisBackend, type Node } from '../../src/index.js';
import { serve } from '../lib/child.js';
import { nodeHandlers } from '../lib/node-handlers.js';
import { echoHandlers } from '../lib/echo-handlers.js';
import { redisPingPong } from '../lib/redis-ping.js';
import { idleLoop } from '../lib/raw.js';
import { rawPushHandlers, untilInstant } from '../lib/raw-push.js';
import { encodeHistogram, newHistogram } from '../lib/stats.js';
import type { ActorRefData } from '../../src/actors/ref.js';

let node: Node | undefined;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = process.hrtime.bigint;

interface Store {
  token(): Promise<{ ok: boolean; value?: unknown; error?: unknown }>;
  /** Fetches run on this node. */
  fetches: number;
  /** Durations of those fetches, ms. */
  fetchMs: number[];
  /** Closes the store (on Redis: its connections). */
  close(): Promise<void>;
}
const stores = new Map<string, Store>();

/** Wall-clock µs, one clock for every process of the host. */
const wallUs = (): number => (performance.timeOrigin + performance.now()) * 1000;
/** On Redis, per namespace: value -> wall µs at the end of its fetch here / when it was readable here. */
const fetchedAt = new Map<string, Record<string, number>>();
const readableAt = new Map<string, Record<string, number>>();

/** hrtime (ns, as strings) at which a value of `version` arrived here / was fetched here, per namespace. */
const replicated = new Map<string, Record<string, string>>();
const fetched = new Map<string, Record<string, string>>();
/** A version (fencing token) as a map key. */
const versionKey = (v: unknown): string => (typeof v === 'bigint' ? `${v}n` : JSON.stringify(v));

diagnostics_channel.subscribe('expirable-store:replicate', (m) => {
  const e = m as { namespace: string; version: unknown };
  const r = replicated.get(e.namespace);
  if (r) r[versionKey(e.version)] ??= String(now());
  // On Redis: the new value is readable here when a call answers it (a hit, no Redis).
  const readable = readableAt.get(e.namespace);
  const s = stores.get(e.namespace);
  if (readable && s) {
    void s.token().then((res) => {
      if (res.ok) readable[String(res.value)] ??= wallUs();
    });
  }
});
diagnostics_channel.subscribe('expirable-store:fetch:end', (m) => {
  const e = m as { namespace: string; version: unknown };
  const r = fetched.get(e.namespace);
  if (r) r[versionKey(e.version)] = String(now());
});

/**
 * `--phases`: when the steps of one stampede happened on this node, ms after its `startAt`
 * (the monotonic clock every process of the host shares), from the store's and the lock
 * service's diagnostics channels. Recorded only while a stampede asked for them runs.
 */
interface Phases {
  /** The first caller started / the last one was answered. */
  callerStart?: number;
  answered?: number;
  /** This node's refresh asked for the entry's lock / was granted it / released it. */
  lockAsked?: number;
  lockGranted?: number;
  lockReleased?: number;
  /** The fetch ran here (the node granted the lock first). */
  fetchStart?: number;
  fetchEnd?: number;
  /** The value pushed by the node that fetched arrived here. */
  pushed?: number;
}
let timing: { namespace: string; resource: string; at: bigint; phases: Phases } | undefined;
const PHASE_CHANNELS: [string, keyof Phases][] = [
  ['expirable-store:lock:acquire', 'lockAsked'],
  ['expirable-store:lock:grant', 'lockGranted'],
  ['expirable-store:lock:release', 'lockReleased'],
  ['expirable-store:fetch:start', 'fetchStart'],
  ['expirable-store:fetch:end', 'fetchEnd'],
  ['expirable-store:replicate', 'pushed'],
];
let phaseChannels = false;
/** Subscribes to the channels of PHASE_CHANNELS once (a store builds its events only when someone listens). */
function listenToPhases(): void {
  if (phaseChannels) return;
  phaseChannels = true;
  for (const [name, phase] of PHASE_CHANNELS) {
    diagnostics_channel.subscribe(name, (m) => {
      const t = timing;
      if (!t) return;
      // Store events name their namespace; lock events their resource (the entry's lock).
      const e = m as { namespace?: string; resource?: unknown; how?: string };
      if (e.namespace !== undefined ? e.namespace !== t.namespace : e.resource !== t.resource) return;
      if (phase === 'pushed' && e.how !== 'push') return;
      t.phases[phase] ??= Number(now() - t.at) / 1e6;
    });
  }
}

serve({
  ...nodeHandlers(
    (n) => (node = n),
    () => node,
  ),
  /**
   * Defines the store `namespace` with one expirable `token` (fetch sleeps fetchMs, lives ttlMs),
   * on the mesh, or on Redis with `redisUrl` (then a second expirable, `warm`, is read once so
   * the backend's connections are open before anything is measured). With `wallTimes`, the
   * wall-clock times of `wallTimes()` are kept (replication on Redis).
   */
  async define({
    namespace,
    fetchMs,
    ttlMs,
    redisUrl,
    wallTimes,
  }: {
    namespace: string;
    fetchMs: number;
    ttlMs: number;
    redisUrl?: string;
    wallTimes?: boolean;
  }): Promise<null> {
    let seq = 0;
    const s: Store = { token: async () => ({ ok: false }), fetches: 0, fetchMs: [], close: async () => {} };
    const onRedis = redisUrl !== undefined && redisUrl !== '';
    const E = defineExpirables(
      {
        token: expirable({
          fetch: async () => {
            s.fetches++;
            const t0 = now();
            if (fetchMs > 0) await sleep(fetchMs);
            s.fetchMs.push(Number(now() - t0) / 1e6);
            const value = `token-${node?.name ?? process.pid}-${++seq}`;
            const at = fetchedAt.get(namespace);
            if (at) at[value] = wallUs();
            return ok(value, Date.now() + ttlMs);
          },
        }),
        warm: expirable({ fetch: async () => ok(true, Infinity) }),
      },
      onRedis
        ? { namespace, ...(node ? { node } : {}), backend: redisBackend({ url: redisUrl, name: `${node?.name ?? 'bench'}-${process.pid}` }) }
        : { node: node!, namespace },
    );
    s.token = () => E.token();
    if (onRedis) s.close = () => E.close(); // mesh stores end with their node, as before
    if (onRedis) {
      const w = await E.warm();
      if (!w.ok) throw new Error(`warm() failed: ${String(w.error)}`);
    }
    if (wallTimes) {
      fetchedAt.set(namespace, {});
      readableAt.set(namespace, {});
    }
    stores.set(namespace, s);
    replicated.set(namespace, {});
    fetched.set(namespace, {});
    return null;
  },
  /** Closes the store `namespace` (on Redis: its connections) and forgets it. */
  async closeStore({ namespace }: { namespace: string }): Promise<null> {
    const s = stores.get(namespace);
    stores.delete(namespace);
    for (const m of [replicated, fetched, fetchedAt, readableAt]) m.delete(namespace);
    await s?.close();
    return null;
  },
  /**
   * `callers` concurrent calls of `token()`, all started at the shared monotonic instant
   * `startAt` (ns): caller latencies (µs, HDR), fetches run here and their durations; with
   * `phases`, when each step happened here (see Phases).
   */
  async stampede({ namespace, callers, startAt, phases }: { namespace: string; callers: number; startAt: string; phases?: boolean }) {
    const s = stores.get(namespace)!;
    const at = BigInt(startAt);
    const t: Phases = {};
    if (phases) {
      listenToPhases();
      timing = { namespace, resource: `expirable-store/${namespace}/token/`, at, phases: t };
    }
    await untilInstant(at);
    const h = newHistogram();
    let failures = 0;
    await Promise.all(
      Array.from({ length: callers }, async () => {
        const t0 = now();
        if (phases) t.callerStart ??= Number(t0 - at) / 1e6;
        const r = await s.token();
        const t1 = now();
        h.recordValue(Math.max(1, Math.round(Number(t1 - t0) / 1000)));
        if (!r.ok) failures++;
        if (phases) t.answered = Number(t1 - at) / 1e6;
      }),
    );
    timing = undefined;
    return { histogram: encodeHistogram(h), fetches: s.fetches, fetchMs: s.fetchMs, failures, ...(phases ? { phases: t } : {}) };
  },
  /** One call of `token()` (to take a replica). */
  async call({ namespace }: { namespace: string }) {
    const r = await stores.get(namespace)!.token();
    if (!r.ok) throw new Error(`token() failed: ${String(r.error)}`);
    return null;
  },
  /** Refreshes by calling `token()` each time the value has expired, for `durationMs`. */
  async refreshLoop({ namespace, ttlMs, durationMs }: { namespace: string; ttlMs: number; durationMs: number }) {
    const s = stores.get(namespace)!;
    const end = Date.now() + durationMs;
    while (Date.now() < end) {
      await sleep(ttlMs + 5);
      const r = await s.token();
      if (!r.ok) throw new Error(`token() failed: ${String(r.error)}`);
    }
    return { fetches: s.fetches };
  },
  /** hrtime (ns) per version: when this node fetched it, and when it took it from a peer. */
  times({ namespace }: { namespace: string }) {
    return { fetched: fetched.get(namespace) ?? {}, replicated: replicated.get(namespace) ?? {} };
  },
  /** On Redis: wall µs per value: the end of its fetch here, and when a call here first answered it. */
  wallTimes({ namespace }: { namespace: string }) {
    return { fetched: fetchedAt.get(namespace) ?? {}, readable: readableAt.get(namespace) ?? {} };
  },
  /** Raw `PING` round trips to Redis (no client library), the Redis floor; with `gapMs`, one PING every `gapMs` (both ends idle between). */
  redisPing({ url, durationMs, gapMs }: { url: string; durationMs: number; gapMs?: number }) {
    return redisPingPong(url, durationMs, 200, gapMs ?? 0);
  },
  ...echoHandlers(() => node),
  ...rawPushHandlers,
  /**
   * One call of `ref` every `gapMs` for `durationMs`, both ends idle in between (as a replica
   * is between two refreshes): round trips, ns (HDR), the first one left out.
   */
  idleCallLoop({ ref, gapMs, durationMs }: { ref: ActorRefData; gapMs: number; durationMs: number }) {
    const r = node!.ref(ref);
    return idleLoop(() => r.call({ add: 2 }), durationMs, gapMs);
  },
  async close(): Promise<null> {
    for (const s of stores.values()) await s.close().catch(() => undefined);
    stores.clear();
    await node?.close();
    return null;
  },
});
