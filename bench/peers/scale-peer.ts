// A node process of the scale benchmark (forked by bench/scale.ts with `--expose-gc`, driven
// over IPC): a cluster node with one store per namespace holding three keyed cluster
// expirables with a cheap local fetch (no I/O): `key` (the K keys every node comes to hold),
// `cold` (keys one node holds and another then reads for the first time) and `rep` (one key
// refreshed on expiry, for the replication figure). Times compared across processes are
// wall-clock microseconds, `performance.timeOrigin + performance.now()` (one host, one clock).
import diagnostics_channel from 'node:diagnostics_channel';
import { defineExpirables, expirable, ok, startNode, type Node, type NodeOptions } from '../../src/index.js';
import { emit, serve } from '../lib/child.js';
import { untilPeers } from '../lib/node-handlers.js';
import { echoHandlers } from '../lib/echo-handlers.js';
import { encodeHistogram, newHistogram } from '../lib/stats.js';

const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const HOUR = 3_600_000;
let node: Node | undefined;

type Result = { ok: boolean; error?: unknown };
interface Store {
  key(k: string): Promise<Result>;
  cold(k: string): Promise<Result>;
  rep(k: string): Promise<Result>;
  stats(): Record<string, { fetches: number; hits: number; misses: number }>;
  clear(): Promise<void>;
}
const stores = new Map<string, Store>();
/** Per namespace, per version of `rep`: when this node fetched it / took it from a peer (µs). */
const fetched = new Map<string, Record<string, number>>();
const replicated = new Map<string, Record<string, number>>();
const versionKey = (v: unknown): string => (typeof v === 'bigint' ? `${v}n` : JSON.stringify(v));

diagnostics_channel.subscribe('expirable-store:replicate', (m) => {
  const e = m as { namespace: string; name: string; version: unknown };
  if (e.name !== 'rep') return;
  const r = replicated.get(e.namespace);
  if (r) r[versionKey(e.version)] ??= nowUs();
});
diagnostics_channel.subscribe('expirable-store:fetch:end', (m) => {
  const e = m as { namespace: string; name: string; version: unknown };
  if (e.name !== 'rep') return;
  const r = fetched.get(e.namespace);
  if (r) r[versionKey(e.version)] = nowUs();
});

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('the scale peer needs --expose-gc');
  g();
  g();
}

/** Reads `keys` (k0..k{n-1}) starting at `offset`, `concurrency` reads in flight; the failures. */
async function readAll(read: (k: string) => Promise<Result>, n: number, offset: number, concurrency: number, phase: string): Promise<number> {
  let next = 0;
  let failures = 0;
  const step = Math.max(1, Math.floor(n / 20));
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      const r = await read(`k${(offset + i) % n}`);
      if (!r.ok) failures++;
      if (i % step === 0) emit('progress', { f: i / n, phase });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return failures;
}

