// The node facade: validates `startNode` options, builds the actor runtime and (with `port`
// or `seeds`) the mesh, and delegates. A node with neither is standalone, the embedded
// default: everything works on it as a cluster of one.
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { InvalidOptionError, NotReadyError, typeName, type DiscoveryError } from './errors.js';
import { ActorSystem, DEFAULT_CALL_TIMEOUT, type DownReason } from './actors/system.js';
import type { Behavior, SpawnOptions } from './actors/behavior.js';
import type { ActorRef, ActorRefData } from './actors/ref.js';
import type { Membership } from './mesh/membership.js';
import { DEFAULT_HANDSHAKE_TIMEOUT, Mesh, type RefusedInfo } from './mesh/mesh.js';
import { MIN_DISCOVERY_INTERVAL, type DiscoveryOptions } from './mesh/discovery.js';
import { parseAddress } from './mesh/transport.js';
import { DEFAULT_MAX_FRAME_SIZE } from './mesh/framing.js';
import { ProcessGroups } from './mesh/pg.js';
import { GlobalLocks } from './mesh/global/index.js';
import { tlsTransportFactory } from './mesh/tls-transport.js';
import { InProcessMembership, WorkerHost, type WorkerHostConfig, type WorkerNode, type WorkerNodeOptions } from './mesh/worker.js';
import { takeWorkerLink } from './mesh/worker-link.js';

/** PEM material for a mutually authenticated TLS mesh. */
export interface TlsOptions {
  key: string | Buffer;
  cert: string | Buffer;
  ca: string | Buffer | (string | Buffer)[];
}

export interface NodeOptions {
  /** Unique name in the cluster. @default `<host>-<pid>-<random>` */
  name?: string;
  /** Interface to listen on. @default '127.0.0.1' */
  host?: string;
  /** Port to listen on; 0 picks a free one; omit for a node that does not listen. */
  port?: number;
  /** `host:port` of peers to join; the node then connects to every member it learns of. */
  seeds?: string[];
  /** Shared secret of the cluster; required with `port` or `seeds`. Never sent on the wire. */
  cookie?: string;
  /** Run the mesh over mutually authenticated TLS. */
  tls?: TlsOptions;
  /** Milliseconds between heartbeats to each peer. @default 1000 */
  heartbeatInterval?: number;
  /** Milliseconds of silence after which a connected peer is declared down. @default 5000 */
  failureTimeout?: number;
  /** Default timeout of `call`, in ms. @default 5000 */
  callTimeout?: number;
  /** Largest frame accepted from a peer, in bytes. @default 16 MiB */
  maxFrameSize?: number;
  /** Milliseconds a connection may take to finish its handshake. @default 5000 */
  handshakeTimeout?: number;
  /**
   * `host:port` peers dial to reach this node, told to them in the handshake and in
   * membership gossip; `node.address` returns it. **Required when `host` is a wildcard
   * (`0.0.0.0`, `::`)**: a node never advertises an address nobody can dial.
   * @default `host:port` it listens on
   */
  advertise?: string;
  /**
   * Find peers in DNS: polls `dns` every `interval` ms and dials every address it has not
   * met, as seeds that come and go. An address that leaves DNS never disconnects a peer. A
   * failed round is a `'discovery'` event and is retried with backoff. Works with `seeds`.
   */
  discovery?: DiscoveryOptions;
  /**
   * Listeners attached before the node dials anything, so none of the first events (a
   * refusal during the first dial, say) is missed. Same as `node.on(event, fn)` afterwards.
   */
  on?: NodeListeners;
}

/** Listeners of `startNode`'s `on` option. */
export interface NodeListeners {
  nodeup?: (name: string) => void;
  nodedown?: (name: string, reason: string) => void;
  refused?: (info: RefusedInfo) => void;
  discovery?: (err: DiscoveryError) => void;
}

/** `code` of the process warning emitted for a refusal no `'refused'` listener observed. */
export const REFUSED_WARNING_CODE = 'EXPIRABLE_STORE_REFUSED';
/** `code` of the process warning emitted for a failed discovery no `'discovery'` listener observed. */
export const DISCOVERY_WARNING_CODE = 'EXPIRABLE_STORE_DISCOVERY';
/** Default timeout of `node.ready()`, in ms. */
export const DEFAULT_READY_TIMEOUT = 30_000;

