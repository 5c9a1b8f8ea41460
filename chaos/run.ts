// One chaos run: starts the node processes, runs the workload, plays the nemesis schedule,
// collects the history, and checks it.
//
// Sequence: network setup -> nodes started one by one (each seeded with the addresses of
// those before it) -> full mesh -> warm-up -> baseline (workload paused, GC, heap and
// handles) -> faults, one at a time, each followed by a quiet gap -> full mesh again ->
// final measure -> nodes closed -> network removed -> checkers.
//
// The upstream (a version counter per expirable and key) and the external store (a fenced
// register per lock resource) live here and are reached over each process's IPC channel,
// which no network fault touches; they record every fetch and write in the history.
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CheckConfig, Entry, FaultEntry, FaultKind, ProcEntry, ViewEntry, WriteEntry } from './history.js';
import { makeSchedule, type PlannedFault } from './schedule.js';
import { NetnsNetwork, netnsUnavailable, removeLeftovers } from './netns.js';
import { NodeProc } from './procs.js';
import type { WorkloadConfig } from './node-main.js';
import { FAULT_HOOK_ENV } from '../src/mesh/fault-hook.js';

export interface RunOptions {
  nodes: number;
  durationS: number;
  seed: number;
  faults: FaultKind[];
  /** 'auto': netns where possible, else hook. */
  mode: 'auto' | 'netns' | 'hook';
  historyPath: string;
  /** Print heap per node every this many ms (soak); 0: never. */
  sampleEveryMs: number;
  log: (line: string) => void;
}

export interface RunOutcome {
  mode: 'netns' | 'hook';
  /** How slow links were made. */
  slowMode: 'netem' | 'hook';
  /** Why netns mode was not used, when it was not. */
  fallbackReason?: string;
  entries: Entry[];
  config: CheckConfig;
  faultsDone: Record<FaultKind, number>;
  startedAt: number;
  endedAt: number;
  /** Heap samples per minute (soak): per sample, node -> heapUsed. */
  samples: { t: number; heap: Record<string, number> }[];
}

export const TIMING = { heartbeatInterval: 200, failureTimeout: 1000, callTimeout: 2000 };

export const WORKLOAD: Omit<WorkloadConfig, 'seed'> = {
  readers: 3,
  keys: 200,
  resources: 3,
  clearRate: 0.01,
  ttl: { lazy: 1500, eager: 3000, keyed: 4000 },
  beforeExpiry: 1000,
  fetchTimeout: 5000,
  lockTimeout: 3000,
};

export function checkConfig(): CheckConfig {
  const { failureTimeout: ft, callTimeout: ct, heartbeatInterval: hb } = TIMING;
  return {
    heartbeatInterval: hb,
    failureTimeout: ft,
    settleMs: 3000,
    bounds: {
      read: WORKLOAD.fetchTimeout + ct + 3 * ft + 2000,
      clear: ct + 3 * ft + 2000,
      trans: WORKLOAD.lockTimeout + 200 + ct + 3 * ft + 2000,
    },
    eager: { eagerToken: WORKLOAD.beforeExpiry },
    heapLimitBytes: 32 << 20,
    convergeHeartbeats: 5,
  };
}

