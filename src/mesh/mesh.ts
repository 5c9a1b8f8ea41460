// The TCP mesh of one node: listens, dials seeds and every member it learns of, keeps one
// authenticated link per peer, and reports `nodeup` / `nodedown` / `refused`. Implements
// `Membership` for the layers above and carries remote actor traffic (./remote.ts).
//
// Messages it owns (catalogue in ./protocol.ts): MEMBERS, BYE (and HEARTBEAT, PING/PONG via
// the connection). The handshake is ./handshake.ts, the per-link state ./connection.ts, DNS
// discovery ./discovery.ts.
//
// Guarantees:
// - Full mesh: a node that joins through one seed gets that seed's member list (MEMBERS),
//   and every node tells its peers about each node that comes up, so everyone dials
//   everyone they learn of (nodes without a listen address are dialled by nobody but dial
//   everyone themselves).
// - At most one link per pair of nodes. Two nodes that dial each other at once keep the link
//   dialled by the node with the smaller name (plain string order); the other is refused
//   quietly ('simultaneous'). Hence messages between two nodes are delivered in the order
//   they were sent. There is NO ordering across different peers.
// - `nodeup(peer)` is emitted before any message from that peer is delivered, and
//   `nodedown(peer, reason)` is emitted (listeners run) before its pending calls fail and
//   its monitors fire. Each transition is reported exactly once.
// - Lost peers and seeds are redialled with exponential backoff and jitter; a peer that
//   said goodbye (reason 'closed') is not redialled unless it is a seed; a learned peer is
//   given up after MAX_PEER_ATTEMPTS failed dials in a row (seeds never are).
// - Addresses: a node is dialled at its `advertise` address (default: where it listens),
//   told in the handshake and in MEMBERS. DNS discovery adds the addresses it finds as
//   targets; an address that leaves DNS is never a reason to drop a link.
// - Restarts: a node that comes back as a new process under its old name (another
//   incarnation) while the old link still looks up (a crash not seen yet, or a frozen
//   process with its sockets open) is let in once the old incarnation fails a liveness probe
//   (PING unanswered for PROBE_TIMEOUT, about one heartbeat): the old one is reported down
//   ('restarted') first, its link is cut and nothing more it sent is delivered, then the new
//   one is up. If the old one answers, two live processes claim the name: the newcomer is
//   refused ('name_in_use') and the running cluster is not disturbed. Each node probes on its
//   own: when the newcomer reaches it, or sooner, when a peer tells it (MEMBERS) that the
//   connected node is at another address; one probe at a time per link, shared.
//
// Failure handling: a link that closes is down at once (reason: the socket's), a silent
// link is down after `failureTimeout` ('heartbeat_timeout'), a link whose write backlog
// stays above the high-water mark that long is dropped ('backpressure'), a malformed or
// oversize frame drops that link (the ProtocolError reason). A partition is seen as
// nodedown on both sides; each side keeps redialling and the link comes back when the
// network does. Nothing here can close the node itself. Inbound handshakes in progress are
// capped overall and per remote host (DEFAULT_MAX_PENDING_HANDSHAKES…): beyond the caps a
// connection is closed unanswered, so strangers cannot make the node hold unbounded sockets.
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { debuglog } from 'node:util';
import { InvalidOptionError, ProtocolError } from '../errors.js';
import type { ActorSystem } from '../actors/system.js';
import { monotonicNow } from '../util/clock.js';
import { encode } from './codec.js';
import { Connection } from './connection.js';
import { Handshake, type HandshakeFailure, type PeerIdentity, type Role, type Verdict } from './handshake.js';
import { DnsDiscovery, DNS_QUERY_TIMEOUT, DNS_QUERY_TRIES, type DiscoveryOptions } from './discovery.js';
import type { DiscoveryError } from '../errors.js';
import { DEFAULT_HIGH_WATER_MARK } from './heartbeat.js';
import type { Membership, MembershipEvents } from './membership.js';
import { QUIET_REFUSALS, Tag, type RefuseReason } from './protocol.js';
import { Remote, type RemoteLinks } from './remote.js';
import { tcpTransportFactory } from './tcp-transport.js';
import type { Listener, Transport, TransportFactory } from './transport.js';
import { DEFAULT_MAX_FRAME_SIZE } from './framing.js';
import { faultHook } from './fault-hook.js';

