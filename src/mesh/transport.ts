// The transport abstraction: a duplex of frames between this node and one other endpoint.
// The protocol code (handshake, connection, mesh, remote calls) speaks only to this
// interface; TCP (./tcp-transport.ts) is one implementation, and a TLS or MessagePort
// transport plugs in the same way, by implementing `Transport` (and, for transports that
// are dialled by address, `TransportFactory`).
//
// Contract of an implementation:
// - `send(buf)` takes a buffer from the codec: FRAME_HEADER_SIZE bytes of headroom (the
//   length prefix, already written) followed by the payload. A byte-stream transport writes
//   `buf` as is; a message transport may post `buf.subarray(FRAME_HEADER_SIZE)`. The buffer
//   is the transport's from then on. Frames arrive at the other end whole, once, in order.
// - `onFrame(payload)` receives each payload; the view is valid only during the call.
// - `onClose(reason)` runs exactly once, when the link is gone for any cause (either side
//   closed it, a fault, an oversize or bad frame); nothing is delivered after it.
// - `close()` flushes what was sent and ends the link; `destroy(reason)` drops it at once.
// - `bufferedAmount` is the bytes handed to the socket (or port) but not yet to the OS (the
//   back-pressure signal the failure detector watches); frames sent in the current tick
//   and not yet written may not count.
// - `maxFrameSize` bounds incoming payloads; the owner lowers it before authentication.

/** Why a link closed: a short machine-readable reason and, for faults, the error. */
export interface CloseInfo {
  reason: string;
  error?: Error;
}

export interface Transport {
  /** Writes one frame (codec buffer with headroom). Silently dropped once closed. */
  send(buf: Uint8Array): void;
  /** Receives each incoming payload; set by the owner, may be swapped between frames. */
  onFrame: (payload: Uint8Array) => void;
  /** Runs once when the link is gone. */
  onClose: (info: CloseInfo) => void;
  /** Flushes and ends the link; resolves when it is closed. */
  close(): Promise<void>;
  /** Drops the link at once with `reason`. */
  destroy(reason: string, error?: Error): void;
  /** Bytes sent but not yet written out. */
  readonly bufferedAmount: number;
  /**
   * Total bytes received so far, if the transport can tell. Optional: when present, bytes
   * arriving inside a large frame count as a sign of life, so a frame that takes longer
   * than `failureTimeout` to arrive does not make its sender look dead.
   */
  readonly bytesReceived?: number;
  /** Largest incoming payload accepted, in bytes. */
  maxFrameSize: number;
  /** A description of the other end, for logs (e.g. `127.0.0.1:51234`). */
  readonly remote: string;
  readonly closed: boolean;
}

/** A listening endpoint made by a TransportFactory. */
export interface Listener {
  /** The address peers dial (`host:port`). */
  readonly address: string;
  close(): Promise<void>;
}

/** Makes transports for a kind of address (TCP, TLS…). */
export interface TransportFactory {
  /** Listens; `onTransport` receives each inbound link. */
  listen(host: string, port: number, onTransport: (t: Transport) => void): Promise<Listener>;
  /** Dials `host:port`; rejects when the link cannot be made. */
  dial(address: string, timeout: number): Promise<Transport>;
}

/** Splits `host:port` (IPv6 hosts may be bracketed). */
export function parseAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  let host = address.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(address.slice(i + 1)) };
}

/** Joins host and port into an address. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