const COOKIE = 'chaos-cookie';
const WARMUP_MS = 3000;
const MIN_GAP_MS = 4000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runChaos(o: RunOptions): Promise<RunOutcome> {
  const log = o.log;
  const reason = o.mode === 'hook' ? 'hook mode asked for' : netnsUnavailable();
  if (o.mode === 'netns' && reason !== undefined) throw new Error(`netns mode is not possible here: ${reason}`);
  const mode: 'netns' | 'hook' = reason === undefined ? 'netns' : 'hook';
  let net: NetnsNetwork | undefined;
  if (mode === 'netns') {
    const cleaned = removeLeftovers();
    if (cleaned > 0) log(`removed the network leftovers of ${cleaned} dead run(s)`);
    net = new NetnsNetwork(o.nodes);
  }
  const slowMode: 'netem' | 'hook' = 'hook';
  const names = Array.from({ length: o.nodes }, (_, i) => `n${i}`);
  mkdirSync(dirname(o.historyPath), { recursive: true });
  const out = createWriteStream(o.historyPath);
  const entries: Entry[] = [];
  const push = (e: Entry): void => {
    entries.push(e);
    out.write(`${JSON.stringify(e)}\n`);
  };

  // ---- upstream and external store ----
  const versions = new Map<string, number>();
  const ttlOf = (name: string): number => (name === 'lazyToken' ? WORKLOAD.ttl.lazy : name === 'eagerToken' ? WORKLOAD.ttl.eager : WORKLOAD.ttl.keyed);
  const registers = new Map<string, WriteEntry>();
  const handlers = {
    onEntries: (batch: Entry[]) => {
      for (const e of batch) {
        push(e);
        if (e.type === 'view') onView(e);
      }
    },
    onFetch: (node: string, name: string, key: string | undefined) => {
      const k = `${name}\u0000${key ?? ''}`;
      const version = (versions.get(k) ?? 0) + 1;
      versions.set(k, version);
      const t = Date.now();
      const expiresAt = t + ttlOf(name);
      push({ type: 'fetch', t, node, name, ...(key === undefined ? {} : { key }), version, expiresAt });
      return { version, expiresAt };
    },
    onWrite: (node: string, pid: number, resource: string, token: number, grantedAt: number) => {
      const best = registers.get(resource);
      const same = best !== undefined && best.node === node && best.pid === pid && best.grantedAt === grantedAt;
      const accepted = best === undefined || token > best.token || (token === best.token && same);
      const w: WriteEntry = { type: 'write', t: Date.now(), node, pid, resource, token, grantedAt, accepted };
      if (accepted) registers.set(resource, w);
      push(w);
      return accepted;
    },
  };

  // ---- processes ----
  const procs: (NodeProc | undefined)[] = names.map(() => undefined);
  const lifecycles = new Map<number, ProcEntry>();
  const views = new Map<string, ViewEntry>();
  /** The newest process spawned under each name (its first view can come before its start is answered). */
  const newest = new Map<string, number>();
  const onView = (v: ViewEntry): void => {
    if (newest.get(v.node) === v.pid) views.set(v.node, v);
  };
  const env: Record<string, string> = { [FAULT_HOOK_ENV]: '1' };
  const seeds = (i: number): string[] => procs.flatMap((p, j) => (j !== i && p && !p.gone && p.address ? [p.address] : []));

  async function startProc(i: number): Promise<NodeProc> {
    const wrap = (argv: string[]): string[] => (net ? net.wrap(i, argv) : argv);
    const p = new NodeProc(names[i]!, wrap, env, handlers);
    newest.set(names[i]!, p.pid);
    await p.ready;
    const r = await p.request<{ address: string }>('start', {
      options: {
        name: names[i],
        host: net ? net.host(i) : '127.0.0.1',
        port: 0,
        seeds: seeds(i),
        cookie: COOKIE,
        ...TIMING,
      },
      workload: { ...WORKLOAD, seed: o.seed + i },
    });
    p.address = r.address;
    procs[i] = p;
    lifecycles.set(p.pid, { type: 'proc', node: names[i]!, pid: p.pid, up: Date.now(), down: null });
    void p.exited.then(() => {
      const l = lifecycles.get(p.pid)!;
      l.down ??= Date.now();
    });
    return p;
  }

  const current = (): NodeProc[] => procs.filter((p): p is NodeProc => p !== undefined && !p.gone);

  /** Resolves once every live process sees every other; false on timeout. */
  async function fullMesh(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const live = current();
      const ok = live.every((p) => {
        const v = views.get(p.name);
        return v?.pid === p.pid && [...v.nodes].sort().join(',') === live.filter((q) => q !== p).map((q) => q.name).sort().join(',');
      });
      if (ok && live.length === o.nodes) return true;
      await sleep(100);
    }
    return false;
  }

  async function measure(ps: NodeProc[], phase: 'baseline' | 'final'): Promise<void> {
    await Promise.all(ps.map((p) => p.request('pause', {}, 30_000)));
    await Promise.all(ps.map((p) => p.request('health', { phase })));
    if (phase === 'baseline') await Promise.all(ps.map((p) => p.request('resume')));
  }

  // Hook mode (and slow links without netem): tell every live process what to drop or delay.
  async function hookCut(pairs: [string, string][]): Promise<void> {
    await Promise.all(current().map((p) => {
      const peers = pairs.flatMap(([a, b]) => (a === p.name ? [b] : b === p.name ? [a] : []));
      return p.request('block', { peers });
    }));
  }
  async function hookSlow(node: string | undefined, ms: number): Promise<void> {
    await Promise.all(current().map((p) => {
      const peers = node === undefined ? [] : p.name === node ? names.filter((n) => n !== node) : [node];
      return p.request('slow', { peers, ms });
    }));
  }

  const faultsDone: Record<FaultKind, number> = { kill: 0, stop: 0, partition: 0, restart: 0, slow: 0 };
  const samples: RunOutcome['samples'] = [];
  let sampler: NodeJS.Timeout | undefined;
  const startedAt = Date.now();
  const interrupted = (): void => {
    net?.teardown();
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    net?.setup();
    log(`mode ${mode}${reason && mode === 'hook' ? ` (${reason})` : ''}; slow links: ${net?.netem ? 'tc netem' : 'fault hook'}`);
    for (let i = 0; i < o.nodes; i++) await startProc(i);
    if (!(await fullMesh(30_000))) throw new Error('the nodes did not form a full mesh in 30 s');
    await sleep(WARMUP_MS);
    await measure(current(), 'baseline');
    if (o.sampleEveryMs > 0) {
      sampler = setInterval(() => {
        const live = current();
        void Promise.allSettled(live.map((p) => p.request<{ heapUsed: number }>('health', { phase: 'sample' }, 10_000))).then((rs) => {
          const heap: Record<string, number> = {};
          rs.forEach((r, k) => {
            if (r.status === 'fulfilled') heap[live[k]!.name] = r.value.heapUsed;
          });
          samples.push({ t: Date.now(), heap });
          log(`heap at ${Math.round((Date.now() - startedAt) / 60_000)} min: ${Object.entries(heap).map(([n, b]) => `${n} ${(b / 1048576).toFixed(1)} MB`).join(', ')}`);
        });
      }, o.sampleEveryMs);
    }

    const schedule = makeSchedule({ seed: o.seed, nodes: names, durationMs: o.durationS * 1000, kinds: o.faults, minGapMs: MIN_GAP_MS });
    for (const f of schedule) {
      const fresh = await applyFault(f);
      faultsDone[f.kind]++;
      await sleep(f.gapMs);
      const ready = fresh.filter((p) => !p.gone);
      if (ready.length > 0) await measure(ready, 'baseline');
    }
    if (!(await fullMesh(20_000))) log('warning: no full mesh 20 s after the last heal');
    await measure(current(), 'final');
  } finally {
    clearInterval(sampler);
    await Promise.all(current().map(async (p) => {
      try {
        await p.request('close', {}, 20_000);
        await Promise.race([p.exited, sleep(3000)]);
      } catch {
        // killed below
      }
      await p.kill();
    }));
    net?.teardown();
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    for (const l of lifecycles.values()) push(l);
    await new Promise<void>((r) => out.end(r));
  }
  return { mode, slowMode: net?.netem ? 'netem' : slowMode, ...(mode === 'hook' ? { fallbackReason: reason } : {}), entries, config: checkConfig(), faultsDone, startedAt, endedAt: Date.now(), samples };

  // Applies one fault and heals it; returns the processes it started.
  async function applyFault(f: PlannedFault): Promise<NodeProc[]> {
    const start = Date.now();
    const i = names.indexOf(f.nodes[0]!);
    const fresh: NodeProc[] = [];
    const entry: FaultEntry = { type: 'fault', kind: f.kind, start, end: start, nodes: f.nodes };
    switch (f.kind) {
      case 'kill': {
        log(`kill -9 ${f.nodes[0]}, back in ${f.holdMs} ms`);
        await procs[i]!.kill();
        await sleep(f.holdMs);
        fresh.push(await startProc(i));
        break;
      }
      case 'stop': {
        log(`SIGSTOP ${f.nodes[0]} for ${f.holdMs} ms`);
        procs[i]!.signal('SIGSTOP');
        await sleep(f.holdMs);
        procs[i]!.signal('SIGCONT');
        break;
      }
      case 'restart': {
        log(`restart ${f.nodes[0]}: freeze it, start a new process under its name, kill -9 the old one`);
        const old = procs[i]!;
        old.signal('SIGSTOP');
        fresh.push(await startProc(i));
        await old.kill();
        break;
      }
      case 'partition': {
        entry.cut = f.cut!;
        entry.detail = f.shape!;
        log(`partition (${f.shape}) for ${f.holdMs} ms: cut ${f.cut!.map((c) => c.join('|')).join(' ')}`);
        if (net) net.cut(f.cut!.map(([a, b]) => [names.indexOf(a), names.indexOf(b)]));
        else await hookCut(f.cut!);
        await sleep(f.holdMs);
        if (net) net.heal();
        else await hookCut([]);
        break;
      }
      case 'slow': {
        entry.detail = `${f.delayMs} ms`;
        log(`slow link to ${f.nodes[0]} (+${f.delayMs} ms) for ${f.holdMs} ms`);
        if (net?.netem) net.slow(i, f.delayMs!);
        else await hookSlow(f.nodes[0], f.delayMs!);
        await sleep(f.holdMs);
        if (net?.netem) net.unslow(i);
        else await hookSlow(undefined, 0);
        break;
      }
    }
    entry.end = Date.now();
    push(entry);
    return fresh;
  }
}