const log = debuglog('expirable-store:mesh');

export const DEFAULT_HEARTBEAT_INTERVAL = 1_000;
export const DEFAULT_FAILURE_TIMEOUT = 5_000;
export const DEFAULT_HANDSHAKE_TIMEOUT = 5_000;
/** First redial delay (ms); doubles per failure up to RECONNECT_MAX_MS, with jitter. */
export const RECONNECT_BASE_MS = 100;
export const RECONNECT_MAX_MS = 5_000;
/** Failed dials in a row after which a learned (non-seed) peer is forgotten. */
export const MAX_PEER_ATTEMPTS = 12;
/**
 * Inbound handshakes in progress at once, over all remote addresses: beyond it a new
 * connection is closed at once, before it can send anything. Each one may hold a 4 KiB
 * frame buffer and a socket until `handshakeTimeout`, so without a cap anyone reaching the
 * port could make us hold thousands.
 */
export const DEFAULT_MAX_PENDING_HANDSHAKES = 128;
/** Inbound handshakes in progress at once from one remote host (IP address). */
export const DEFAULT_MAX_PENDING_HANDSHAKES_PER_HOST = 32;
/**
 * Shortest wait for a PONG when a new process claims a connected node's name; the probe
 * waits one heartbeat interval, and never less than this, so a live but busy process is not
 * taken for dead.
 */
export const MIN_PROBE_TIMEOUT = 250;

/**
 * Longest time `start()` waits for its first round of seeds and discovery: every dial of it
 * ends (up, refused or failed) within the handshake timeout twice (connect, then handshake),
 * plus one DNS query (DNS_QUERY_TIMEOUT × DNS_QUERY_TRIES).
 */
export function firstRoundTimeout(handshakeTimeout: number): number {
  return 2 * handshakeTimeout + DNS_QUERY_TIMEOUT * DNS_QUERY_TRIES;
}

export interface MeshOptions {
  name: string;
  cookie: string;
  /** Interface to listen on. @default '127.0.0.1' */
  host?: string;
  /** Port to listen on (0: any free one); undefined: do not listen. */
  port?: number | undefined;
  /** `host:port` of nodes to join. */
  seeds?: string[];
  /** `host:port` peers dial to reach this node (told in the handshake and MEMBERS). @default the listen address */
  advertise?: string | undefined;
  /** Poll DNS for peers to dial. */
  discovery?: DiscoveryOptions | undefined;
  heartbeatInterval?: number;
  failureTimeout?: number;
  maxFrameSize?: number;
  handshakeTimeout?: number;
  /** Write backlog (bytes) beyond which a link counts as back-pressured. @default 64 MiB */
  highWaterMark?: number;
  /** How links are made; plain TCP by default. */
  transport?: TransportFactory;
  /** Protocol version to speak. Tests only. */
  protocolVersion?: number;
  /** Inbound handshakes in progress at once; more are closed unanswered. @default 128 */
  maxPendingHandshakes?: number;
  /** Inbound handshakes in progress at once from one remote host. @default 32 */
  maxPendingHandshakesPerHost?: number;
}

/** A peer refused during the handshake, by us or by it. */
export interface RefusedInfo {
  /** The peer's name, if it got that far. */
  peer?: string;
  /** The address dialled, or the remote end of an inbound link. */
  address: string;
  reason: string;
  message: string;
  /** 'local': this node refused; 'remote': the peer refused us. */
  by: 'local' | 'remote';
}


/** An address this node keeps dialling until a link to the node there is up. */
interface Target {
  readonly address: string;
  /** Seeds are redialled forever; other targets are given up after MAX_PEER_ATTEMPTS. */
  seed: boolean;
  /** The node found at this address, once known. */
  name: string | undefined;
  /** Failed dials in a row. */
  attempt: number;
  timer: NodeJS.Timeout | undefined;
  dialing: boolean;
  /** Waiters for the end of the current attempt (start and connect). */
  settled: (() => void)[];
}

