// Worker-thread nodes: `node.startWorker(script)` starts a thread whose script calls
// `startNode()`, and that node joins the cluster. The parent's side is here; the link
// protocol and the worker's side are in ./worker-link.ts.
//
// - The parent and the worker are linked over a MessagePort (./port-transport.ts): the same
//   handshake, heartbeats and remote calls as TCP, with no socket inside the process.
// - When the parent listens, the worker listens on port 0 of the parent's host and the
//   parent gossips its address, so every other member links to it as to any node. A
//   standalone parent gets a mesh of its own that does not listen (a cluster of the parent
//   and its workers, in one process), adopted by its membership (InProcessMembership).
// - TypeScript scripts (.ts/.mts/.cts) are run through tsx when it is installed, so tests
//   and tools can start workers from source; users ship JavaScript.
//
// Failure handling: a worker that crashes, exits or is terminated is nodedown on every
// node: the parent sees 'worker_exited' when the thread ended without its node closing
// (the link port closes with the thread; `terminate()` is such an end), 'closed' after
// `close()` (the worker's node says goodbye first); the other members see the worker's
// sockets close ('connection_closed') or its goodbye ('closed').
// Pending calls to it fail with NodeDownError as for any node. A worker that does not join
// within `startTimeout` is terminated and `startWorker` rejects.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel, Worker, setEnvironmentData, type MessagePort, type ResourceLimits } from 'node:worker_threads';
import type { EventEmitter } from 'node:events';
import { InvalidOptionError } from '../errors.js';
import type { ActorSystem } from '../actors/system.js';
import { Mesh } from './mesh.js';
import { StandaloneMembership, type Membership, type MembershipEvents } from './membership.js';
import { PortTransport } from './port-transport.js';
import { NAME_PATTERN } from './protocol.js';
import { parseAddress } from './transport.js';
import type { TlsMaterial } from './tls-transport.js';
import { LINK_ENV_KEY, type ControlMessage, type LinkData, type WorkerNodeDefaults } from './worker-link.js';

/** Default of `startTimeout`: time for a thread to boot, load its script and join. */
export const DEFAULT_WORKER_START_TIMEOUT = 30_000;
/** Default of `closeTimeout`: time a closing worker's node has to say goodbye. */
export const DEFAULT_WORKER_CLOSE_TIMEOUT = 5_000;

export interface WorkerNodeOptions {
  /** Name of the worker's node, unique in the cluster. @default `<parent>.w<n>` */
  name?: string;
  /** Passed to the worker as `workerData`, as with `new Worker`. */
  workerData?: unknown;
  /** The worker's `process.env`, as with `new Worker`. */
  env?: NodeJS.Dict<string> | typeof import('node:worker_threads').SHARE_ENV;
  /** Node.js options of the thread, as with `new Worker`. @default inherited */
  execArgv?: string[];
  /** Heap limits of the thread, as with `new Worker`. */
  resourceLimits?: ResourceLimits;
  /** Milliseconds the thread may take to start its node and link. @default 30000 */
  startTimeout?: number;
  /** Milliseconds `close()` lets the worker's node close before the thread is stopped. @default 5000 */
  closeTimeout?: number;
}

/** What a node passes to its worker host: the settings its workers inherit. */
export interface WorkerHostConfig {
  cookie?: string | undefined;
  tls?: TlsMaterial | undefined;
  heartbeatInterval?: number | undefined;
  failureTimeout?: number | undefined;
  maxFrameSize?: number | undefined;
  handshakeTimeout?: number | undefined;
  callTimeout?: number | undefined;
}

/**
 * The membership of a node without a mesh of its own: a cluster of one, until it starts a
 * worker; then the view of the mesh made for its workers (`adopt`), so process groups and
 * locks built on it see the workers come and go.
 */
export class InProcessMembership extends StandaloneMembership {
  #inner: Membership | undefined = undefined;

  override nodes(): string[] {
    return this.#inner?.nodes() ?? [];
  }

  /** From now on, reports `inner`'s peers and events as this node's. */
  adopt(inner: Membership & EventEmitter<MembershipEvents>): void {
    if (this.#inner) throw new Error('membership already adopted a mesh');
    this.#inner = inner;
    inner.on('nodeup', (n) => this.emit('nodeup', n));
    inner.on('nodedown', (n, r) => this.emit('nodedown', n, r));
  }
}

/** A running worker-thread node, as returned by `node.startWorker`. */
export class WorkerNode {
  /** The worker's node name. */
  readonly name: string;
  /** The thread, for anything else `worker_threads` offers (postMessage, resourceLimits…). */
  readonly worker: Worker;
  /** Resolves with the thread's exit code once it has ended. */
  readonly exited: Promise<number>;
  readonly #control: MessagePort;
  readonly #closeTimeout: number;
  #exitCode: number | undefined = undefined;
  #up = false;
  #downSeen = false;
  #terminating: Promise<void> | undefined = undefined;
  #closing: Promise<void> | undefined = undefined;
  /** Resolved when the parent sees this node go down (after it was up). */
  #down: Promise<void>;
  #resolveDown!: () => void;
  #resolveClosedAck: (() => void) | undefined = undefined;

