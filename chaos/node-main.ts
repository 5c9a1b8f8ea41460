// One node process of a chaos run, driven by the harness over the IPC channel (separate
// from the mesh, so a cut mesh link never cuts the harness off). It starts a node, runs the
// workload and reports each operation (start and end on Date.now()) to the harness as it
// begins and as it settles; its fetches go to the harness's upstream and its lock holders
// write to the harness's external store, both over IPC.
//
// Harness -> node: { rid, op: 'start' | 'pause' | 'resume' | 'health' | 'block' | 'slow' | 'close', ... }
//   each answered { rid, ok, value | error }; answers to this node's own requests: { id, value }.
// Node -> harness: { id, req: 'fetch' | 'write', ... }; { begin: seq, op } when an operation
//   starts, before it runs; { end: seq, op } when it settles (or is drained unsettled);
//   { entries: Entry[] } for views and health.
//
// Every message leaves at once, not in batches: a process killed with -9 loses only what
// its IPC channel had not yet written. The harness records an operation whose end never
// came as unsettled (end null) when the process is gone, so an operation that had begun
// before a kill is in the history even when it never finished: a `clear` that had started
// dropped values on every node, and a fetch after it is no double fetch.
import { defineExpirables, expirable, ok, startNode, type Node, type NodeOptions } from '../src/index.js';
import { faultHook } from '../src/mesh/fault-hook.js';
import type { Entry, Op, HealthEntry } from './history.js';
import { mulberry32 } from './prng.js';

/** The workload's knobs, chosen by the harness. */
export interface WorkloadConfig {
  /** Concurrent reader loops. */
  readers: number;
  /** Distinct keys of the keyed expirable. */
  keys: number;
  /** Lock resources. */
  resources: number;
  /** Probability that a reader's next operation is a clear. */
  clearRate: number;
  /** TTL of the lazy, eager and keyed values (ms). */
  ttl: { lazy: number; eager: number; keyed: number };
  beforeExpiry: number;
  fetchTimeout: number;
  /** `timeout` of each trans (ms). */
  lockTimeout: number;
  /** Seed of this process's own choices (not part of the fault schedule). */
  seed: number;
}

type Command =
  | { rid: number; op: 'start'; options: NodeOptions; workload: WorkloadConfig }
  | { rid: number; op: 'pause' }
  | { rid: number; op: 'resume' }
  | { rid: number; op: 'health'; phase: HealthEntry['phase'] }
  | { rid: number; op: 'block'; peers: string[] }
  | { rid: number; op: 'slow'; peers: string[]; ms: number }
  | { rid: number; op: 'close' };

const send = (msg: unknown): void => {
  if (process.connected) process.send!(msg);
};

// ---- requests to the harness (upstream, external store) ----

let nextId = 0;
const waiting = new Map<number, (v: unknown) => void>();

function ask<T>(req: Record<string, unknown>): Promise<T> {
  const id = ++nextId;
  return new Promise<T>((resolve) => {
    waiting.set(id, resolve as (v: unknown) => void);
    send({ id, ...req });
  });
}

// ---- the history ----

const record = (e: Entry): void => send({ entries: [e] });

/** Sequence numbers of the operations begun here, so the harness can pair begin and end. */
let nextSeq = 0;
const seqOf = new WeakMap<Op, number>();

/** Tells the harness an operation starts (before it runs: it may never end, see the header). */
function begin(op: Op): void {
  const seq = ++nextSeq;
  seqOf.set(op, seq);
  pending.add(op);
  send({ begin: seq, op });
}

/** The operation settled (or is drained unsettled, end null). */
function end(op: Op): void {
  send({ end: seqOf.get(op), op });
}

// ---- the workload ----

let node: Node | undefined;
let running = false;
/** Operations begun and not settled, for the drain. */
const pending = new Set<Op>();
let loops: Promise<void>[] = [];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const message = (err: unknown): string => (err instanceof Error ? `${err.name}: ${err.message}` : String(err));

function defineStore(n: Node, w: WorkloadConfig) {
  const upstream = async (name: string, key?: string) => {
    const r = await ask<{ version: number; expiresAt: number }>({ req: 'fetch', name, key });
    return ok({ version: r.version }, r.expiresAt);
  };
  return defineExpirables({
    lazyToken: expirable({ fetch: () => upstream('lazyToken'), fetchTimeout: w.fetchTimeout }),
    eagerToken: expirable({ fetch: () => upstream('eagerToken'), refresh: { eager: { beforeExpiry: w.beforeExpiry } }, fetchTimeout: w.fetchTimeout }),
    keyedToken: expirable({ keyed: true, fetch: (key: string) => upstream('keyedToken', key), fetchTimeout: w.fetchTimeout }),
  }, { node: n, namespace: 'chaos' });
}

type Store = ReturnType<typeof defineStore>;
const NAMES = ['lazyToken', 'eagerToken', 'keyedToken'] as const;