type Status = 'new' | 'running' | 'closing' | 'closed';

export class Mesh extends EventEmitter<MembershipEvents> implements Membership, RemoteLinks {
  readonly self: string;
  /** Random per start, told apart from another node that uses the same name. */
  readonly incarnation = randomBytes(8).toString('hex');
  readonly remote: Remote;
  readonly #system: ActorSystem;
  readonly #opts: Required<Omit<MeshOptions, 'port' | 'transport' | 'protocolVersion' | 'advertise' | 'discovery'>> &
    Pick<MeshOptions, 'port' | 'protocolVersion' | 'advertise' | 'discovery'>;
  #discovery: DnsDiscovery | undefined = undefined;
  /** Listeners of failed discovery rounds. */
  readonly #discoveryListeners = new Set<(err: DiscoveryError) => void>();
  /** Liveness probes of connected peers running now (a new incarnation waits on it). */
  readonly #probing = new Map<Connection, Promise<boolean>>();
  readonly #factory: TransportFactory;
  #listener: Listener | undefined = undefined;
  #status: Status = 'new';
  /** Established links by peer name; at most one per name. */
  readonly #peers = new Map<string, Connection>();
  /** Handshakes in progress (both roles). */
  readonly #handshakes = new Set<Handshake>();
  /** Dialled handshakes past CHALLENGE, by peer name (for the tie-break). */
  readonly #outbound = new Map<string, Handshake>();
  /** The target each dialled handshake serves. */
  readonly #targetOf = new WeakMap<Handshake, Target>();
  /** Addresses we keep dialling: seeds, learned members, lost peers. */
  readonly #targets = new Map<string, Target>();
  #ticker: NodeJS.Timeout | undefined = undefined;
  /** Links that completed a handshake since start (diagnostics). */
  #linksUp = 0;
  /** Dial attempts since start (diagnostics). */
  #dials = 0;
  /** Listeners of refusals (kept apart from the Membership events the layers above see). */
  readonly #refusedListeners = new Set<(info: RefusedInfo) => void>();
  /** Inbound handshakes from the listener in progress, with the remote host each one counts against. */
  readonly #pendingHostOf = new Map<Handshake, string>();
  /** Pending inbound handshakes per remote host (entries removed at zero). */
  readonly #pendingPerHost = new Map<string, number>();
  /** Inbound connections closed unanswered because of the caps (diagnostics). */
  #overCap = 0;

