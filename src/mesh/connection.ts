// One authenticated link to a peer: decodes its frames, dispatches them, and watches it.
//
// Invariants:
// - At most one Connection per peer name exists in a mesh (the handshake's `admit` sees
//   to it), so frames between two nodes travel over one FIFO link: messages from one node
//   to another arrive in the order they were sent. Nothing orders messages across peers.
// - Frames are handled synchronously in arrival order; a frame is decoded with the
//   receiving node's runtime bound, so ActorRefs in it can be called at once.
// - `onDown` runs exactly once, whatever ends the link: BYE from the peer (reason
//   'closed'), the socket closing, a protocol error, heartbeat timeout, back-pressure, or
//   our own close.
// - On a link this node accepted, a REFUSE may still arrive first thing: the dialer gave up
//   its handshake after its AUTH (it began closing, say) before reading our WELCOME, which
//   had already put the link up here. It ends the link: 'closed' when the dialer refused
//   because it is closing (its goodbye), else 'refused_by_peer:<reason>' as in the
//   handshake. On a link this node dialled, REFUSE is a protocol error (an acceptor never
//   refuses after WELCOME).
// - PING is answered with PONG at once, whatever else is queued; `probe()` sends one and
//   tells whether the peer answered in time. The mesh uses it when another process claims
//   this peer's name: a frozen or dead process does not answer (see ./mesh.ts).
//
// Failure handling: a frame whose payload does not decode but whose envelope (tag and
// call id) is readable is handed to `onUndecodable` and fails only that message (a CALL
// is answered with a SerializationError, a REPLY fails its call); the link goes on, since
// the frame boundaries are intact. Any other frame that does not decode or is not a known
// message closes this link only (ProtocolError reason), like an oversize frame caught by
// the framing.
import { debuglog } from 'node:util';
import { ProtocolError } from '../errors.js';
import { decode, encode, peekEnvelope, type RefBinder } from './codec.js';
import { HeartbeatMonitor, type HeartbeatOptions } from './heartbeat.js';
import { Tag } from './protocol.js';
import type { CloseInfo, Transport } from './transport.js';
import type { PeerIdentity, Role } from './handshake.js';

const log = debuglog('expirable-store:mesh');

const HEARTBEAT = encode([Tag.HEARTBEAT]);

export interface ConnectionHandlers {
  /** A decoded authenticated message (an array starting with its tag). */
  onMessage(conn: Connection, msg: unknown[]): void;
  /**
   * A frame from the peer whose payload did not decode, with its tag and first integer
   * (call id): true if that message alone was failed, false to close the link.
   */
  onUndecodable(conn: Connection, tag: number, id: number | undefined, error: ProtocolError): boolean;
  /** The link is gone; `reason` is 'closed' after a goodbye. */
  onDown(conn: Connection, reason: string): void;
}

export class Connection {
  readonly peer: string;
  readonly incarnation: string;
  /** Who dialled: 'dial' means this node did. */
  readonly role: Role;
  readonly transport: Transport;
  readonly heartbeat: HeartbeatMonitor;
  /** The peer's advertised listen address (from the handshake, or MEMBERS for older links). */
  address: string | undefined;
  /** The largest frame payload the peer accepts (told in the handshake). */
  readonly peerMaxFrameSize: number;
  /** Set when the peer said goodbye. */
  #bye = false;
  #down = false;
  readonly #binder: RefBinder;
  readonly #handlers: ConnectionHandlers;
  /** Liveness probes waiting for their PONG, by probe id. */
  readonly #probes = new Map<number, (alive: boolean) => void>();
  #nextProbe = 0;

