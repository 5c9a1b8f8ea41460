// The TCP transport's send path: the first frame of a tick is written at once (it does not
// wait for the rest of the tick), and the frames sent after it in the same tick follow, whole
// and in order. The receiving end is a plain socket in a worker thread, so it reads while
// this thread is still busy in the tick that sent.
import { afterEach, describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { encode } from '../src/mesh/codec.js';
import { tcpTransportFactory } from '../src/mesh/tcp-transport.js';
import type { Transport } from '../src/mesh/transport.js';

// A worker with a plain TCP server on port 0: posts its port, then each frame's payload
// (msgpack of [i]) with the wall-clock time (ms) it arrived.
const RECEIVER = `
const { parentPort } = require('node:worker_threads');
const net = require('node:net');
const server = net.createServer((s) => {
  let buf = Buffer.alloc(0);
  s.on('data', (chunk) => {
    const at = performance.timeOrigin + performance.now();
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      if (buf.length < 4 + len) break;
      parentPort.postMessage({ at, payload: Uint8Array.from(buf.subarray(4, 4 + len)) });
      buf = buf.subarray(4 + len);
    }
  });
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }));
`;

let worker: Worker | undefined;
let transport: Transport | undefined;
afterEach(async () => {
  transport?.destroy('test_over');
  await worker?.terminate();
  worker = transport = undefined;
});

async function connected(): Promise<{ t: Transport; frames: { at: number; payload: Uint8Array }[]; next: () => Promise<void> }> {
  worker = new Worker(RECEIVER, { eval: true });
  const [{ port }] = (await once(worker, 'message')) as [{ port: number }];
  const frames: { at: number; payload: Uint8Array }[] = [];
  let wake: (() => void) | undefined;
  worker.on('message', (m: { at: number; payload: Uint8Array }) => {
    frames.push(m);
    wake?.();
  });
  const t = await tcpTransportFactory({ maxFrameSize: 1 << 20 }).dial(`127.0.0.1:${port}`, 5000);
  transport = t;
  const next = () => new Promise<void>((r) => (wake = r));
  return { t, frames, next };
}

const busyFor = (ms: number): number => {
  const end = performance.timeOrigin + performance.now() + ms;
  while (performance.timeOrigin + performance.now() < end);
  return performance.timeOrigin + performance.now();
};

describe('TCP transport: send', () => {
  it('the first frame of a tick reaches the other end while the sending tick still runs', async () => {
    const { t, frames, next } = await connected();
    t.send(encode([1]));
    // This thread stays busy for 300 ms in the tick that sent; the worker reads meanwhile.
    const tickEnd = busyFor(300);
    while (frames.length < 1) await next();
    expect(frames[0]!.at).toBeLessThan(tickEnd);
  });

  it('frames sent in one tick arrive whole and in order, the first at once, the rest at the end of the tick', async () => {
    const { t, frames, next } = await connected();
    const sent = Array.from({ length: 200 }, (_, i) => encode([i, 'x'.repeat(i * 50)]));
    for (const f of sent) t.send(f);
    const tickEnd = busyFor(200);
    while (frames.length < sent.length) await next();
    expect(frames.map((f) => Buffer.from(f.payload).toString('hex'))).toEqual(sent.map((f) => Buffer.from(f.subarray(4)).toString('hex')));
    expect(frames[0]!.at).toBeLessThan(tickEnd);
    expect(frames.at(-1)!.at).toBeGreaterThanOrEqual(tickEnd);
    // The next tick starts a new burst: its first frame goes at once again.
    t.send(encode(['again']));
    const again = busyFor(200);
    while (frames.length < sent.length + 1) await next();
    expect(frames.at(-1)!.at).toBeLessThan(again);
  });
});