export interface NodeEvents {
  nodeup: [name: string];
  nodedown: [name: string, reason: string];
  /** A peer was refused during the handshake (wrong cookie, other version, name in use, TLS), by this node or by the peer. */
  refused: [info: RefusedInfo];
  /** A round of DNS discovery failed (DNS error, timeout, no answer); it is retried with backoff. */
  discovery: [err: DiscoveryError];
}

export class Node extends EventEmitter<NodeEvents> {
  readonly name: string;
  /** The actor runtime of this node. Internal, but stable enough for the layers above. */
  readonly system: ActorSystem;
  readonly #membership: Membership;
  /** Process groups, as Erlang's `pg` (API §3). */
  readonly pg: ProcessGroups;
  /** Global locks, as `:global.trans` (API §4). */
  readonly global: GlobalLocks;
  #closing: Promise<void> | undefined;
  /** What worker-thread nodes inherit; the host is made by the first `startWorker`. */
  readonly #workerConfig: WorkerHostConfig;
  #workers: WorkerHost | undefined;
  /** Refusals already emitted as process warnings (peer or address, and reason): once each. */
  readonly #warned = new Set<string>();

  /** @internal use `startNode` */
  constructor(system: ActorSystem, membership: Membership, workerConfig: WorkerHostConfig = {}) {
    super();
    this.name = system.name;
    this.system = system;
    this.#membership = membership;
    this.#workerConfig = workerConfig;
    // Before the node's own listeners: a user's `nodedown` handler already sees the down
    // node's group members gone and its locks granted on.
    this.pg = new ProcessGroups(system, membership);
    this.global = new GlobalLocks(system, membership);
    membership.on('nodeup', (name) => this.emit('nodeup', name));
    membership.on('nodedown', (name, reason) => this.emit('nodedown', name, reason));
  }

  /** `host:port` peers dial to reach this node (its `advertise` address, else where it listens), or undefined. */
  get address(): string | undefined {
    return this.#membership instanceof Mesh ? this.#membership.address : undefined;
  }

  /** The membership view the layers above build on. */
  get membership(): Membership {
    return this.#membership;
  }

  /** Names of the peers connected now, self excluded (like Erlang's `nodes()`). */
  nodes(): string[] {
    return this.#membership.nodes();
  }

  /** Starts an actor on this node. */
  spawn<S, C = never, R = never, K = never>(behavior: Behavior<S, C, R, K>, options?: SpawnOptions): ActorRef<C, R, K> {
    return this.system.spawn(behavior, options);
  }

  /** A ref bound to this node from plain `{ node, id }` data (e.g. after structuredClone). */
  ref<C = unknown, R = unknown, K = unknown>(data: ActorRefData): ActorRef<C, R, K> {
    return this.system.ref<C, R, K>(data);
  }

  /** Calls `fn(reason)` once when the actor stops, crashes or its node goes down; returns a cancel function. */
  monitor(ref: ActorRefData, fn: (reason: DownReason) => void): () => void {
    return this.system.monitor(ref, fn);
  }