  constructor(
    transport: Transport,
    peer: PeerIdentity,
    role: Role,
    binder: RefBinder,
    handlers: ConnectionHandlers,
    opts: HeartbeatOptions & { maxFrameSize: number; peerMaxFrameSize: number },
    now: number,
  ) {
    this.transport = transport;
    this.peer = peer.name;
    this.incarnation = peer.incarnation;
    this.address = peer.address;
    this.role = role;
    this.peerMaxFrameSize = opts.peerMaxFrameSize;
    this.#binder = binder;
    this.#handlers = handlers;
    this.heartbeat = new HeartbeatMonitor(
      {
        sendHeartbeat: () => this.transport.send(HEARTBEAT),
        get bufferedAmount() {
          return transport.bufferedAmount;
        },
        get bytesReceived() {
          return transport.bytesReceived;
        },
        fail: (reason) => {
          log('link to %s failed: %s', this.peer, reason);
          this.transport.destroy(reason);
        },
      },
      opts,
      now,
    );
    transport.maxFrameSize = opts.maxFrameSize;
    transport.onFrame = this.#onFrame;
    transport.onClose = this.#onClose;
  }

  get down(): boolean {
    return this.#down;
  }

  /** Sends an encoded message; dropped if the link is gone. */
  send(buf: Uint8Array): void {
    this.heartbeat.sent = true;
    this.transport.send(buf);
  }

  /**
   * Asks the peer whether it is alive (PING): resolves true on its PONG, false when `timeout`
   * ms pass first or the link goes down.
   */
  probe(timeout: number): Promise<boolean> {
    if (this.#down) return Promise.resolve(false);
    const id = ++this.#nextProbe;
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), timeout);
      timer.unref();
      const done = (alive: boolean): void => {
        clearTimeout(timer);
        this.#probes.delete(id);
        resolve(alive);
      };
      this.#probes.set(id, done);
      this.send(encode([Tag.PING, id]));
    });
  }

  /** Says goodbye and closes the link gracefully. */
  async bye(): Promise<void> {
    if (this.#down) return;
    this.send(encode([Tag.BYE]));
    await this.transport.close();
  }

  #onFrame = (payload: Uint8Array): void => {
    this.heartbeat.received = true;
    let msg: unknown;
    try {
      msg = decode(payload, this.#binder);
    } catch (err) {
      const env = err instanceof ProtocolError ? peekEnvelope(payload) : undefined;
      if (env && this.#handlers.onUndecodable(this, env.tag, env.id, err as ProtocolError)) {
        log('undecodable message (tag %d) from %s: %s', env.tag, this.peer, (err as Error).message);
        return;
      }
      throw err;
    }
    if (!Array.isArray(msg) || typeof msg[0] !== 'number') {
      throw new ProtocolError('bad_message', `message from ${this.peer} is not a tagged array`);
    }
    switch (msg[0]) {
      case Tag.HEARTBEAT:
        return;
      case Tag.PING:
        this.send(encode([Tag.PONG, msg[1]]));
        return;
      case Tag.PONG:
        if (typeof msg[1] === 'number') this.#probes.get(msg[1])?.(true);
        return;
      case Tag.BYE:
        this.#bye = true;
        this.transport.destroy('closed');
        return;
      case Tag.REFUSE: {
        // The dialer gave up its handshake after sending AUTH, while our WELCOME was on
        // its way: the link was already up here. Only a dialer can do that.
        if (this.role !== 'accept') throw new ProtocolError('bad_message', `REFUSE from ${this.peer} on an established link`);
        const reason = typeof msg[1] === 'string' ? msg[1] : 'unknown';
        // A dialer that refuses because it is closing is saying goodbye.
        if (reason === 'closing') this.#bye = true;
        this.transport.destroy(reason === 'closing' ? 'closed' : `refused_by_peer:${reason}`);
        return;
      }
      default:
        this.#handlers.onMessage(this, msg);
    }
  };

  #onClose = (info: CloseInfo): void => {
    if (this.#down) return;
    this.#down = true;
    for (const done of [...this.#probes.values()]) done(false);
    this.#handlers.onDown(this, this.#bye ? 'closed' : info.reason);
  };
}
