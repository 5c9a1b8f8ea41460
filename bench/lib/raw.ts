// The physical floors: a raw `net` ping-pong of length-prefixed frames between two
// processes and a raw MessagePort ping-pong between two threads, with nothing of ours on
// the path. Latencies go into an HDR histogram in nanoseconds.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { encodeHistogram, newHistogram } from './stats.js';

/** A length-prefixed frame: 4-byte big-endian length, then the payload. */
export function frameOf(payload: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(4 + payload.length);
  b.writeUInt32BE(payload.length, 0);
  b.set(payload, 4);
  return b;
}

/** Calls `onFrame` with each complete frame (header included) of a byte stream. */
export function frameSplitter(onFrame: (frame: Buffer) => void): (chunk: Buffer) => void {
  let buf: Buffer = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (buf.length >= 4) {
      const len = 4 + buf.readUInt32BE(0);
      if (buf.length < len) break;
      onFrame(buf.subarray(0, len));
      buf = buf.subarray(len);
    }
  };
}

/** A TCP server on 127.0.0.1 that echoes every frame back. Resolves with it and its port. */
export async function startEchoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((sock) => {
    sock.setNoDelay(true);
    sock.on('data', frameSplitter((f) => sock.write(f)));
    sock.on('error', () => sock.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return { server, port: addr.port };
}

export interface PingPongResult {
  /** Encoded HDR histogram of round trips, ns. */
  histogram: string;
  count: number;
  elapsedNs: number;
}

/** Sends `frame`, waits for its echo, again, for `durationMs`; records every round trip. */
export async function tcpPingPong(port: number, frame: Buffer, durationMs: number, warmupMs = 200): Promise<PingPongResult> {
  const sock: Socket = connect({ port, host: '127.0.0.1', noDelay: true });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  try {
    let waiting: (() => void) | undefined;
    sock.on('data', frameSplitter(() => waiting?.()));
    const once = (): Promise<void> =>
      new Promise<void>((resolve) => {
        waiting = resolve;
        sock.write(frame);
      });
    return await timedLoop(once, durationMs, warmupMs);
  } finally {
    sock.destroy();
  }
}

/** Runs `once` back to back for `durationMs` after a warm-up, recording each duration (ns). */
export async function timedLoop(once: () => Promise<unknown>, durationMs: number, warmupMs = 200): Promise<PingPongResult> {
  const h = newHistogram();
  const now = process.hrtime.bigint;
  let end = now() + BigInt(Math.round(warmupMs * 1e6));
  while (now() < end) await once();
  const start = now();
  end = start + BigInt(Math.round(durationMs * 1e6));
  let count = 0;
  let t = start;
  while (t < end) {
    const t0 = t;
    await once();
    t = now();
    h.recordValue(Number(t - t0));
    count++;
  }
  return { histogram: encodeHistogram(h), count, elapsedNs: Number(t - start) };
}

/**
 * Runs `once` every `gapMs` for `durationMs`, both ends idle in between (as Redis and a replica
 * are between two refreshes): waking them is part of each round trip, which on a busy 2-vCPU
 * machine costs far more than a hot one. Records each duration (ns); the first run, which
 * opens the path, is left out.
 */
export async function idleLoop(once: () => Promise<unknown>, durationMs: number, gapMs: number): Promise<PingPongResult> {
  const h = newHistogram();
  const now = process.hrtime.bigint;
  await once();
  const start = now();
  const end = Date.now() + durationMs;
  let count = 0;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, gapMs));
    const t0 = now();
    await once();
    h.recordValue(Math.max(1, Number(now() - t0)));
    count++;
  }
  return { histogram: encodeHistogram(h), count, elapsedNs: Number(now() - start) };
}

const ECHO_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const port = workerData.port;
port.on('message', (m) => port.postMessage(m));
parentPort.postMessage('ready');
`;

/** A worker thread that echoes on a MessagePort; ping-pongs `payload` with it for `durationMs`. */
export async function messagePortPingPong(payload: Uint8Array, durationMs: number, warmupMs = 200): Promise<PingPongResult> {
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(ECHO_WORKER, { eval: true, workerData: { port: port2 }, transferList: [port2] });
  try {
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    const port: MessagePort = port1;
    let waiting: (() => void) | undefined;
    port.on('message', () => waiting?.());
    const once = (): Promise<void> =>
      new Promise<void>((resolve) => {
        waiting = resolve;
        port.postMessage(payload);
      });
    return await timedLoop(once, durationMs, warmupMs);
  } finally {
    port1.close();
    await worker.terminate();
  }
}
