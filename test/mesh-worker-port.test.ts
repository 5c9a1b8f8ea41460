// The MessagePort transport on its own (two ends in this thread): the Transport contract
// the mesh relies on, without threads.
import { MessageChannel } from 'node:worker_threads';
import { describe, expect, test, vi } from 'vitest';
import { PortTransport, portTransportPair } from '../src/mesh/port-transport.js';
import { encode, decode } from '../src/mesh/codec.js';
import { FRAME_HEADER_SIZE } from '../src/mesh/framing.js';
import type { CloseInfo } from '../src/mesh/transport.js';

const frames = (t: PortTransport): unknown[] => {
  const got: unknown[] = [];
  t.onFrame = (p) => got.push(decode(p, undefined));
  return got;
};
const closed = (t: PortTransport): Promise<CloseInfo> => new Promise((resolve) => (t.onClose = resolve));
/** How long `expect.poll` / `vi.waitFor` wait for frames to cross the port, and how often they look. */
const WAIT = { timeout: 20_000, interval: 1 };

describe('PortTransport', () => {
  test('frames arrive whole, once, in order; frames of one tick travel in one message', async () => {
    const [a, b] = portTransportPair();
    const got = frames(b);
    // A raw port on the far side of one transport counts the messages posted.
    const messages: number[] = [];
    const { port1, port2: y } = new MessageChannel();
    y.on('message', (m: Uint8Array) => messages.push(m.length));
    const x = new PortTransport(port1);
    for (let i = 0; i < 100; i++) a.send(encode([20, i, 'msg', { i }]));
    for (let i = 0; i < 3; i++) x.send(encode([i]));
    await vi.waitFor(() => {
      expect(got).toHaveLength(100);
      expect(messages.length).toBeGreaterThan(0);
    }, WAIT);
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => [20, i, 'msg', { i }]));
    expect(messages).toHaveLength(1);
    expect(messages[0]).toBe(3 * (FRAME_HEADER_SIZE + 2));
    x.destroy('test');
    y.close();
    await Promise.all([a.close(), b.close()]);
  });

  test("a large frame crosses intact; the encoder's memory is copied, never transferred away", async () => {
    const [a, b] = portTransportPair();
    const got = frames(b);
    const big = new Uint8Array(4 * 1024 * 1024).map((_, i) => i % 253);
    const buf = encode(Buffer.from(big.buffer)); // a Buffer is a msgpack bin: 5 bytes of header
    a.send(buf);
    await new Promise((r) => process.nextTick(r));
    // Posted: a transferred (detached) buffer would now have no bytes.
    expect(buf.byteLength).toBe(FRAME_HEADER_SIZE + big.length + 5);
    expect(buf.buffer.byteLength).toBeGreaterThan(0);
    await expect.poll(() => got.length, WAIT).toBe(1);
    expect(Buffer.compare(got[0] as Uint8Array, big)).toBe(0);
    await a.close();
  });

  test('close(): frames sent before it are delivered, then both ends report close once', async () => {
    const [a, b] = portTransportPair();
    const got = frames(b);
    const aClosed = closed(a);
    const bClosed = closed(b);
    a.send(encode(['last words']));
    await a.close();
    expect(await aClosed).toEqual({ reason: 'local_close' });
    expect(await bClosed).toEqual({ reason: 'connection_closed' });
    expect(got).toEqual([['last words']]);
    expect(a.closed && b.closed).toBe(true);
    a.send(encode(['dropped'])); // silently dropped once closed
  });

  test('an oversize frame destroys that link only, with the framing reason', async () => {
    const [a, b] = portTransportPair();
    const got = frames(b);
    b.maxFrameSize = 64;
    const bClosed = closed(b);
    a.send(encode('x'.repeat(10)));
    a.send(encode('y'.repeat(100)));
    expect((await bClosed).reason).toBe('frame_too_large');
    expect(got).toEqual(['x'.repeat(10)]);
  });

  test('anything but a buffer on the port destroys the link (bad_message)', async () => {
    const { port1, port2 } = new MessageChannel();
    const t = new PortTransport(port1);
    const c = closed(t);
    port2.postMessage({ not: 'a frame' });
    expect((await c).reason).toBe('bad_message');
  });

  test('the other end vanishing without close() reports peerGoneReason; destroy() reports its own reason', async () => {
    const { port1, port2 } = new MessageChannel();
    const t = new PortTransport(port1, { peerGoneReason: 'worker_exited' });
    const c = closed(t);
    port2.close();
    expect(await c).toEqual({ reason: 'worker_exited' });
    const [a, b] = portTransportPair();
    const aClosed = closed(a);
    a.destroy('heartbeat_timeout');
    expect((await aClosed).reason).toBe('heartbeat_timeout');
    expect(b.closed || (await closed(b)).reason === 'connection_closed').toBe(true);
  });

  test('drain() hands over, synchronously, what is already queued on the port (a goodbye before an exit)', async () => {
    const { port1, port2 } = new MessageChannel();
    const t = new PortTransport(port1);
    const got = frames(t);
    const c = closed(t);
    const raw = encode(['bye']);
    port2.postMessage(raw.slice());
    port2.postMessage(null);
    // Give the messages time to reach port1's queue without a turn of this thread's loop.
    const until = Date.now() + 50;
    while (Date.now() < until);
    t.drain();
    expect(got).toEqual([['bye']]);
    expect(t.closed).toBe(false); // the close itself is reported by the port, a little later
    expect(await c).toEqual({ reason: 'connection_closed' });
  });

  test('a ProtocolError thrown by the frame handler closes the link with its reason', async () => {
    const [a, b] = portTransportPair();
    const { ProtocolError } = await import('../src/errors.js');
    b.onFrame = () => {
      throw new ProtocolError('bad_message', 'not a tagged array');
    };
    const c = closed(b);
    a.send(encode('hello'));
    expect((await c).reason).toBe('bad_message');
  });
});