  /**
   * Resolves once at least `peers` peers are connected (at once if they already are); rejects
   * with NotReadyError, saying how many it had, after `timeout` ms. For apps that must not
   * fetch alone while their fleet starts.
   */
  ready(options: { peers?: number; timeout?: number } = {}): Promise<void> {
    if (options === null || typeof options !== 'object') return Promise.reject(new InvalidOptionError('options', 'an object', options));
    const { peers = 0, timeout = DEFAULT_READY_TIMEOUT } = options;
    if (!Number.isInteger(peers) || peers < 0) return Promise.reject(new InvalidOptionError('peers', 'a non-negative integer', peers));
    if (typeof timeout !== 'number' || !(timeout > 0)) return Promise.reject(new InvalidOptionError('timeout', 'a positive number of milliseconds', timeout));
    if (this.nodes().length >= peers) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const on = (): void => {
        if (this.nodes().length < peers) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(new NotReadyError(peers, this.nodes().length, timeout));
      }, timeout);
      const done = (): void => {
        clearTimeout(timer);
        this.off('nodeup', on);
      };
      this.on('nodeup', on);
    });
  }

  /** @internal A refusal from the mesh or the TLS layer: an event, or a process warning when nobody listens. */
  refused(info: RefusedInfo): void {
    if (this.listenerCount('refused') > 0) {
      this.emit('refused', info);
      return;
    }
    const key = `${info.peer ?? info.address}\0${info.reason}`;
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    const who = info.peer === undefined ? info.address : `${info.peer} at ${info.address}`;
    const side = info.by === 'local' ? `node ${this.name} refused ${who}` : `${who} refused node ${this.name}`;
    process.emitWarning(`${side} (reason: ${info.reason}): ${info.message}`, {
      type: 'ExpirableStoreWarning',
      code: REFUSED_WARNING_CODE,
      detail: "The two nodes stay apart. Listen to 'refused' (node.on or startNode's `on` option) to handle it; this warning is shown once per peer and reason.",
    });
  }

  /** @internal A failed discovery round: an event, or (once per DNS error code) a process warning when nobody listens. */
  discoveryFailed(err: DiscoveryError): void {
    if (this.listenerCount('discovery') > 0) {
      this.emit('discovery', err);
      return;
    }
    const key = `discovery\0${err.dnsCode ?? err.message}`;
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    process.emitWarning(err.message, {
      type: 'ExpirableStoreWarning',
      code: DISCOVERY_WARNING_CODE,
      detail: "Retried with backoff. Listen to 'discovery' (node.on or startNode's `on` option) to handle it; this warning is shown once per error code.",
    });
  }

  /** Resolves when `name` is connected (at once if it already is). */
  onNodeUp(name: string): Promise<void> {
    if (this.nodes().includes(name)) return Promise.resolve();
    return new Promise((resolve) => {
      const on = (n: string): void => {
        if (n !== name) return;
        this.off('nodeup', on);
        resolve();
      };
      this.on('nodeup', on);
    });
  }

  /** Resolves with the reason when `name` goes down (at once if it is not connected). */
  onNodeDown(name: string): Promise<string> {
    if (!this.nodes().includes(name)) return Promise.resolve('noconnection');
    return new Promise((resolve) => {
      const on = (n: string, reason: string): void => {
        if (n !== name) return;
        this.off('nodedown', on);
        resolve(reason);
      };
      this.on('nodedown', on);
    });
  }

  /**
   * Starts a worker-thread node that joins this node's cluster (a cluster of this node and
   * its workers when this node is standalone); resolves once it is up. Its script calls
   * `startNode()`, which links it to this node. See docs/workers-tls.md.
   */
  startWorker(script: URL | string, options?: WorkerNodeOptions): Promise<WorkerNode> {
    if (this.#closing) return Promise.reject(new Error(`node ${this.name} is closing; no worker can be started`));
    this.#workers ??= new WorkerHost(this.system, this.#membership, this.#workerConfig);
    return this.#workers.start(script, options);
  }

  /** Stops every actor and leaves the cluster; resolves when done. Idempotent. */
  close(): Promise<void> {
    // Worker-thread nodes close first (each says goodbye). Then actors stop (remote
    // monitors hear 'shutdown'), then the mesh says goodbye.
    // Locks are released and groups left before the actors stop, while the links still carry the news.
    this.#closing ??= Promise.resolve(this.#workers?.close())
      .then(() => this.#leaveServices()).then(() => this.system.close()).then(() => (this.#membership instanceof Mesh ? this.#membership.close() : undefined));
    return this.#closing;
  }

  async #leaveServices(): Promise<void> {
    await this.global.close();
    this.pg.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Starts a node: standalone without `port` and `seeds`, else a member of a cluster. */
export async function startNode(options: NodeOptions = {}): Promise<Node> {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', 'an object', options);
  // In a thread started by `node.startWorker`: link to that node (its name, cookie, TLS and
  // timings are the defaults). Taken synchronously, before anything else reads parentPort.
  const link = takeWorkerLink();
  if (link) options = link.nodeOptions(options);
  const o = validate(options);
  const transport = options.tls === undefined ? undefined : tlsTransport(options, (info) => node.refused(info));
  const system = new ActorSystem({ name: o.name, callTimeout: o.callTimeout });
  if (o.port === undefined && o.seeds.length === 0 && options.discovery === undefined && !link) {
    const standalone = new Node(system, new InProcessMembership(o.name), options);
    listen(standalone, options.on);
    return standalone;
  }
  // The mesh and the node (whose constructor spawns the service actors) exist before any
  // link is made, so no message from a peer can arrive before they do.
  const mesh = new Mesh(system, {
    name: o.name,
    cookie: options.cookie!,
    host: options.host,
    port: o.port,
    seeds: o.seeds,
    advertise: options.advertise,
    discovery: options.discovery,
    heartbeatInterval: options.heartbeatInterval,
    failureTimeout: options.failureTimeout,
    maxFrameSize: options.maxFrameSize,
    handshakeTimeout: options.handshakeTimeout,
    transport,
  });
  const node = new Node(system, mesh, options);
  listen(node, options.on);
  mesh.onRefused((info) => node.refused(info));
  mesh.onDiscoveryError((err) => node.discoveryFailed(err));
  try {
    await mesh.start();
    if (link) await link.join(mesh, () => node.close());
  } catch (err) {
    await node.close();
    throw err;
  }
  return node;
}

function listen(node: Node, on: NodeListeners | undefined): void {
  if (!on) return;
  if (on.nodeup) node.on('nodeup', on.nodeup);
  if (on.nodedown) node.on('nodedown', on.nodedown);
  if (on.refused) node.on('refused', on.refused);
  if (on.discovery) node.on('discovery', on.discovery);
}

interface ValidOptions {
  name: string;
  callTimeout: number;
  port: number | undefined;
  seeds: string[];
}

function validate(options: NodeOptions): ValidOptions {
  const { name, port, seeds, cookie, callTimeout, host } = options;
  if (name !== undefined && (typeof name !== 'string' || !/^[\w.@:-]{1,255}$/.test(name))) {
    throw new InvalidOptionError('name', 'a string of 1-255 letters, digits or . _ - @ :', name);
  }
  if (host !== undefined && (typeof host !== 'string' || host.length === 0)) {
    throw new InvalidOptionError('host', 'a non-empty string', host);
  }
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new InvalidOptionError('port', 'an integer from 0 to 65535', port);
  }
  if (seeds !== undefined) {
    if (!Array.isArray(seeds)) throw new InvalidOptionError('seeds', 'an array of "host:port" strings', seeds);
    for (const s of seeds) {
      if (typeof s !== 'string' || !/^.+:\d{1,5}$/.test(s)) {
        throw new InvalidOptionError('seeds', 'an array of "host:port" strings', s);
      }
    }
  }
  validateDiscovery(options.discovery);
  const { advertise } = options;
  if (advertise !== undefined && (typeof advertise !== 'string' || !isDialable(advertise))) {
    throw new InvalidOptionError('advertise', 'a "host:port" string peers can dial (port 1-65535)', advertise);
  }
  if (port !== undefined && advertise === undefined && (host === '0.0.0.0' || host === '::' || host === '[::]')) {
    throw new InvalidOptionError('advertise', `a "host:port" peers can dial when \`host\` is the wildcard ${host}`, advertise);
  }
  if (options.on !== undefined) {
    if (options.on === null || typeof options.on !== 'object') throw new InvalidOptionError('on', 'an object of listeners', options.on);
    for (const [event, fn] of Object.entries(options.on)) {
      if (!['nodeup', 'nodedown', 'refused', 'discovery'].includes(event)) {
        throw new InvalidOptionError(`on.${event}`, "one of the events 'nodeup', 'nodedown', 'refused', 'discovery'", fn);
      }
      if (fn !== undefined && typeof fn !== 'function') throw new InvalidOptionError(`on.${event}`, 'a function', fn);
    }
  }
  const clustered = port !== undefined || (seeds?.length ?? 0) > 0 || options.discovery !== undefined;
  if (clustered && (typeof cookie !== 'string' || cookie.length === 0)) {
    throw new InvalidOptionError('cookie', 'a non-empty string when `port`, `seeds` or `discovery` is given', cookie);
  }
  for (const key of ['heartbeatInterval', 'failureTimeout', 'maxFrameSize', 'handshakeTimeout'] as const) {
    const v = options[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)) {
      throw new InvalidOptionError(key, 'a positive number', v);
    }
  }
  if (callTimeout !== undefined && (typeof callTimeout !== 'number' || Number.isNaN(callTimeout) || callTimeout < 0)) {
    throw new InvalidOptionError('callTimeout', 'a non-negative number of milliseconds (or Infinity)', callTimeout);
  }
  void typeName;
  return {
    name: name ?? defaultName(),
    callTimeout: callTimeout ?? DEFAULT_CALL_TIMEOUT,
    port,
    seeds: seeds ?? [],
  };
}

