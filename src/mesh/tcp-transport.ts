// The plain-TCP transport: frames over a net.Socket (see ./transport.ts for the contract).
//
// - Reading: every chunk goes through one FrameDecoder (linear, no re-concatenation). A bad
//   length, or any ProtocolError raised by the frame handler, destroys this socket only.
// - Writing: the first frame sent in a tick is written at once (Nagle is off, so it leaves
//   now: a lone frame, a join or a reply, does not wait for the rest of the tick); frames
//   sent after it in the same tick are written together at the end of the tick, in one
//   write: copied into one buffer when small (cheaper than a writev of several), corked
//   into one writev when large. So a burst costs at most two writes per tick, in order.
// - Closing: `onClose` runs once, from the socket's 'close' event, with the first reason
//   recorded (our own destroy reason, a socket error code, or 'connection_closed' when the other end closed it).
import net from 'node:net';
import { debuglog } from 'node:util';
import { ProtocolError } from '../errors.js';
import { FrameDecoder } from './framing.js';
import { formatAddress, parseAddress, type CloseInfo, type Listener, type Transport, type TransportFactory } from './transport.js';

const log = debuglog('expirable-store:mesh');

/** Frames of one tick up to this many bytes in all are copied into one buffer and written at once. */
const COALESCE_MAX_BYTES = 16 * 1024;

/** How long a graceful close may take before the socket is destroyed. */
const CLOSE_GRACE_MS = 1000;

export class TcpTransport implements Transport {
  onFrame: (payload: Uint8Array) => void = () => {};
  onClose: (info: CloseInfo) => void = () => {};
  readonly remote: string;
  readonly #socket: net.Socket;
  readonly #decoder: FrameDecoder;
  /** First reason recorded; reported by onClose. */
  #reason: CloseInfo | undefined = undefined;
  #closed = false;
  /** A frame was written in this tick: later ones wait in #pending for the end of the tick. */
  #burst = false;
  /** Frames sent in this tick after the first, written together at its end. */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  readonly #closedPromise: Promise<void>;

  constructor(socket: net.Socket, maxFrameSize: number) {
    this.#socket = socket;
    this.#decoder = new FrameDecoder(maxFrameSize);
    this.remote = formatAddress(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
    socket.setNoDelay(true);
    this.#closedPromise = new Promise((resolve) => {
      socket.once('close', () => {
        this.#closed = true;
        const info = this.#reason ?? { reason: 'connection_closed' };
        this.onFrame = () => {};
        try {
          this.onClose(info);
        } finally {
          resolve();
        }
      });
    });
    socket.on('data', this.#onData);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.#reason ??= { reason: err.code ?? 'socket_error', error: err };
    });
  }

  #onData = (chunk: Buffer): void => {
    if (this.#closed || this.#socket.destroyed) return;
    try {
      this.#decoder.push(chunk, (frame) => {
        if (!this.#socket.destroyed) this.onFrame(frame);
      });
    } catch (err) {
      const reason = err instanceof ProtocolError ? err.reason : 'internal_error';
      log('closing link to %s: %s', this.remote, (err as Error)?.message);
      this.destroy(reason, err as Error);
    }
  };

  get maxFrameSize(): number {
    return this.#decoder.maxFrameSize;
  }
  set maxFrameSize(n: number) {
    this.#decoder.maxFrameSize = n;
  }

  get bufferedAmount(): number {
    return this.#socket.writableLength;
  }

  get bytesReceived(): number {
    return this.#socket.bytesRead;
  }

  get closed(): boolean {
    return this.#closed || this.#socket.destroyed;
  }

  send(buf: Uint8Array): void {
    const socket = this.#socket;
    if (socket.destroyed || socket.writableEnded) return;
    if (!this.#burst) {
      this.#burst = true;
      process.nextTick(this.#flush);
      socket.write(buf);
      return;
    }
    this.#pending.push(buf);
    this.#pendingBytes += buf.length;
  }

  // The end of a tick in which a frame was written: the frames sent after it go out in one
  // write; small ones are copied into one buffer (cheaper than a writev of several,
  // measured), large ones go out corked as one writev.
  #flush = (): void => {
    this.#burst = false;
    const frames = this.#pending;
    if (frames.length === 0) return;
    const bytes = this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    const socket = this.#socket;
    if (socket.destroyed || socket.writableEnded) return;
    if (frames.length === 1) {
      socket.write(frames[0]!);
    } else if (bytes <= COALESCE_MAX_BYTES) {
      socket.write(Buffer.concat(frames, bytes));
    } else {
      socket.cork();
      for (const f of frames) socket.write(f);
      socket.uncork();
    }
  };

  close(): Promise<void> {
    if (!this.closed) {
      this.#reason ??= { reason: 'local_close' };
      this.#flush();
      this.#socket.end();
      setTimeout(() => this.#socket.destroy(), CLOSE_GRACE_MS).unref();
    }
    return this.#closedPromise;
  }

  destroy(reason: string, error?: Error): void {
    this.#reason ??= error ? { reason, error } : { reason };
    this.#socket.destroy();
  }
}

/** Starts `server` (plain or TLS) on host:port; later listener errors are logged, not thrown. */
export function listenOn(server: net.Server, host: string, port: number): Promise<Listener> {
  return new Promise<Listener>((resolve, reject) => {
    server.once('error', reject);
    // exclusive: in a node:cluster worker, listen() would otherwise share one handle (and,
    // for port 0, one port) with every other worker, and a peer dialling one worker's address
    // could reach another.
    server.listen({ port, host, exclusive: true }, () => {
      server.off('error', reject);
      server.on('error', (err) => log('listener error: %s', err.message));
      const addr = server.address() as net.AddressInfo;
      resolve({
        address: formatAddress(host, addr.port),
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}

/** Plain TCP: listen on host:port, dial host:port. */
export function tcpTransportFactory(options: { maxFrameSize: number }): TransportFactory {
  return {
    listen(host, port, onTransport) {
      return new Promise<Listener>((resolve, reject) => {
        const server = net.createServer((socket) => onTransport(new TcpTransport(socket, options.maxFrameSize)));
        listenOn(server, host, port).then(resolve, reject);
      });
    },
    dial(address, timeout) {
      const { host, port } = parseAddress(address);
      return new Promise<Transport>((resolve, reject) => {
        const socket = net.connect({ host, port });
        const timer = setTimeout(() => {
          socket.destroy();
          reject(new Error(`connect to ${address} timed out after ${timeout} ms`));
        }, timeout);
        timer.unref();
        socket.once('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
        socket.once('connect', () => {
          clearTimeout(timer);
          socket.removeAllListeners('error');
          resolve(new TcpTransport(socket, options.maxFrameSize));
        });
      });
    },
  };
}
