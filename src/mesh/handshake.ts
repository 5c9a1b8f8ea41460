// The handshake: runs over a fresh Transport until both ends have proven they hold the same
// cookie, then hands the link over (synchronously, so frames that follow in the same chunk
// already reach the connection).
//
//   dialer A                                         acceptor B
//     HELLO [v, A, incA, nA, maxA, addrA]  ──────▶    version ok? name ok?
//                                     ◀───────────    CHALLENGE [v, B, incB, nB, maxB, addrB]
//     version ok? name ok? admit(B)?                  (nothing derived from the cookie yet)
//     AUTH [proofA]                   ───────────▶    proofA ok?   admit(A)?
//                                     ◀───────────    WELCOME [proofB]   (B: link up, nodeup)
//     proofB ok? (A: link up, nodeup)
//
//     proofA = HMAC(cookie, "dial",   nB, nA, A, B)
//     proofB = HMAC(cookie, "accept", nA, nB, A, B)
//
// The dialer proves first, as in Erlang: the acceptor answers anyone who reaches its port,
// so it sends nothing derived from the cookie until the dialer has proven it holds it.
// (Protocol version 1 sent proofB in CHALLENGE, which handed an offline-crackable HMAC of
// the cookie to anyone who sent one HELLO.) The dialer's proof goes only to an address the
// dialer chose to dial (a seed or a member learnt from an authenticated peer).
// `max` is the largest frame payload each side accepts after the handshake; the other side
// never sends it a larger one (./remote.ts checks before sending). `addr` is the `host:port`
// the sender is dialled at (its advertised address), or null for a node that does not listen.
// `admit` may answer later (a promise): the mesh probes a connected node of the same name
// before it lets a new incarnation in (./mesh.ts); the handshake waits, its timeout running.
//
// Invariants:
// - The cookie never crosses the wire; each side proves it over a nonce the other chose
//   freshly (32 random bytes), bound to both names and the direction, so a proof can be
//   neither replayed nor reflected. Proofs are compared with crypto.timingSafeEqual.
// - Everything read before the peer's proof is checked goes through the strict decoder and
//   frames are capped at HANDSHAKE_MAX_FRAME bytes.
// - The acceptor's `admit` (the mesh: duplicates, simultaneous-dial tie-break) runs after
//   the dialer is authenticated, so an outsider reaching the port learns nothing about who
//   is connected. The dialer's `admit` runs on CHALLENGE, before the acceptor's proof
//   arrives (it must decide before the acceptor goes up); it talks only to an address it
//   chose, and refuses quietly except for a duplicate name.
// - The incarnation (random per node start, the creation id) tells the same node (a race)
//   from another process with the same name (a restart, or a duplicate).
//
// Failure handling: any refusal sends REFUSE [reason, message] (the other side reports it
// too) and closes the link; a malformed message, a link that closes, or a handshake not
// done within `timeout` ms closes the link. Only the link is affected, never the node.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ProtocolError } from '../errors.js';
import { decodeStrict, encodeStrict } from './codec.js';
import { ADDRESS_PATTERN, HANDSHAKE_MAX_FRAME, NAME_PATTERN, NONCE_SIZE, PROTOCOL_VERSION, Tag, type RefuseReason } from './protocol.js';
import type { CloseInfo, Transport } from './transport.js';

export type Role = 'dial' | 'accept';

/** The authenticated other end. */
export interface PeerIdentity {
  name: string;
  incarnation: string;
  /** The address the peer is dialled at (its advertised address), if it listens. */
  address: string | undefined;
}

/** A handshake that did not end in a link. */
export interface HandshakeFailure {
  /** Refuse reason (ours or the peer's), or a link-level reason (timeout, closed…). */
  reason: string;
  message: string;
  /** Who decided: 'local' (we refused), 'remote' (the peer refused), 'link' (fault/timeout). */
  by: 'local' | 'remote' | 'link';
  /** The peer's name, when it was learnt. */
  peer?: string;
}

export interface HandshakeConfig {
  self: string;
  incarnation: string;
  /** The address this node is dialled at (told to the peer), if it listens. */
  address?: string | undefined;
  cookie: string;
  timeout: number;
  /** Largest frame payload this node accepts once the link is up (told to the peer). */
  maxFrameSize: number;
  /** Protocol version to speak (only tests use another one). */
  version?: number;
}

/** The mesh's verdict on an authenticated peer: undefined to go on, or a refusal. */
export type Verdict = { reason: RefuseReason; message: string } | undefined;

/** The mesh's verdict on an authenticated peer, now or later (the handshake waits). */
export type Admit = (peer: PeerIdentity, role: Role, hs: Handshake) => Verdict | Promise<Verdict>;

