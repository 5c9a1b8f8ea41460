// Real node processes for integration tests, driven over IPC (separate from the mesh).
//
// Usage:
//   import { spawnPeer, startCluster } from './helpers/peers.js';
//
//   await using a = await spawnPeer();                  // a forked process, no node yet
//   const { name, address } = await a.start({ port: 0, cookie: 'c', heartbeatInterval: 100 });
//   await a.nodes();                                    // node.nodes() in the child
//   await a.run(FIXTURE, 'spawnCounter', 'arg');        // calls `spawnCounter(ctx, 'arg')` exported
//                                                       // by FIXTURE (absolute path or file URL)
//                                                       // inside the child; ctx = { node, state, emit }
//   await a.waitEvent('nodeup', (name) => name === 'b'); // node events and ctx.emit(type, ...) events
//                                                       // (peers connected during start are in a.initialNodes)
//   a.kill();  a.pause();  a.resume();                  // SIGKILL, SIGSTOP, SIGCONT from here
//   await a.close();                                    // node.close(), then the process exits
//
//   await using c = await startCluster(3, { cookie: 'c' }); // peers[0] is the seed of the others;
//   c.peers[1].name;                                        // resolves once the mesh is full
//
// Errors thrown in the child come back as the same class (`fromWire`), so
// `await expect(a.run(...)).rejects.toBeInstanceOf(NodeDownError)` works. Values travel with
// the structured clone algorithm (ActorRefs arrive as plain `{ node, id }`).
// Every process is killed when its fixture is disposed, when `disposeAllPeers()` runs, and
// when the test process exits, so a failing test never leaves one behind.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { fromWire, type WireError } from '../../src/errors.js';
import type { NodeOptions } from '../../src/node.js';

const PEER_MAIN = fileURLToPath(new URL('./peer-main.ts', import.meta.url));

/** Every live child, killed when the test process exits. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface PeerOptions {
  /** Milliseconds a request to the child may take. @default 20000 */
  requestTimeout?: number;
  /** Extra environment variables for the child. */
  env?: Record<string, string>;
  /** Print the child's stdout/stderr (else they are collected in `peer.output`). @default false */
  inheritOutput?: boolean;
}

interface PeerEvent {
  type: string;
  args: unknown[];
}

type Pending = { resolve: (v: unknown) => void; reject: (e: unknown) => void; timer: NodeJS.Timeout };