  /** @internal made by WorkerHost */
  constructor(name: string, worker: Worker, control: MessagePort, closeTimeout: number) {
    this.name = name;
    this.worker = worker;
    this.#control = control;
    this.#closeTimeout = closeTimeout;
    this.#down = new Promise((r) => (this.#resolveDown = r));
    this.exited = new Promise((resolve) => {
      worker.once('exit', (code) => {
        this.#exitCode = code;
        resolve(code);
      });
    });
  }

  /** The thread's id (`worker.threadId`). */
  get threadId(): number {
    return this.worker.threadId;
  }

  /** True once the thread has ended. */
  get hasExited(): boolean {
    return this.#exitCode !== undefined;
  }

  /**
   * Stops the thread now, as `Worker#terminate` (like kill -9 for a process): this node sees
   * nodedown 'worker_exited', the others see its sockets close; calls pending on it fail
   * with NodeDownError. Resolves once the thread has exited and this node has seen it down.
   * Idempotent.
   */
  terminate(): Promise<void> {
    this.#terminating ??= (async () => {
      if (this.#exitCode === undefined) await this.worker.terminate();
      await this.exited;
      // The link port reports its close a little after the thread's exit.
      if (this.#up) await Promise.race([this.#down, delay(this.#closeTimeout)]);
    })();
    return this.#terminating;
  }

  /**
   * Closes the worker's node as `node.close()` does (it stops its actors, releases its
   * locks, leaves its groups and says goodbye, so every node sees nodedown 'closed'), then
   * stops the thread; after `closeTimeout` ms it is stopped anyway. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#exitCode !== undefined) return;
    if (this.#up) {
      const acked = new Promise<void>((r) => (this.#resolveClosedAck = r));
      this.#control.postMessage({ op: 'close' } satisfies ControlMessage);
      // The goodbye travels on the link port, the ack on the control port: wait for the
      // link to go down too, so the parent reports 'closed', not the thread's exit.
      const closed = acked.then(() => this.#down);
      await Promise.race([closed, this.exited, delay(this.#closeTimeout)]);
    }
    await this.terminate();
  }

  /** @internal */
  markUp(): void {
    this.#up = true;
  }
  /** @internal */
  markDown(): void {
    this.#downSeen = true;
    this.#resolveDown();
  }
  /** True while the parent has a link to it (between its nodeup and nodedown). */
  get linked(): boolean {
    return this.#up && !this.#downSeen && this.#exitCode === undefined;
  }

  /** @internal hands this worker one end of a port to another worker of the same parent. */
  introduce(peer: string, port: MessagePort, role: 'dial' | 'accept'): void {
    this.#control.postMessage({ op: 'link', peer, port, role } satisfies ControlMessage, [port]);
  }

  /** @internal */
  onControl(m: ControlMessage): void {
    if (m?.op === 'closed') this.#resolveClosedAck?.();
  }
}

/** Starts and tracks the worker-thread nodes of one node. */
export class WorkerHost {
  readonly #system: ActorSystem;
  readonly #membership: Membership;
  readonly #config: WorkerHostConfig;
  /** The mesh the links attach to: the node's own, or one made for a standalone node. */
  #mesh: Promise<Mesh> | undefined = undefined;
  #ownMesh: Mesh | undefined = undefined;
  /** The cluster's cookie (a random one for the mesh of a standalone node). */
  #cookie: string;
  /** Live workers by name (until their thread exits). */
  readonly #workers = new Map<string, WorkerNode>();
  #seq = 0;
  #closing = false;

  constructor(system: ActorSystem, membership: Membership, config: WorkerHostConfig) {
    this.#system = system;
    this.#membership = membership;
    this.#config = config;
    this.#cookie = config.cookie ?? randomBytes(16).toString('hex');
  }

