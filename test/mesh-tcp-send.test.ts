// The TCP transport's send path: the first frame of a tick is written at once (it does not
// wait for the rest of the tick), and the frames sent after it in the same tick follow at the
// end of the tick, whole and in order. The receiving end is a plain socket in a worker thread,
// so it reads while this thread is still busy in the tick that sent; it counts the frames it
// got in shared memory, which this thread reads without leaving its tick.
import { afterEach, describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { encode } from '../src/mesh/codec.js';
import { tcpTransportFactory } from '../src/mesh/tcp-transport.js';
import type { Transport } from '../src/mesh/transport.js';

// A worker with a plain TCP server on port 0: posts its port, then each frame's payload, and
// counts frames in workerData.count[0].
const RECEIVER = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const count = new Int32Array(workerData.count);
const server = net.createServer((s) => {
  let buf = Buffer.alloc(0);
  s.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      if (buf.length < 4 + len) break;
      Atomics.add(count, 0, 1);
      parentPort.postMessage(Uint8Array.from(buf.subarray(4, 4 + len)));
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

async function connected(): Promise<{ t: Transport; count: Int32Array; frames: Uint8Array[]; all: (n: number) => Promise<void> }> {
  const count = new Int32Array(new SharedArrayBuffer(4));
  worker = new Worker(RECEIVER, { eval: true, workerData: { count: count.buffer } });
  const [{ port }] = (await once(worker, 'message')) as [{ port: number }];
  const frames: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  worker.on('message', (m: Uint8Array) => {
    frames.push(m);
    wake?.();
  });
  transport = await tcpTransportFactory({ maxFrameSize: 1 << 20 }).dial(`127.0.0.1:${port}`, 5000);
  const all = async (n: number): Promise<void> => {
    while (frames.length < n) await new Promise<void>((r) => (wake = r));
  };
  return { t: transport, count, frames, all };
}

/** Spins in this tick until `cond` holds or `ms` pass; whether it held. */
function spinUntil(cond: () => boolean, ms: number): boolean {
  const end = performance.now() + ms;
  while (performance.now() < end) if (cond()) return true;
  return cond();
}

describe('TCP transport: send', () => {
  it('the first frame of a tick reaches the other end while the sending tick still runs', async () => {
    const { t, count } = await connected();
    t.send(encode([1]));
    expect(spinUntil(() => Atomics.load(count, 0) >= 1, 5000)).toBe(true);
  });

  it('frames sent in one tick arrive whole and in order: the first at once, the rest at the end of the tick', async () => {
    const { t, count, frames, all } = await connected();
    const sent = Array.from({ length: 200 }, (_, i) => encode([i, 'x'.repeat(i * 50)]));
    for (const f of sent) t.send(f);
    expect(spinUntil(() => Atomics.load(count, 0) >= 1, 5000)).toBe(true);
    // Still in the sending tick: nothing after the first frame has left.
    spinUntil(() => false, 100);
    expect(Atomics.load(count, 0)).toBe(1);
    await all(sent.length);
    expect(frames.map((f) => Buffer.from(f).toString('hex'))).toEqual(sent.map((f) => Buffer.from(f.subarray(4)).toString('hex')));
    // A later tick starts a new burst: its first frame goes at once again.
    t.send(encode(['again']));
    expect(spinUntil(() => Atomics.load(count, 0) >= sent.length + 1, 5000)).toBe(true);
  });
});