export class Handshake {
  readonly role: Role;
  readonly transport: Transport;
  /** The peer, once known (after HELLO / CHALLENGE). */
  peer: PeerIdentity | undefined = undefined;
  /** The largest frame payload the peer accepts once the link is up (from HELLO / CHALLENGE). */
  peerMaxFrameSize = 0;
  readonly #cfg: HandshakeConfig;
  readonly #admit: Admit;
  readonly #onUp: (hs: Handshake) => void;
  readonly #onFail: (hs: Handshake, f: HandshakeFailure) => void;
  readonly #nonce = randomBytes(NONCE_SIZE);
  #peerNonce: Uint8Array | undefined = undefined;
  #step: 'hello' | 'challenge' | 'auth' | 'admitting' | 'welcome' | 'done' = 'hello';
  #timer: NodeJS.Timeout;
  #failure: HandshakeFailure | undefined = undefined;

  constructor(
    transport: Transport,
    role: Role,
    cfg: HandshakeConfig,
    admit: Admit,
    onUp: (hs: Handshake) => void,
    onFail: (hs: Handshake, f: HandshakeFailure) => void,
  ) {
    this.transport = transport;
    this.role = role;
    this.#cfg = cfg;
    this.#admit = admit;
    this.#onUp = onUp;
    this.#onFail = onFail;
    transport.maxFrameSize = HANDSHAKE_MAX_FRAME;
    transport.onFrame = this.#onFrame;
    transport.onClose = this.#onClose;
    this.#timer = setTimeout(() => {
      this.#fail({ reason: 'handshake_timeout', message: `handshake not done within ${cfg.timeout} ms`, by: 'link' });
      transport.destroy('handshake_timeout');
    }, cfg.timeout);
    this.#timer.unref();
    if (role === 'dial') {
      this.#step = 'challenge';
      transport.send(encodeStrict([Tag.HELLO, this.#version, cfg.self, cfg.incarnation, this.#nonce, cfg.maxFrameSize, cfg.address ?? null]));
    }
  }

  get #version(): number {
    return this.#cfg.version ?? PROTOCOL_VERSION;
  }

  get done(): boolean {
    return this.#step === 'done';
  }

  /** Ends the handshake from the mesh side (e.g. the other link won a simultaneous dial). */
  abort(reason: RefuseReason, message: string): void {
    if (this.#step === 'done') return;
    this.#refuse(reason, message);
  }

  #onFrame = (payload: Uint8Array): void => {
    let msg: unknown;
    try {
      msg = decodeStrict(payload);
      if (!Array.isArray(msg)) throw new ProtocolError('bad_handshake', 'handshake message is not an array');
      if (msg[0] === Tag.REFUSE) return this.#onRefuse(msg);
      switch (this.#step) {
        case 'hello':
          return this.#onHello(msg);
        case 'challenge':
          return this.#onChallenge(msg);
        case 'auth':
          return this.#onAuth(msg);
        case 'welcome':
          return this.#onWelcome(msg);
        default:
          throw new ProtocolError('bad_handshake', 'unexpected handshake message');
      }
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.#refuse('bad_handshake', err.message);
    }
  };

  /**
   * Reads the peer's identity from HELLO or CHALLENGE (same shape): version, name,
   * incarnation, nonce, frame limit. False once it has refused (other version, own name).
   */
  #takeIdentity(msg: unknown[], expected: number, label: string): boolean {
    const [tag, version, name, incarnation, nonce, maxFrame, address] = msg;
    if (tag !== expected) throw new ProtocolError('bad_handshake', `expected ${label}, got tag ${String(tag)}`);
    if (version !== this.#version) {
      this.#refuse('version', `protocol version ${String(version)} is not supported (this node speaks ${this.#version})`);
      return false;
    }
    this.#checkIdentity(name, incarnation, nonce, maxFrame, address);
    this.peer = { name: name as string, incarnation: incarnation as string, address: (address as string | null) ?? undefined };
    this.#peerNonce = nonce as Uint8Array;
    this.peerMaxFrameSize = maxFrame as number;
    if (name === this.#cfg.self) {
      if (incarnation === this.#cfg.incarnation) this.#refuse('self', 'a node dialled itself');
      else this.#refuse('name_in_use', `the name ${this.#cfg.self} is this node's own (a live node answers to it)`);
      return false;
    }
    return true;
  }

  // acceptor: HELLO [v, name, incarnation, nonce, maxFrameSize]
  #onHello(msg: unknown[]): void {
    if (!this.#takeIdentity(msg, Tag.HELLO, 'HELLO')) return;
    this.#step = 'auth';
    // No proof here: the dialer is not authenticated yet (see the design note).
    this.transport.send(
      encodeStrict([Tag.CHALLENGE, this.#version, this.#cfg.self, this.#cfg.incarnation, this.#nonce, this.#cfg.maxFrameSize, this.#cfg.address ?? null]),
    );
  }

  // dialer: CHALLENGE [v, name, incarnation, nonce, maxFrameSize]
  #onChallenge(msg: unknown[]): void {
    if (!this.#takeIdentity(msg, Tag.CHALLENGE, 'CHALLENGE')) return;
    this.#decide('dial', () => {
      this.#step = 'welcome';
      this.transport.send(encodeStrict([Tag.AUTH, this.#proof('dial')]));
    });
  }

  // acceptor: AUTH [proof]
  #onAuth(msg: unknown[]): void {
    const [tag, proof] = msg;
    if (tag !== Tag.AUTH) throw new ProtocolError('bad_handshake', `expected AUTH, got tag ${String(tag)}`);
    if (!this.#verify(proof, 'dial')) return this.#refuse('cookie', `node ${this.peer!.name} failed the cookie challenge (another cookie)`);
    this.#decide('accept', () => {
      this.transport.send(encodeStrict([Tag.WELCOME, this.#proof('accept')]));
      this.#finish();
    });
  }

  /** Asks the mesh whether the peer may link, then goes on (now, or when a later verdict comes). */
  #decide(role: Role, proceed: () => void): void {
    const verdict = this.#admit(this.peer!, role, this);
    if (!(verdict instanceof Promise)) {
      if (verdict) return this.#refuse(verdict.reason, verdict.message);
      return proceed();
    }
    // Only REFUSE may arrive meanwhile: each side waits for the other's next step.
    this.#step = 'admitting';
    verdict.then((v) => {
      // Timed out, refused or closed while the mesh decided.
      if (this.#failure || this.#step !== 'admitting') return;
      if (v) this.#refuse(v.reason, v.message);
      else proceed();
    }, (err: unknown) => {
      this.#refuse('bad_handshake', `admission failed: ${String(err)}`);
    });
  }

  // dialer: WELCOME [proof]
  #onWelcome(msg: unknown[]): void {
    const [tag, proof] = msg;
    if (tag !== Tag.WELCOME) throw new ProtocolError('bad_handshake', `expected WELCOME, got tag ${String(tag)}`);
    if (!this.#verify(proof, 'accept')) return this.#refuse('cookie', `node ${this.peer!.name} failed the cookie challenge (another cookie)`);
    this.#finish();
  }

  #onRefuse(msg: unknown[]): void {
    const reason = typeof msg[1] === 'string' ? msg[1] : 'unknown';
    const message = typeof msg[2] === 'string' ? msg[2] : 'refused';
    this.#fail({ reason, message: `refused by the peer: ${message}`, by: 'remote' });
    this.transport.destroy(`refused_by_peer:${reason}`);
  }

  #onClose = (info: CloseInfo): void => {
    this.#fail({ reason: info.reason, message: `link closed during the handshake (${info.reason})`, by: 'link' });
  };

  #finish(): void {
    this.#step = 'done';
    clearTimeout(this.#timer);
    this.#onUp(this);
  }

  #refuse(reason: RefuseReason, message: string): void {
    if (this.#failure || this.#step === 'done') return;
    this.#fail({ reason, message, by: 'local' });
    this.transport.send(encodeStrict([Tag.REFUSE, reason, message]));
    void this.transport.close();
  }

  #fail(f: HandshakeFailure): void {
    if (this.#failure || this.#step === 'done') return;
    if (this.peer) f.peer = this.peer.name;
    this.#failure = f;
    this.#step = 'done';
    clearTimeout(this.#timer);
    this.#onFail(this, f);
  }

  #checkIdentity(name: unknown, incarnation: unknown, nonce: unknown, maxFrame: unknown, address: unknown): void {
    if (typeof name !== 'string' || !NAME_PATTERN.test(name)) throw new ProtocolError('bad_handshake', 'bad node name');
    if (typeof incarnation !== 'string' || incarnation.length > 64) throw new ProtocolError('bad_handshake', 'bad incarnation');
    if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_SIZE) throw new ProtocolError('bad_handshake', 'bad nonce');
    // Any positive size (startNode accepts any positive maxFrameSize); the sender just never exceeds it.
    if (typeof maxFrame !== 'number' || !(maxFrame > 0)) {
      throw new ProtocolError('bad_handshake', 'bad maximum frame size');
    }
    if (address != null && (typeof address !== 'string' || !ADDRESS_PATTERN.test(address))) {
      throw new ProtocolError('bad_handshake', 'bad address');
    }
  }

  /** The proof of one side: the acceptor's ('accept') answers the dialer's nonce, the dialer's ('dial') the acceptor's. */
  #proof(label: 'accept' | 'dial'): Buffer {
    const dialerNonce = this.role === 'dial' ? this.#nonce : this.#peerNonce!;
    const acceptorNonce = this.role === 'accept' ? this.#nonce : this.#peerNonce!;
    const dialer = this.role === 'dial' ? this.#cfg.self : this.peer!.name;
    const acceptor = this.role === 'accept' ? this.#cfg.self : this.peer!.name;
    const h = createHmac('sha256', this.#cfg.cookie);
    h.update(label);
    h.update('\0');
    if (label === 'accept') h.update(dialerNonce).update(acceptorNonce);
    else h.update(acceptorNonce).update(dialerNonce);
    h.update(`\0${dialer}\0${acceptor}`);
    return h.digest();
  }

  #verify(proof: unknown, label: 'accept' | 'dial'): boolean {
    if (!(proof instanceof Uint8Array) || proof.length !== 32) return false;
    return timingSafeEqual(proof, this.#proof(label));
  }
}