  /** Workers whose thread is still running. */
  get workers(): WorkerNode[] {
    return [...this.#workers.values()];
  }

  async start(script: URL | string, options: WorkerNodeOptions = {}): Promise<WorkerNode> {
    if (this.#closing) throw new Error(`node ${this.#system.name} is closing; no worker can be started`);
    if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', 'an object', options);
    const url = scriptUrl(script);
    const self = this.#system.name;
    const name = options.name ?? `${self}.w${++this.#seq}`;
    if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
      throw new InvalidOptionError('name', 'a string of 1-255 letters, digits or . _ - @ :', name);
    }
    if (name === self || this.#workers.has(name) || this.#membership.nodes().includes(name)) {
      throw new InvalidOptionError('name', 'a node name not in use in the cluster', name);
    }
    const startTimeout = positive(options, 'startTimeout', DEFAULT_WORKER_START_TIMEOUT);
    const closeTimeout = positive(options, 'closeTimeout', DEFAULT_WORKER_CLOSE_TIMEOUT);
    const entry = workerEntry(url);
    const mesh = await this.#meshReady();
    if (this.#closing) throw new Error(`node ${self} is closing; no worker can be started`);

    const link = new MessageChannel();
    const control = new MessageChannel();
    const id = randomBytes(8).toString('hex');
    const data: LinkData = {
      kind: LINK_ENV_KEY,
      id,
      parent: self,
      name,
      port: link.port2,
      control: control.port2,
      defaults: this.#defaults(mesh),
    };
    // The new thread copies the environment data now; later threads do not see the marker.
    setEnvironmentData(LINK_ENV_KEY, id);
    let worker: Worker;
    try {
      worker = new Worker(entry.code, {
        eval: entry.eval,
        workerData: options.workerData,
        ...(options.env === undefined ? {} : { env: options.env }),
        ...(options.execArgv === undefined ? {} : { execArgv: options.execArgv }),
        ...(options.resourceLimits === undefined ? {} : { resourceLimits: options.resourceLimits }),
      });
    } finally {
      setEnvironmentData(LINK_ENV_KEY, undefined);
    }
    worker.postMessage(data, [link.port2, control.port2]);
    const handle = new WorkerNode(name, worker, control.port1, closeTimeout);
    this.#workers.set(name, handle);
    return this.#track(handle, mesh, link.port1, control.port1, startTimeout);
  }

  /** Waits for the worker to join; wires its link, its exit and its down. */
  #track(handle: WorkerNode, mesh: Mesh, port: MessagePort, control: MessagePort, startTimeout: number): Promise<WorkerNode> {
    const { name, worker } = handle;
    let transport: PortTransport | undefined;
    let up = false;
    let failure: Error | undefined;
    return new Promise<WorkerNode>((resolve, reject) => {
      const fail = (err: Error): void => {
        if (up) return;
        up = true; // settled
        cleanup();
        reject(err);
        void handle.terminate();
      };
      const onUp = (n: string): void => {
        if (n !== name || up) return;
        up = true;
        cleanup();
        handle.markUp();
        // Link it to every other worker of this node over a port of its own.
        for (const other of this.#workers.values()) {
          if (other === handle || !other.linked) continue;
          const { port1, port2 } = new MessageChannel();
          other.introduce(name, port1, 'accept');
          handle.introduce(other.name, port2, 'dial');
        }
        resolve(handle);
      };
      const onDown = (n: string): void => {
        if (n !== name) return;
        handle.markDown();
        if (handle.hasExited) mesh.off('nodedown', onDown);
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        mesh.off('nodeup', onUp);
      };
      const timer = setTimeout(
        () => fail(new Error(`worker node ${name} did not join within ${startTimeout} ms (does its script call startNode()?)`)),
        startTimeout,
      );
      timer.unref();
      mesh.on('nodeup', onUp);
      mesh.on('nodedown', onDown);
      control.on('message', (m: ControlMessage) => {
        if (m?.op === 'ready' && !transport) {
          // Only now does the handshake clock start: booting the thread may take a while.
          transport = new PortTransport(port, {
            remote: `worker ${name}`,
            peerGoneReason: 'worker_exited',
            keepAlive: false,
            ...(this.#config.maxFrameSize === undefined ? {} : { maxFrameSize: this.#config.maxFrameSize }),
          });
          mesh.attach(transport, 'accept');
          return;
        }
        handle.onControl(m);
      });
      control.unref();
      worker.on('error', (err) => {
        failure ??= err;
      });
      worker.once('exit', (code) => {
        // The port closes with the thread, usually first; if not, take what the worker
        // posted before it ended (a goodbye makes this 'closed'), then close it with the
        // right reason. Either way nodedown follows (asynchronously; terminate() waits).
        transport?.drain();
        if (transport && !transport.closed) transport.destroy('worker_exited');
        else if (!transport) port.close();
        // Not connected now: no nodedown is coming for it.
        if (!mesh.nodes().includes(name)) mesh.off('nodedown', onDown);
        control.close();
        this.#workers.delete(name);
        const why = failure ? `: ${failure.message}` : '';
        fail(new Error(`worker node ${name} exited with code ${code} before joining${why}`, failure ? { cause: failure } : undefined));
      });
    });
  }

  /** What the worker's node inherits from this one. */
  #defaults(mesh: Mesh): WorkerNodeDefaults {
    const c = this.#config;
    const address = mesh.address;
    const d: WorkerNodeDefaults = { cookie: this.#cookie, listen: address !== undefined };
    if (address !== undefined) d.host = parseAddress(address).host;
    // As text: a Buffer reaches the thread as a plain Uint8Array.
    if (c.tls) d.tls = { key: pemText(c.tls.key), cert: pemText(c.tls.cert), ca: Array.isArray(c.tls.ca) ? c.tls.ca.map(pemText) : pemText(c.tls.ca) };
    for (const k of ['heartbeatInterval', 'failureTimeout', 'maxFrameSize', 'handshakeTimeout', 'callTimeout'] as const) {
      if (c[k] !== undefined) d[k] = c[k];
    }
    return d;
  }

  /** The node's mesh, or (standalone node) a mesh made once that does not listen. */
  #meshReady(): Promise<Mesh> {
    this.#mesh ??= (async () => {
      if (this.#membership instanceof Mesh) return this.#membership;
      if (!(this.#membership instanceof InProcessMembership)) throw new Error('this node cannot start workers');
      const c = this.#config;
      const mesh = new Mesh(this.#system, {
        name: this.#system.name,
        cookie: this.#cookie,
        ...(c.heartbeatInterval === undefined ? {} : { heartbeatInterval: c.heartbeatInterval }),
        ...(c.failureTimeout === undefined ? {} : { failureTimeout: c.failureTimeout }),
        ...(c.maxFrameSize === undefined ? {} : { maxFrameSize: c.maxFrameSize }),
        ...(c.handshakeTimeout === undefined ? {} : { handshakeTimeout: c.handshakeTimeout }),
      });
      await mesh.start();
      this.#ownMesh = mesh;
      this.#membership.adopt(mesh);
      return mesh;
    })();
    return this.#mesh;
  }

  /** Closes every worker (each says goodbye), then the mesh made for them, if any. */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all([...this.#workers.values()].map((w) => w.close()));
    await this.#mesh?.catch(() => undefined);
    await this.#ownMesh?.close();
  }
}

const pemText = (v: string | Buffer): string => (typeof v === 'string' ? v : Buffer.from(v).toString('utf8'));

function positive(options: WorkerNodeOptions, key: 'startTimeout' | 'closeTimeout', dflt: number): number {
  const v = options[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !(v > 0)) throw new InvalidOptionError(key, 'a positive number of milliseconds', v);
  return v;
}

function scriptUrl(script: URL | string): URL {
  if (script instanceof URL) {
    if (script.protocol !== 'file:') throw new InvalidOptionError('script', 'a file: URL or an absolute path', script.href);
    return script;
  }
  if (typeof script === 'string') {
    if (script.startsWith('file:')) return new URL(script);
    if (script.startsWith('/')) return pathToFileURL(script);
  }
  throw new InvalidOptionError('script', 'a file: URL or an absolute path', script);
}

const TS_SCRIPT = /\.(ts|mts|cts)$/;
let tsxApi: string | undefined;

/** The thread's entry: the script itself, or for TypeScript a bootstrap that registers tsx first. */
function workerEntry(url: URL): { code: string | URL; eval: boolean } {
  if (!TS_SCRIPT.test(url.pathname)) return { code: url, eval: false };
  if (tsxApi === undefined) {
    try {
      // tsx's ESM API (its CJS build cannot register hooks from an eval'd script).
      const cjs = createRequire(import.meta.url).resolve('tsx/esm/api');
      const mjs = cjs.replace(/\.cjs$/, '.mjs');
      tsxApi = pathToFileURL(existsSync(mjs) ? mjs : cjs).href;
    } catch {
      throw new InvalidOptionError('script', 'a JavaScript file (TypeScript worker scripts need the tsx package)', fileURLToPath(url));
    }
  }
  // Node 20 does not apply `--import tsx` hooks to a worker's entry; register them in the thread.
  const code =
    `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })` +
    `.catch((e) => process.nextTick(() => { throw e; }));`;
  return { code, eval: true };
}

const delay = (ms: number): Promise<void> =>
  new Promise((r) => {
    setTimeout(r, ms).unref();
  });