function isDialable(address: string): boolean {
  if (!/^\S+:\d{1,5}$/.test(address) || address.length > 253) return false;
  const { host, port } = parseAddress(address);
  return host.length > 0 && port >= 1 && port <= 65535;
}

function validateDiscovery(d: DiscoveryOptions | undefined): void {
  if (d === undefined) return;
  if (d === null || typeof d !== 'object') throw new InvalidOptionError('discovery', 'an object { dns, port?, type?, interval?, servers? }', d);
  if (typeof d.dns !== 'string' || d.dns.length === 0 || d.dns.length > 253) {
    throw new InvalidOptionError('discovery.dns', 'a DNS name', d.dns);
  }
  if (d.type !== undefined && d.type !== 'srv') throw new InvalidOptionError('discovery.type', "'srv' or omitted (A/AAAA records)", d.type);
  if (d.type === 'srv') {
    if (d.port !== undefined) throw new InvalidOptionError('discovery.port', 'omitted with SRV records (each carries its port)', d.port);
  } else if (!Number.isInteger(d.port) || d.port! < 1 || d.port! > 65535) {
    throw new InvalidOptionError('discovery.port', 'an integer from 1 to 65535 (required for A/AAAA records)', d.port);
  }
  if (d.interval !== undefined && (typeof d.interval !== 'number' || !Number.isFinite(d.interval) || d.interval < MIN_DISCOVERY_INTERVAL)) {
    throw new InvalidOptionError('discovery.interval', `a number of milliseconds, at least ${MIN_DISCOVERY_INTERVAL}`, d.interval);
  }
  if (d.servers !== undefined) {
    if (!Array.isArray(d.servers) || d.servers.length === 0) throw new InvalidOptionError('discovery.servers', 'a non-empty array of "ip" or "ip:port" strings', d.servers);
    for (const s of d.servers) {
      if (typeof s !== 'string' || !/^(\[[0-9a-fA-F:.]+\]|[0-9a-fA-F:.]+)(:\d{1,5})?$/.test(s)) {
        throw new InvalidOptionError('discovery.servers', 'a non-empty array of "ip" or "ip:port" strings', s);
      }
    }
  }
  for (const key of Object.keys(d)) {
    if (!['dns', 'port', 'type', 'interval', 'servers'].includes(key)) throw new InvalidOptionError(`discovery.${key}`, 'not an option of discovery', (d as unknown as Record<string, unknown>)[key]);
  }
}

/** The TLS transport of `options.tls` (checked here, so bad PEM fails startNode with InvalidOptionError). */
function tlsTransport(options: NodeOptions, onRefused: (info: RefusedInfo) => void) {
  return tlsTransportFactory({
    ...options.tls!,
    maxFrameSize: options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
    handshakeTimeout: options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT,
    onRefused: (r) => onRefused({ address: r.address, reason: 'tls', message: r.message, by: r.by }),
  });
}

function defaultName(): string {
  const host = hostname().replace(/[^\w.-]/g, '_').slice(0, 64) || 'host';
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}