serve({
  ...echoHandlers(() => node),
  async startNode(options: NodeOptions): Promise<{ name: string; address: string | undefined; startedAt: number }> {
    const startedAt = nowUs();
    node = await startNode(options);
    return { name: node.name, address: node.address, startedAt };
  },
  async waitPeers({ n }: { n: number }): Promise<number> {
    await untilPeers(node!, n);
    return nowUs();
  },
  /** `maxKeys` bounds the live keys of each expirable here (the default bound, 10,000, would evict). */
  define({ namespace, ttlMs, maxKeys }: { namespace: string; ttlMs: number; maxKeys: number }): null {
    let seq = 0;
    const E = defineExpirables(
      {
        key: expirable({ keyed: true, maxKeys, fetch: async (k: string) => ok(`value-of-${k}`, Date.now() + HOUR) }),
        cold: expirable({ keyed: true, maxKeys, fetch: async (k: string) => ok(`cold-${k}`, Date.now() + HOUR) }),
        rep: expirable({ keyed: true, fetch: async (k: string) => ok(`rep-${k}-${node!.name}-${++seq}`, Date.now() + ttlMs) }),
      },
      { node: node!, namespace },
    );
    stores.set(namespace, {
      key: (k) => E.key(k),
      cold: (k) => E.cold(k),
      rep: (k) => E.rep(k),
      stats: () => E.stats(),
      clear: () => E.clearAll(),
    });
    fetched.set(namespace, {});
    replicated.set(namespace, {});
    return null;
  },
  /** heapUsed after a forced full GC. */
  heap(): number {
    gc();
    return process.memoryUsage().heapUsed;
  },
  /** At the shared instant `startAt` (µs), reads every key of `key`; when it finished (µs). */
  async fill({ namespace, keys, offset, startAt, concurrency }: { namespace: string; keys: number; offset: number; startAt: number; concurrency: number }) {
    const s = stores.get(namespace)!;
    const wait = (startAt - nowUs()) / 1000;
    if (wait > 0) await sleep(wait);
    const failures = await readAll(s.key, keys, offset, concurrency, 'fill');
    return { endAt: nowUs(), failures };
  },
  /** Reads held keys in rotation for `durationMs`: mean ns per read. */
  async hitLoop({ namespace, keys, durationMs }: { namespace: string; keys: number; durationMs: number }): Promise<number> {
    const s = stores.get(namespace)!;
    const names = Array.from({ length: keys }, (_, i) => `k${i}`);
    const t0 = process.hrtime.bigint();
    const end = t0 + BigInt(Math.round(durationMs * 1e6));
    let n = 0;
    let t = t0;
    do {
      for (let i = 0; i < 1000; i++) await s.key(names[(n + i) % keys]!);
      n += 1000;
      t = process.hrtime.bigint();
    } while (t < end);
    return Number(t - t0) / n;
  },
  /** Reads `count` keys of `cold` (to hold them here). */
  async primeCold({ namespace, count }: { namespace: string; count: number }): Promise<number> {
    return readAll(stores.get(namespace)!.cold, count, 0, 16, 'cold keys');
  },
  /**
   * First reads, one at a time, of `count` keys of `cold` (`k0`, `k1`…, which another node
   * holds, or keys `${prefix}0`… that nobody holds): their latencies (µs, HDR).
   */
  async coldReads({ namespace, count, prefix = 'k' }: { namespace: string; count: number; prefix?: string }) {
    const s = stores.get(namespace)!;
    const h = newHistogram();
    let failures = 0;
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      const r = await s.cold(`${prefix}${i}`);
      h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
      if (!r.ok) failures++;
    }
    return { histogram: encodeHistogram(h), failures };
  },
  async repOnce({ namespace }: { namespace: string }): Promise<null> {
    const r = await stores.get(namespace)!.rep('r');
    if (!r.ok) throw new Error(`rep('r') failed: ${String(r.error)}`);
    return null;
  },
  /** Reads `rep('r')` each time it has expired, for `durationMs`. */
  async refreshLoop({ namespace, ttlMs, durationMs }: { namespace: string; ttlMs: number; durationMs: number }): Promise<null> {
    const s = stores.get(namespace)!;
    const end = Date.now() + durationMs;
    while (Date.now() < end) {
      await sleep(ttlMs + 5);
      const r = await s.rep('r');
      if (!r.ok) throw new Error(`rep('r') failed: ${String(r.error)}`);
    }
    return null;
  },
  times({ namespace }: { namespace: string }) {
    return { fetched: fetched.get(namespace) ?? {}, replicated: replicated.get(namespace) ?? {} };
  },
  /**
   * The joining node (after startNode and define): waits until it is connected to `peers`
   * nodes, then reads every key; when each ended (µs) and how many reads ran the fetch here.
   */
  async joinRead({ namespace, keys, peers, concurrency }: { namespace: string; keys: number; peers: number; concurrency: number }) {
    const n0 = node!;
    while (n0.nodes().length < peers) await new Promise<void>((r) => n0.once('nodeup', () => r()));
    const connectedAt = nowUs();
    const s = stores.get(namespace)!;
    const failures = await readAll(s.key, keys, 0, concurrency, 'join');
    return { connectedAt, endAt: nowUs(), failures, fetches: s.stats().key!.fetches };
  },
  stats({ namespace }: { namespace: string }) {
    return stores.get(namespace)!.stats();
  },
  async clear({ namespace }: { namespace: string }): Promise<null> {
    await stores.get(namespace)!.clear();
    return null;
  },
  async close(): Promise<null> {
    await node?.close();
    return null;
  },
});