  constructor(system: ActorSystem, options: MeshOptions) {
    super();
    this.self = options.name;
    this.#system = system;
    this.#opts = {
      name: options.name,
      cookie: options.cookie,
      host: options.host ?? '127.0.0.1',
      port: options.port,
      seeds: options.seeds ?? [],
      advertise: options.advertise,
      discovery: options.discovery,
      heartbeatInterval: options.heartbeatInterval ?? DEFAULT_HEARTBEAT_INTERVAL,
      failureTimeout: options.failureTimeout ?? DEFAULT_FAILURE_TIMEOUT,
      maxFrameSize: options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
      handshakeTimeout: options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT,
      highWaterMark: options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK,
      protocolVersion: options.protocolVersion,
      maxPendingHandshakes: options.maxPendingHandshakes ?? DEFAULT_MAX_PENDING_HANDSHAKES,
      maxPendingHandshakesPerHost: options.maxPendingHandshakesPerHost ?? DEFAULT_MAX_PENDING_HANDSHAKES_PER_HOST,
    };
    if (this.#opts.failureTimeout <= this.#opts.heartbeatInterval) {
      throw new InvalidOptionError(
        'failureTimeout',
        `more than heartbeatInterval (${this.#opts.heartbeatInterval} ms), better several times it`,
        this.#opts.failureTimeout,
      );
    }
    this.#factory = options.transport ?? tcpTransportFactory({ maxFrameSize: this.#opts.maxFrameSize });
    this.remote = new Remote(system, this);
    system.setRemote(this.remote);
  }

  /** `host:port` peers dial to reach this node (`advertise`, else where it listens), or undefined. */
  get address(): string | undefined {
    if (!this.#listener) return undefined;
    return this.#opts.advertise ?? this.#listener.address;
  }

  /** `host:port` the listener is bound to, or undefined. */
  get listenAddress(): string | undefined {
    return this.#listener?.address;
  }

  nodes(): string[] {
    return [...this.#peers.keys()];
  }

  isUp(node: string): boolean {
    return this.#peers.has(node);
  }

  maxFrameSize(node: string): number | undefined {
    return this.#peers.get(node)?.peerMaxFrameSize;
  }

  send(node: string, buf: Uint8Array): boolean {
    const conn = this.#peers.get(node);
    if (!conn) return false;
    conn.send(buf);
    return true;
  }

  /** Calls `fn` on every handshake refused by this node or by the peer; returns an unsubscribe function. */
  onRefused(fn: (info: RefusedInfo) => void): () => void {
    this.#refusedListeners.add(fn);
    return () => this.#refusedListeners.delete(fn);
  }

  /** Calls `fn` with the error of each failed discovery round; returns an unsubscribe function. */
  onDiscoveryError(fn: (err: DiscoveryError) => void): () => void {
    this.#discoveryListeners.add(fn);
    return () => this.#discoveryListeners.delete(fn);
  }

  /** Counts for tests and diagnostics. */
  debugInfo(): { peers: string[]; handshakes: number; targets: string[]; linksUp: number; dials: number; overCap: number } {
    return {
      peers: this.nodes(),
      handshakes: this.#handshakes.size,
      targets: [...this.#targets.keys()],
      linksUp: this.#linksUp,
      dials: this.#dials,
      overCap: this.#overCap,
    };
  }

  /**
   * Listens (with `port`), dials the seeds and runs the first round of discovery; resolves
   * once listening and the first dial of every seed and of every address found has ended
   * (up, refused or failed), at most `firstRoundTimeout(handshakeTimeout)` ms after it
   * listens, so a node started with a live seed is connected to it when this resolves.
   * Dialling and polling go on in the background.
   */
  async start(): Promise<void> {
    if (this.#status !== 'new') throw new Error('mesh already started');
    this.#status = 'running';
    if (this.#opts.port !== undefined) {
      this.#listener = await this.#factory.listen(this.#opts.host, this.#opts.port, this.#accept);
    }
    this.#ticker = setInterval(this.#tick, this.#opts.heartbeatInterval);
    this.#ticker.unref();
    const seeds = this.#opts.seeds.filter((s) => s !== this.address);
    const round: Promise<unknown>[] = seeds.map((s) => this.connect(s, true));
    if (this.#opts.discovery) {
      this.#discovery = new DnsDiscovery(this.#opts.discovery, {
        found: (addresses) => this.#discovered(addresses),
        failed: (err) => {
          log('%s: discovery failed: %s', this.self, err.message);
          for (const fn of this.#discoveryListeners) this.#safely(() => fn(err));
        },
      });
      round.push(this.#discovery.start());
    }
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, firstRoundTimeout(this.#opts.handshakeTimeout));
      timer.unref();
    });
    await Promise.race([Promise.all(round), bound]);
    clearTimeout(timer);
  }

  // Addresses found by discovery: dial each one not met yet (own address skipped in #kick).
  #discovered(addresses: string[]): Promise<void> {
    const own = new Set([this.address, this.listenAddress]);
    return Promise.all(addresses.filter((a) => !own.has(a)).map((a) => this.#dialFound(a))).then(() => undefined);
  }

  #dialFound(address: string): Promise<void> {
    const t = this.#targets.get(address);
    // Connected, or a redial already scheduled: the poll does not hurry it.
    if (t && (this.#connected(t) || t.dialing || t.timer !== undefined)) return Promise.resolve();
    return this.connect(address, false);
  }

  /** Dials `address` (again) unless a link to the node there is up; resolves when this attempt ends. */
  connect(address: string, seed = false): Promise<void> {
    if (this.#status !== 'running') return Promise.resolve();
    const target = this.#target(address, seed, undefined);
    const done = new Promise<void>((resolve) => target.settled.push(resolve));
    // Asked to dial now: skip the backoff wait, if any.
    if (target.timer !== undefined) {
      clearTimeout(target.timer);
      target.timer = undefined;
    }
    this.#kick(target);
    if (!target.dialing) this.#settle(target);
    return done;
  }

  /** Runs the handshake over a link made elsewhere (another transport, e.g. a MessagePort). */
  attach(transport: Transport, role: Role, target?: Target): Handshake | undefined {
    if (this.#status !== 'running') {
      transport.destroy('closing');
      return undefined;
    }
    // Fault-injection runs only (EXPIRABLE_STORE_FAULT_HOOK=1): see ./fault-hook.ts.
    if (faultHook !== undefined) transport = faultHook.wrap(transport);
    const hs = new Handshake(
      transport,
      role,
      {
        self: this.self,
        incarnation: this.incarnation,
        address: this.address,
        cookie: this.#opts.cookie,
        timeout: this.#opts.handshakeTimeout,
        maxFrameSize: this.#opts.maxFrameSize,
        ...(this.#opts.protocolVersion === undefined ? {} : { version: this.#opts.protocolVersion }),
      },
      this.#admit,
      this.#onUp,
      this.#onFail,
    );
    this.#handshakes.add(hs);
    if (target) this.#targetOf.set(hs, target);
    return hs;
  }

  // An inbound connection from the listener: refused unanswered beyond the caps on pending
  // handshakes (links attached by the node itself, e.g. its workers, are not counted).
  #accept = (transport: Transport): void => {
    const i = transport.remote.lastIndexOf(':');
    const host = i > 0 ? transport.remote.slice(0, i) : transport.remote;
    const fromHost = this.#pendingPerHost.get(host) ?? 0;
    if (this.#pendingHostOf.size >= this.#opts.maxPendingHandshakes || fromHost >= this.#opts.maxPendingHandshakesPerHost) {
      this.#overCap++;
      log('%s: too many pending handshakes, closing %s', this.self, transport.remote);
      transport.destroy('too_many_handshakes');
      return;
    }
    const hs = this.attach(transport, 'accept');
    // The handshake may already be over (attach on a closed transport); count only a live one.
    if (!hs || !this.#handshakes.has(hs)) return;
    this.#pendingHostOf.set(hs, host);
    this.#pendingPerHost.set(host, fromHost + 1);
  };

  // A counted inbound handshake ended (up or failed).
  #release(hs: Handshake): void {
    const host = this.#pendingHostOf.get(hs);
    if (host === undefined) return;
    this.#pendingHostOf.delete(hs);
    const n = (this.#pendingPerHost.get(host) ?? 1) - 1;
    if (n > 0) this.#pendingPerHost.set(host, n);
    else this.#pendingPerHost.delete(host);
  }

  // ---- handshake verdicts ----

  // An authenticated peer wants a link: duplicates and the simultaneous-dial tie-break.
  #admit = (peer: PeerIdentity, role: Role, hs: Handshake): Verdict | Promise<Verdict> => {
    if (this.#status !== 'running') return { reason: 'closing', message: `node ${this.self} is closing` };
    const existing = this.#peers.get(peer.name);
    if (existing) {
      // Another process under a connected name: a restart, unless the connected one is alive.
      if (existing.incarnation !== peer.incarnation) return this.#probeIncumbent(existing, peer, role, hs);
      // The same node over a second link: a race the first link already won.
      return { reason: 'already_connected', message: `${peer.name} is already connected to ${this.self}` };
    }
    const out = this.#outbound.get(peer.name);
    if (role === 'dial') {
      if (out && out !== hs) return { reason: 'already_connected', message: `already dialling ${peer.name}` };
      this.#outbound.set(peer.name, hs);
      return undefined;
    }
    if (out) {
      if (out.peer?.incarnation !== peer.incarnation) {
        return { reason: 'name_in_use', message: `another process named ${peer.name} is being connected to ${this.self}` };
      }
      // Both dialled at once: the link dialled by the smaller name wins, on both sides.
      if (this.self < peer.name) return { reason: 'simultaneous', message: `${this.self} dialled ${peer.name} too; that link wins` };
      this.#outbound.delete(peer.name);
      out.abort('simultaneous', `${peer.name} dialled ${this.self} too; that link wins`);
    }
    return undefined;
  };

  // A new incarnation of a connected node: probe the connected one; if it does not answer it is
  // down ('restarted') and the newcomer is judged again, else the newcomer is refused.
  async #probeIncumbent(existing: Connection, peer: PeerIdentity, role: Role, hs: Handshake): Promise<Verdict> {
    const probe = this.#probe(existing);
    // An authenticated newcomer (it proved the cookie in AUTH): tell the others where it is,
    // so they probe their own link to the old incarnation now, alongside ours.
    if (role === 'accept' && peer.address && peer.address !== existing.address) {
      const news = encode([Tag.MEMBERS, [[peer.name, peer.address]]]);
      for (const [other, c] of this.#peers) if (other !== peer.name) c.send(news);
    }
    const alive = await probe;
    if (alive && this.#peers.get(peer.name) === existing) {
      return {
        reason: 'name_in_use',
        message: `the name ${peer.name} is in use: a live node of that name (${existing.address ?? 'no address'}) is already connected to ${this.self}`,
      };
    }
    this.#replaced(existing);
    // Judged again: the state may have changed while the probe ran.
    return this.#admit(peer, role, hs);
  }

  // A peer told us a connected node is now at another address: a new incarnation may be on
  // its way here (it learns of us later, from the node it joined). Probing now, rather than
  // when it reaches us, lets it in one probe after the first node admitted it, not two.
  async #suspect(existing: Connection, address: string): Promise<void> {
    if (await this.#probe(existing)) return;
    if (this.#replaced(existing)) this.#kick(this.#target(address, false, existing.peer));
  }

  /** A liveness probe of `conn`, shared by everyone who asks while it runs. */
  #probe(conn: Connection): Promise<boolean> {
    let probe = this.#probing.get(conn);
    if (!probe) {
      const { heartbeatInterval, failureTimeout, handshakeTimeout } = this.#opts;
      const timeout = Math.min(Math.max(heartbeatInterval, MIN_PROBE_TIMEOUT), failureTimeout, handshakeTimeout / 2);
      probe = conn.probe(timeout);
      this.#probing.set(conn, probe);
      void probe.then(() => this.#probing.delete(conn));
    }
    return probe;
  }

  /** The link of an incarnation that failed its probe: down ('restarted') unless already gone. True if it was current. */
  #replaced(conn: Connection): boolean {
    if (this.#peers.get(conn.peer) !== conn) return false;
    log('%s: %s did not answer its probe; a new process took its name', this.self, conn.peer);
    this.#down(conn, 'restarted');
    conn.transport.destroy('restarted');
    return true;
  }
  // A handshake ended in a link: the peer is up.
  #onUp = (hs: Handshake): void => {
    this.#handshakes.delete(hs);
    this.#release(hs);
    const peer = hs.peer!;
    if (this.#outbound.get(peer.name) === hs) this.#outbound.delete(peer.name);
    const conn = new Connection(
      hs.transport,
      peer,
      hs.role,
      this.#system,
      { onMessage: this.#onMessage, onDown: this.#onDown, onUndecodable: (c, tag, id, err) => this.remote.undecodable(c.peer, tag, id, err) },
      {
        heartbeatInterval: this.#opts.heartbeatInterval,
        failureTimeout: this.#opts.failureTimeout,
        highWaterMark: this.#opts.highWaterMark,
        maxFrameSize: this.#opts.maxFrameSize,
        peerMaxFrameSize: hs.peerMaxFrameSize,
      },
      monotonicNow(),
    );
    this.#peers.set(peer.name, conn);
    this.#linksUp++;
    if (peer.address) {
      const t = this.#targets.get(peer.address);
      if (t) t.name = peer.name;
    }
    const target = this.#targetOf.get(hs);
    if (target) {
      target.name = peer.name;
      target.attempt = 0;
      target.dialing = false;
      this.#settle(target);
    }
    // Tell the newcomer whom we know, ourselves first (with the address to dial us at).
    const members: [string, string | null][] = [[this.self, this.address ?? null]];
    for (const [name, c] of this.#peers) if (name !== peer.name) members.push([name, c.address ?? null]);
    conn.send(encode([Tag.MEMBERS, members]));
    // Tell the others about the newcomer, so they connect even if it does not know them.
    if (peer.address) {
      const news = encode([Tag.MEMBERS, [[peer.name, peer.address]]]);
      for (const [other, c] of this.#peers) if (other !== peer.name) c.send(news);
    }
    log('%s: nodeup %s (%s)', this.self, peer.name, hs.role);
    this.#safely(() => this.emit('nodeup', peer.name));
  };

  // A handshake ended without a link.
  #onFail = (hs: Handshake, f: HandshakeFailure): void => {
    this.#handshakes.delete(hs);
    this.#release(hs);
    if (hs.peer && this.#outbound.get(hs.peer.name) === hs) this.#outbound.delete(hs.peer.name);
    const target = this.#targetOf.get(hs);
    log('%s: handshake with %s failed: %s (%s, %s)', this.self, f.peer ?? hs.transport.remote, f.reason, f.by, f.message);
    const loud = f.by !== 'link' && !QUIET_REFUSALS.has(f.reason);
    if (loud) {
      const info: RefusedInfo = { address: target?.address ?? hs.transport.remote, reason: f.reason, message: f.message, by: f.by as 'local' | 'remote' };
      if (f.peer !== undefined) info.peer = f.peer;
      for (const fn of this.#refusedListeners) this.#safely(() => fn(info));
    }
    if (!target) return;
    target.dialing = false;
    // Lost a race to another link with the same node: remember who lives at this address,
    // so the redial below finds it connected instead of dialling again and again.
    if (hs.peer && (f.reason === 'simultaneous' || f.reason === 'already_connected')) target.name = hs.peer.name;
    if (f.reason === 'self') {
      this.#dropTarget(target);
      return;
    }
    // A refused node will not change its mind soon: wait the longest delay before redialling.
    if (loud) target.attempt = Math.max(target.attempt, 16);
    this.#retry(target);
  };

  // ---- established links ----

  #onMessage = (conn: Connection, msg: unknown[]): void => {
    // A link already reported down (replaced by a new incarnation): nothing more of it counts.
    if (this.#peers.get(conn.peer) !== conn) return;
    if (msg[0] === Tag.MEMBERS) return this.#onMembers(conn, msg[1]);
    this.remote.handle(conn.peer, msg);
  };

  // MEMBERS from a peer: learn its address, dial members we do not know yet.
  #onMembers(conn: Connection, list: unknown): void {
    if (!Array.isArray(list)) throw new ProtocolError('bad_message', 'MEMBERS is not a list');
    for (const entry of list) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || (entry[1] !== null && typeof entry[1] !== 'string')) {
        throw new ProtocolError('bad_message', 'malformed MEMBERS entry');
      }
      const [name, address] = entry as [string, string | null];
      if (name === conn.peer) {
        if (address && conn.address !== address) {
          conn.address = address;
          const t = this.#targets.get(address);
          if (t) t.name = name;
          // Tell the others about the newcomer, so they connect even if it does not know them.
          const news = encode([Tag.MEMBERS, [[name, address]]]);
          for (const [other, c] of this.#peers) if (other !== name) c.send(news);
        }
        continue;
      }
      const known = this.#peers.get(name);
      if (known && address && known.address && known.address !== address) void this.#suspect(known, address);
      if (name === this.self || known || !address) continue;
      const target = this.#target(address, false, name);
      this.#kick(target);
    }
  }

  // A link went down: report it, fail what waited on it, and maybe redial.
  #onDown = (conn: Connection, why: string): void => {
    if (this.#peers.get(conn.peer) !== conn) return;
    this.#down(conn, why);
  };

  #down(conn: Connection, why: string): void {
    this.#peers.delete(conn.peer);
    const reason = this.#status === 'running' ? why : 'closed';
    log('%s: nodedown %s (%s)', this.self, conn.peer, reason);
    this.#safely(() => this.emit('nodedown', conn.peer, reason));
    this.remote.nodeDown(conn.peer, reason);
    if (this.#status !== 'running') return;
    let target = conn.address ? this.#targets.get(conn.address) : undefined;
    if (!target) for (const t of this.#targets.values()) if (t.name === conn.peer) target = t;
    if (!target && conn.address && reason !== 'closed') target = this.#target(conn.address, false, conn.peer);
    if (!target) return;
    if (reason === 'closed' && !target.seed) return this.#dropTarget(target);
    // Its new incarnation is being let in over another link; nothing to redial.
    if (reason === 'restarted' && !target.seed) return;
    target.attempt = 0;
    this.#retry(target);
  }

  #tick = (): void => {
    const now = monotonicNow();
    for (const conn of this.#peers.values()) conn.heartbeat.tick(now);
  };

  // ---- dialling ----

  #target(address: string, seed: boolean, name: string | undefined): Target {
    let t = this.#targets.get(address);
    if (!t) {
      t = { address, seed, name, attempt: 0, timer: undefined, dialing: false, settled: [] };
      this.#targets.set(address, t);
    } else {
      if (name !== undefined) t.name = name;
      if (seed) t.seed = true;
    }
    return t;
  }

  #connected(t: Target): boolean {
    return t.name !== undefined && this.#peers.has(t.name);
  }

  /** Dials now unless already dialling, waiting for a retry, or connected. */
  #kick(t: Target): void {
    if (this.#status !== 'running' || t.dialing || t.timer !== undefined || this.#connected(t)) return;
    if (t.address === this.address) return this.#dropTarget(t);
    t.dialing = true;
    this.#dials++;
    this.#factory.dial(t.address, this.#opts.handshakeTimeout).then(
      (transport) => {
        if (this.#targets.get(t.address) !== t || this.#status !== 'running') {
          transport.destroy('closing');
          t.dialing = false;
          this.#settle(t);
          return;
        }
        this.attach(transport, 'dial', t);
      },
      (err: Error) => {
        log('%s: dial %s failed: %s', this.self, t.address, err.message);
        t.dialing = false;
        this.#retry(t);
      },
    );
  }

  /** Schedules the next dial of `t` with exponential backoff and jitter. */
  #retry(t: Target): void {
    this.#settle(t);
    if (this.#status !== 'running' || this.#targets.get(t.address) !== t || t.timer !== undefined || t.dialing) return;
    if (this.#connected(t)) {
      t.attempt = 0;
      return;
    }
    if (!t.seed && t.attempt >= MAX_PEER_ATTEMPTS) return this.#dropTarget(t);
    const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.min(t.attempt, 16));
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    t.attempt++;
    t.timer = setTimeout(() => {
      t.timer = undefined;
      this.#kick(t);
    }, delay);
    t.timer.unref();
  }

  #settle(t: Target): void {
    const waiters = t.settled;
    t.settled = [];
    for (const w of waiters) w();
  }

  #dropTarget(t: Target): void {
    if (t.timer) clearTimeout(t.timer);
    t.timer = undefined;
    if (this.#targets.get(t.address) === t) this.#targets.delete(t.address);
    this.#settle(t);
  }

  // ---- closing ----

  /** Says goodbye to every peer (they see nodedown 'closed' at once) and stops listening. */
  async close(): Promise<void> {
    if (this.#status === 'closing' || this.#status === 'closed') return;
    const wasRunning = this.#status === 'running';
    this.#status = 'closing';
    this.#discovery?.close();
    for (const t of [...this.#targets.values()]) this.#dropTarget(t);
    if (this.#ticker) clearInterval(this.#ticker);
    const listening = this.#listener?.close();
    for (const hs of [...this.#handshakes]) hs.abort('closing', `node ${this.self} is closing`);
    if (wasRunning) await Promise.all([...this.#peers.values()].map((c) => c.bye()));
    await listening;
    this.#status = 'closed';
  }

  #safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      // A throwing listener must not break the link it was told about.
      queueMicrotask(() => {
        throw err;
      });
    }
  }
}

export type { Membership };