export class Peer implements AsyncDisposable {
  readonly child: ChildProcess;
  /** Node name, once started. */
  name = '';
  /** `host:port` the node listens on, once started (undefined if it does not listen). */
  address: string | undefined = undefined;
  /** Peers already connected when `start` resolved (startNode waits for its seeds). */
  initialNodes: string[] = [];
  /** Every event pushed by the child, in order. */
  readonly events: PeerEvent[] = [];
  /** The child's stdout and stderr, collected unless `inheritOutput`. */
  output = '';
  readonly #pending = new Map<number, Pending>();
  #waiters: { match: (e: PeerEvent) => boolean; resolve: (e: PeerEvent) => void }[] = [];
  #nextId = 0;
  /** Resolved (and cleared) on the next event. */
  #onChange: (() => void) | undefined = undefined;
  readonly #timeout: number;
  #exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(options: PeerOptions = {}) {
    this.#timeout = options.requestTimeout ?? 20_000;
    this.child = fork(PEER_MAIN, [], {
      execArgv: ['--import', 'tsx'],
      serialization: 'advanced',
      env: { ...process.env, ...options.env },
      stdio: options.inheritOutput ? 'inherit' : ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    live.add(this.child);
    this.child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.#exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        live.delete(this.child);
        const err = new Error(`peer ${this.name || this.child.pid} exited (${signal ?? code})\n${this.output.slice(-2000)}`);
        for (const p of this.#pending.values()) {
          clearTimeout(p.timer);
          p.reject(err);
        }
        this.#pending.clear();
        this.#push({ type: 'exit', args: [code, signal] });
        resolve({ code, signal });
      });
    });
    this.child.on('message', (msg: { id?: number; ok?: boolean; value?: unknown; error?: WireError; event?: string; args?: unknown[] }) => {
      if (msg.event !== undefined) {
        this.#push({ type: msg.event, args: (msg.args ?? []).map(revive) });
        return;
      }
      const p = this.#pending.get(msg.id!);
      if (!p) return;
      this.#pending.delete(msg.id!);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(revive(msg.value));
      else p.reject(fromWire(msg.error!));
    });
  }

  /** Resolves when the child process is ready for requests. */
  ready(): Promise<void> {
    return this.waitEvent('ready').then(() => undefined);
  }

  /** Sends one request and resolves with the child's answer. */
  request(op: string, fields: Record<string, unknown> = {}): Promise<unknown> {
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`peer ${this.name || this.child.pid}: ${op} got no answer in ${this.#timeout} ms`));
      }, this.#timeout);
      this.#pending.set(id, { resolve, reject, timer });
      if (!this.child.connected) {
        this.#pending.delete(id);
        clearTimeout(timer);
        reject(new Error(`peer ${this.name || this.child.pid} is gone`));
        return;
      }
      this.child.send({ id, op, ...fields });
    });
  }

  /** Starts the node of this process with `startNode(options)`. */
  async start(options: NodeOptions): Promise<{ name: string; address: string | undefined; nodes: string[] }> {
    const r = (await this.request('start', { options })) as { name: string; address: string | undefined; nodes: string[] };
    this.name = r.name;
    this.address = r.address;
    this.initialNodes = r.nodes;
    return r;
  }

  /** `node.nodes()` in the child, sorted. */
  async nodes(): Promise<string[]> {
    return ((await this.request('nodes')) as string[]).sort();
  }

  /** Imports `module` (absolute path or file URL) in the child and returns `await fn(ctx, ...args)`. */
  run<T = unknown>(module: string | URL, fn: string, ...args: unknown[]): Promise<T> {
    const m = module instanceof URL ? module.href : module;
    return this.request('run', { module: m, fn, args }) as Promise<T>;
  }

  /** Resolves with the first event of `type` (seen already or to come) whose args match. */
  waitEvent(type: string, match: (...args: any[]) => boolean = () => true, timeout = this.#timeout): Promise<unknown[]> {
    const pred = (e: PeerEvent): boolean => e.type === type && match(...e.args);
    const seen = this.events.find(pred);
    if (seen) return Promise.resolve(seen.args);
    return new Promise((resolve, reject) => {
      const waiter = {
        match: pred,
        resolve: (e: PeerEvent) => {
          clearTimeout(timer);
          resolve(e.args);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`peer ${this.name}: no ${type} event in ${timeout} ms; events: ${JSON.stringify(this.events.map((e) => e.type))}`));
      }, timeout);
      this.#waiters.push(waiter);
    });
  }

  /** Resolves once `node.nodes()` in the child equals `names` (in any order). */
  async waitNodes(names: string[], timeout = this.#timeout): Promise<void> {
    const want = [...names].sort().join(',');
    const until = Date.now() + timeout;
    for (;;) {
      const changed = new Promise<void>((resolve) => (this.#onChange = resolve));
      const got = (await this.nodes()).join(',');
      if (got === want) return;
      if (Date.now() > until) throw new Error(`peer ${this.name}: nodes() is [${got}], expected [${want}]`);
      // Re-check on the next membership event (or after a while, as a safety net).
      await Promise.race([changed, delay(200)]);
    }
  }

  /** kill -9 from the test process. */
  kill(): void {
    this.child.kill('SIGKILL');
  }

  /** SIGSTOP: the process stops reading its sockets and sends nothing. */
  pause(): void {
    this.child.kill('SIGSTOP');
  }

  /** SIGCONT after `pause`. */
  resume(): void {
    this.child.kill('SIGCONT');
  }

  /** Resolves when the process has exited. */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.#exited;
  }

  /** Closes the node cleanly, then ends the process. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      await this.request('close');
      await this.request('exit');
    } catch {
      // a process that cannot close cleanly is killed below
    }
    await Promise.race([this.#exited, delay(2000)]);
    this.kill();
    await this.#exited;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.resume(); // a paused process would never exit on its own
      this.kill();
    }
    await this.#exited;
  }

  #push(e: PeerEvent): void {
    this.events.push(e);
    this.#onChange?.();
    this.#onChange = undefined;
    const hit = this.#waiters.filter((w) => w.match(e));
    if (hit.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => !hit.includes(w));
    for (const w of hit) w.resolve(e);
  }
}

/** Forks one peer process and waits until it is ready (no node started yet). */
export async function spawnPeer(options?: PeerOptions): Promise<Peer> {
  const peer = new Peer(options);
  try {
    await peer.ready();
  } catch (err) {
    await peer[Symbol.asyncDispose]();
    throw err;
  }
  return peer;
}

export interface ClusterOptions extends Omit<NodeOptions, 'name' | 'port' | 'seeds'> {
  /** Node names; default `<prefix>-0`, `<prefix>-1`… with a random prefix. */
  names?: string[];
  peer?: PeerOptions;
}

export class Cluster implements AsyncDisposable {
  constructor(readonly peers: Peer[]) {}
  /** The seed every other peer joined through. */
  get seed(): Peer {
    return this.peers[0]!;
  }
  /** Adds a peer that joins through the seed; resolves once it sees every other node. */
  async add(options: NodeOptions & { peer?: PeerOptions }): Promise<Peer> {
    const { peer: peerOptions, ...nodeOptions } = options;
    const p = await spawnPeer(peerOptions);
    this.peers.push(p);
    await p.start({ port: 0, seeds: [this.seed.address!], ...nodeOptions });
    await p.waitNodes(this.peers.filter((q) => q !== p && q.child.exitCode === null && q.child.signalCode === null).map((q) => q.name));
    return p;
  }
  async [Symbol.asyncDispose](): Promise<void> {
    await disposeAll(this.peers);
  }
}

/**
 * Starts `n` peer processes: the first listens, the others join through it; resolves when
 * every node sees every other (a full mesh).
 */
export async function startCluster(n: number, options: ClusterOptions): Promise<Cluster> {
  const { names, peer: peerOptions, ...nodeOptions } = options;
  const prefix = `n${Math.random().toString(36).slice(2, 7)}`;
  const nameOf = (i: number): string => names?.[i] ?? `${prefix}-${i}`;
  const peers = await Promise.all(Array.from({ length: n }, () => spawnPeer(peerOptions)));
  const cluster = new Cluster(peers);
  try {
    await peers[0]!.start({ ...nodeOptions, name: nameOf(0), port: 0 });
    await Promise.all(peers.slice(1).map((p, i) => p.start({ ...nodeOptions, name: nameOf(i + 1), port: 0, seeds: [peers[0]!.address!] })));
    await Promise.all(peers.map((p) => p.waitNodes(peers.filter((q) => q !== p).map((q) => q.name))));
  } catch (err) {
    await cluster[Symbol.asyncDispose]();
    throw err;
  }
  return cluster;
}

/** Kills every process of `peers` and waits until they are gone. */
export async function disposeAll(peers: Iterable<Peer>): Promise<void> {
  await Promise.all([...peers].map((p) => p[Symbol.asyncDispose]()));
}

/** Kills every peer process this test file started (for afterEach/afterAll hooks). */
export async function disposeAllPeers(): Promise<void> {
  const waits = [...live].map((c) => new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    c.once('exit', () => resolve());
    c.kill('SIGCONT');
    c.kill('SIGKILL');
  }));
  await Promise.all(waits);
}

function revive(v: unknown): unknown {
  if (v !== null && typeof v === 'object' && '__error' in v) return fromWire((v as { __error: WireError }).__error);
  return v;
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
