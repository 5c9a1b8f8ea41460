// The MessagePort transport: frames between two threads of one process (a node and the
// worker-thread nodes it started), over a `MessagePort` of `worker_threads`, with no socket.
// It implements the same `Transport` contract as TCP (see ./transport.ts), so the handshake,
// heartbeats, membership and remote calls run over it unchanged.
//
// Messages on the port:
// - a Uint8Array: one or more whole frames, each with its 4-byte length prefix (the codec
//   buffers as they are), transferred (not cloned) to the other thread;
// - null: the sender is closing gracefully (sent by `close()`, after its last frames).
//
// Invariants:
// - Frames sent in one tick are copied once into one exact-size buffer and posted in one
//   message on the next tick: one memcpy per frame and one postMessage per tick (a post
//   costs far more than a small copy). From TRANSFER_THRESHOLD bytes the buffer is
//   transferred, so the receiving thread gets it without a second copy; smaller ones are
//   cloned, which is cheaper than a transfer. The codec's buffers are never transferred:
//   they may share memory with the encoder's scratch space.
// - The receiver runs each message through a FrameDecoder, so `maxFrameSize` is enforced
//   exactly as over TCP; frames are handed out as views of the received buffer.
// - A port delivers messages in order and every message posted before `port.close()` is
//   delivered before the other side sees 'close'; so a BYE or REFUSE is never lost.
// - `bufferedAmount` is only what waits for the end of the tick: a port has no
//   kernel buffer to watch. A receiving thread that stops reading (stuck in a loop) is
//   caught by the heartbeats instead, as a silent TCP peer is.
//
// Failure handling: anything but a Uint8Array or null, a bad length, or a ProtocolError
// raised by the frame handler destroys this link only. When the other side's port goes
// away without a graceful close (its thread ended), `onClose` reports `peerGoneReason`.
import { MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { debuglog } from 'node:util';
import { ProtocolError } from '../errors.js';
import { DEFAULT_MAX_FRAME_SIZE, FrameDecoder } from './framing.js';
import type { CloseInfo, Transport } from './transport.js';

const log = debuglog('expirable-store:mesh');

/** Posts of at least this many bytes transfer their buffer instead of cloning it. */
export const TRANSFER_THRESHOLD = 16 * 1024;

export interface PortTransportOptions {
  /** Largest incoming payload, in bytes (the owner lowers it during the handshake). @default 16 MiB */
  maxFrameSize?: number;
  /** Describes the other end in logs. @default 'port' */
  remote?: string;
  /** Close reason when the other side vanishes without closing (e.g. its thread exited). @default 'connection_closed' */
  peerGoneReason?: string;
  /** Whether the open port keeps this thread's event loop alive. @default true */
  keepAlive?: boolean;
  /** Observer called once after `onClose` (which belongs to the link's current owner). */
  onEnded?: (info: CloseInfo) => void;
}

export class PortTransport implements Transport {
  onFrame: (payload: Uint8Array) => void = () => {};
  onClose: (info: CloseInfo) => void = () => {};
  readonly remote: string;
  readonly #port: MessagePort;
  readonly #decoder: FrameDecoder;
  readonly #peerGoneReason: string;
  readonly #onEnded: ((info: CloseInfo) => void) | undefined;
  /** Frames sent this tick, not yet posted. */
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  /** First reason recorded; reported by onClose. */
  #reason: CloseInfo | undefined = undefined;
  /** No more sending (close or destroy called, or the port closed). */
  #ended = false;
  #closed = false;
  readonly #closedPromise: Promise<void>;
  #resolveClosed!: () => void;

  constructor(port: MessagePort, options: PortTransportOptions = {}) {
    this.#port = port;
    this.#decoder = new FrameDecoder(options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE);
    this.remote = options.remote ?? 'port';
    this.#peerGoneReason = options.peerGoneReason ?? 'connection_closed';
    this.#onEnded = options.onEnded;
    this.#closedPromise = new Promise((resolve) => (this.#resolveClosed = resolve));
    port.on('message', this.#onMessage);
    port.once('close', this.#onPortClose);
    if (options.keepAlive === false) port.unref();
  }

  #onMessage = (data: unknown): void => {
    if (this.#closed) return;
    if (data === null) {
      // The other side closes gracefully; its frames before this one were delivered.
      this.#reason ??= { reason: 'connection_closed' };
      this.#shut();
      return;
    }
    if (!(data instanceof Uint8Array)) {
      this.destroy('bad_message', new ProtocolError('bad_message', `unexpected ${typeof data} on the port`));
      return;
    }
    try {
      this.#decoder.push(data, (frame) => {
        if (!this.#closed && !this.#ended) this.onFrame(frame);
      });
    } catch (err) {
      const reason = err instanceof ProtocolError ? err.reason : 'internal_error';
      log('closing link to %s: %s', this.remote, (err as Error)?.message);
      this.destroy(reason, err as Error);
    }
  };

  #onPortClose = (): void => {
    if (this.#closed) return;
    this.#closed = true;
    this.#ended = true;
    this.#queue = [];
    this.#queuedBytes = 0;
    const info = this.#reason ?? { reason: this.#peerGoneReason };
    this.onFrame = () => {};
    try {
      this.onClose(info);
    } finally {
      this.#resolveClosed();
      this.#onEnded?.(info);
    }
  };

  get maxFrameSize(): number {
    return this.#decoder.maxFrameSize;
  }
  set maxFrameSize(n: number) {
    this.#decoder.maxFrameSize = n;
  }

  get bufferedAmount(): number {
    return this.#queuedBytes;
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(buf: Uint8Array): void {
    if (this.#ended) return;
    if (this.#queue.length === 0) process.nextTick(this.#flush);
    this.#queue.push(buf);
    this.#queuedBytes += buf.length;
  }

  #flush = (): void => {
    const queue = this.#queue;
    if (queue.length === 0 || this.#closed) return;
    const out = new Uint8Array(this.#queuedBytes);
    let pos = 0;
    for (const buf of queue) {
      out.set(buf, pos);
      pos += buf.length;
    }
    this.#queue = [];
    this.#queuedBytes = 0;
    // Small buffers are cheaper to clone than to transfer (measured: about 1 µs a message).
    if (out.length >= TRANSFER_THRESHOLD) this.#port.postMessage(out, [out.buffer]);
    else this.#port.postMessage(out);
  };

  /**
   * Handles, synchronously, every message already queued on the port. Called before
   * declaring the other side gone (its thread exited): what it posted before dying, a BYE
   * included, is not overtaken by the exit.
   */
  drain(): void {
    while (!this.#ended) {
      const got = receiveMessageOnPort(this.#port);
      if (!got) return;
      this.#onMessage(got.message);
    }
  }

  close(): Promise<void> {
    if (!this.#ended) {
      this.#reason ??= { reason: 'local_close' };
      this.#flush();
      this.#port.postMessage(null);
      this.#shut();
    }
    return this.#closedPromise;
  }

  destroy(reason: string, error?: Error): void {
    this.#reason ??= error ? { reason, error } : { reason };
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#shut();
  }

  /** Closes the port; 'close' then fires on both sides (here it reports `#reason`). */
  #shut(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#port.close();
  }
}

/** Two linked transports in this thread (tests, benchmarks); move one port's end elsewhere with `MessageChannel` directly. */
export function portTransportPair(options: PortTransportOptions = {}): [PortTransport, PortTransport] {
  const { port1, port2 } = new MessageChannel();
  return [
    new PortTransport(port1, { remote: 'port2', ...options }),
    new PortTransport(port2, { remote: 'port1', ...options }),
  ];
}
