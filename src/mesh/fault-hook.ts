// A test-only fault hook: drops or delays the frames of chosen peers, as a network cut or
// a slow link would, for fault-injection runs (chaos/) on hosts where real network faults
// (namespaces and nftables) cannot be made.
//
// - Enabled only when the process starts with EXPIRABLE_STORE_FAULT_HOOK=1; otherwise
//   `faultHook` is undefined and the mesh wraps nothing (one check per link, none per frame).
// - A wrapped link learns its peer's name from the first frame it receives (HELLO or
//   CHALLENGE, both `[tag, version, name, ...]`); from then on a blocked peer's frames are
//   dropped both ways. The socket stays open: only silence tells, as with a real cut, so
//   the failure detector and the handshake timeout are what notice it. When the other end
//   gives up on the link and closes it, a blocked peer's close is held back too (a real cut
//   drops the FIN): it is reported when this end gives up (destroy/close) or the block is
//   lifted.
// - A slowed peer's outgoing frames wait `ms` before they are written, in order.
// - A cut is symmetric only if both ends block each other: the harness tells every node.
import { decodeStrict } from './codec.js';
import type { CloseInfo, Transport } from './transport.js';

export const FAULT_HOOK_ENV = 'EXPIRABLE_STORE_FAULT_HOOK';

export class FaultHook {
  /** Peers whose frames are dropped, both ways. */
  readonly #blocked = new Set<string>();
  /** Delay (ms) of frames sent to each slowed peer. */
  readonly #delay = new Map<string, number>();

  /** Drops every frame to and from these peers from now on (replaces the previous set). */
  block(peers: Iterable<string>): void {
    this.#blocked.clear();
    for (const p of peers) this.#blocked.add(p);
  }

  /** Delays the frames sent to these peers by `ms` (replaces the previous delays). */
  slow(peers: Iterable<string>, ms: number): void {
    this.#delay.clear();
    if (ms > 0) for (const p of peers) this.#delay.set(p, ms);
  }

  isBlocked(peer: string): boolean {
    return this.#blocked.has(peer);
  }

  delayOf(peer: string): number {
    return this.#delay.get(peer) ?? 0;
  }

  /** The link as the mesh should use it. */
  wrap(transport: Transport): Transport {
    return new FaultyTransport(transport, this);
  }
}

/** The hook of this process, or undefined when fault injection is off. */
export const faultHook: FaultHook | undefined = process.env[FAULT_HOOK_ENV] === '1' ? new FaultHook() : undefined;

class FaultyTransport implements Transport {
  onFrame: (payload: Uint8Array) => void = () => {};
  onClose: (info: CloseInfo) => void = () => {};
  readonly #inner: Transport;
  readonly #hook: FaultHook;
  /** The peer's name, once its first frame told it. */
  #peer: string | undefined = undefined;
  /** Delayed sends, in order: a frame never overtakes an earlier one. */
  readonly #queue: { at: number; buf: Uint8Array }[] = [];
  #timer: NodeJS.Timeout | undefined = undefined;
  /** A close that came while the peer was blocked, not reported yet. */
  #heldClose: CloseInfo | undefined = undefined;
  #holdTimer: NodeJS.Timeout | undefined = undefined;
  #reported = false;
  /** This end gave up on the link (destroy or close): its close is reported at once. */
  #ended = false;

  constructor(inner: Transport, hook: FaultHook) {
    this.#inner = inner;
    this.#hook = hook;
    inner.onFrame = (payload) => {
      if (this.#peer === undefined) this.#learn(payload);
      if (this.#peer !== undefined && hook.isBlocked(this.#peer)) return;
      this.onFrame(payload);
    };
    inner.onClose = (info) => {
      clearTimeout(this.#timer);
      this.#queue.length = 0;
      if (!this.#ended && this.#peer !== undefined && hook.isBlocked(this.#peer)) {
        this.#heldClose = info;
        this.#holdTimer = setInterval(() => {
          if (!hook.isBlocked(this.#peer!)) this.#report(info);
        }, 50);
        return;
      }
      this.#report(info);
    };
  }

  #report(info: CloseInfo): void {
    clearInterval(this.#holdTimer);
    this.#heldClose = undefined;
    if (this.#reported) return;
    this.#reported = true;
    this.onClose(info);
  }

  #learn(payload: Uint8Array): void {
    try {
      const msg = decodeStrict(payload);
      if (Array.isArray(msg) && typeof msg[2] === 'string') this.#peer = msg[2];
    } catch {
      // not a handshake frame: the handshake itself will refuse it
    }
  }

  send(buf: Uint8Array): void {
    const peer = this.#peer;
    if (peer === undefined) return this.#inner.send(buf);
    if (this.#hook.isBlocked(peer)) return;
    const ms = this.#hook.delayOf(peer);
    if (ms === 0 && this.#queue.length === 0) return this.#inner.send(buf);
    const last = this.#queue.at(-1)?.at ?? 0;
    this.#queue.push({ at: Math.max(Date.now() + ms, last), buf });
    if (this.#timer === undefined) this.#arm();
  }

  #arm(): void {
    const head = this.#queue[0];
    this.#timer = head === undefined ? undefined : setTimeout(this.#pump, Math.max(0, head.at - Date.now()));
  }

  #pump = (): void => {
    const now = Date.now();
    while (this.#queue.length > 0 && this.#queue[0]!.at <= now) this.#inner.send(this.#queue.shift()!.buf);
    this.#arm();
  };

  close(): Promise<void> {
    this.#ended = true;
    if (this.#heldClose) this.#report({ reason: 'local_close' });
    return this.#inner.close();
  }

  destroy(reason: string, error?: Error): void {
    this.#ended = true;
    if (this.#heldClose) this.#report(error ? { reason, error } : { reason });
    this.#inner.destroy(reason, error);
  }

  get bufferedAmount(): number {
    return this.#inner.bufferedAmount;
  }

  get maxFrameSize(): number {
    return this.#inner.maxFrameSize;
  }
  set maxFrameSize(n: number) {
    this.#inner.maxFrameSize = n;
  }

  get remote(): string {
    return this.#inner.remote;
  }

  get closed(): boolean {
    return this.#heldClose === undefined && this.#inner.closed;
  }
}