async function readerLoop(store: Store, w: WorkloadConfig, rnd: () => number, self: string): Promise<void> {
  while (running) {
    const x = rnd();
    if (x < w.clearRate) {
      const name = NAMES[Math.floor(rnd() * 3)]!;
      const op: Op = { type: 'op', op: 'clear', node: self, pid: process.pid, name, start: Date.now(), end: null, ok: false };
      begin(op);
      try {
        await store.clear(name);
        op.ok = true;
      } catch (err) {
        op.error = message(err);
      }
      op.end = Date.now();
      pending.delete(op);
      end(op);
    } else {
      const name = x < 0.4 ? 'lazyToken' : x < 0.7 ? 'eagerToken' : 'keyedToken';
      const key = name === 'keyedToken' ? `k${Math.floor(rnd() * w.keys)}` : undefined;
      const op: Op = { type: 'op', op: 'read', node: self, pid: process.pid, name, ...(key === undefined ? {} : { key }), start: Date.now(), end: null, ok: false };
      begin(op);
      try {
        const r = key === undefined ? await store.fetch(name as 'lazyToken') : await store.fetch('keyedToken', key);
        if (r.ok) {
          op.ok = true;
          op.version = (r.value as { version: number }).version;
          op.expiresAt = r.expiresAt;
        } else {
          op.error = `${r.error.reason}: ${r.error.message}`;
        }
      } catch (err) {
        op.error = message(err);
      }
      op.end = Date.now();
      pending.delete(op);
      end(op);
    }
    await sleep(10 + rnd() * 40);
  }
}

async function lockLoop(n: Node, w: WorkloadConfig, rnd: () => number, self: string): Promise<void> {
  while (running) {
    const resource = `res-${Math.floor(rnd() * w.resources)}`;
    const op: Op = { type: 'op', op: 'trans', node: self, pid: process.pid, resource, start: Date.now(), end: null, ok: false };
    begin(op);
    try {
      await n.global.trans(resource, async (lock) => {
        const grantedAt = Date.now();
        op.acquiredAt = grantedAt;
        op.token = lock.token;
        await ask({ req: 'write', resource, token: lock.token, grantedAt });
        await sleep(10 + rnd() * 60);
        await ask({ req: 'write', resource, token: lock.token, grantedAt });
        op.releasedAt = Date.now();
      }, { timeout: w.lockTimeout });
      op.ok = true;
    } catch (err) {
      op.error = message(err);
      if (op.acquiredAt !== undefined) op.releasedAt ??= Date.now();
    }
    op.end = Date.now();
    pending.delete(op);
    end(op);
    await sleep(20 + rnd() * 100);
  }
}

let store: Store | undefined;
let workload: WorkloadConfig | undefined;

function startLoops(): void {
  if (running || !node || !store || !workload) return;
  running = true;
  const rnd = mulberry32(workload.seed ^ process.pid);
  loops = [
    ...Array.from({ length: workload.readers }, () => readerLoop(store!, workload!, rnd, node!.name)),
    lockLoop(node, workload, rnd, node.name),
  ];
}

/** Stops issuing operations and waits for those in flight, at most `cap` ms; the rest are recorded as pending (end null). */
async function pause(cap: number): Promise<number> {
  running = false;
  await Promise.race([Promise.all(loops), sleep(cap)]);
  const left = [...pending];
  for (const op of left) end(op);
  pending.clear();
  return left.length;
}

function health(phase: HealthEntry['phase']): HealthEntry {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const handles: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) handles[kind] = (handles[kind] ?? 0) + 1;
  return { type: 'health', t: Date.now(), node: node?.name ?? '?', pid: process.pid, phase, heapUsed: process.memoryUsage().heapUsed, handles };
}

async function handle(cmd: Command): Promise<unknown> {
  switch (cmd.op) {
    case 'start': {
      node = await startNode(cmd.options);
      const self = node.name;
      const view = (): void => record({ type: 'view', t: Date.now(), node: self, pid: process.pid, nodes: node!.nodes() });
      view();
      node.on('nodeup', view);
      node.on('nodedown', view);
      workload = cmd.workload;
      store = defineStore(node, cmd.workload);
      startLoops();
      return { name: self, address: node.address, nodes: node.nodes(), pid: process.pid };
    }
    case 'pause':
      return pause(15_000);
    case 'resume':
      startLoops();
      return null;
    case 'health': {
      const h = health(cmd.phase);
      record(h);
      return h;
    }
    case 'block':
      if (!faultHook) throw new Error('the fault hook is off (EXPIRABLE_STORE_FAULT_HOOK=1)');
      faultHook.block(cmd.peers);
      return null;
    case 'slow':
      if (!faultHook) throw new Error('the fault hook is off (EXPIRABLE_STORE_FAULT_HOOK=1)');
      faultHook.slow(cmd.peers, cmd.ms);
      return null;
    case 'close':
      await pause(5_000);
      await store?.close();
      await node?.close();
      setTimeout(() => process.exit(0), 50);
      return null;
  }
}

process.on('message', (msg: Command | { id: number; value: unknown }) => {
  if ('id' in msg) {
    const resolve = waiting.get(msg.id);
    waiting.delete(msg.id);
    resolve?.(msg.value);
    return;
  }
  handle(msg).then(
    (value) => send({ rid: msg.rid, ok: true, value }),
    (err) => send({ rid: msg.rid, ok: false, error: message(err) }),
  );
});
// Never outlive the harness.
process.on('disconnect', () => process.exit(0));
send({ ready: true });
