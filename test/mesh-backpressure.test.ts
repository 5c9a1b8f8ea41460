// Back-pressure: a peer that stays connected and alive (it sends heartbeats) but stops
// reading is dropped once our write backlog stays above the high-water mark for longer
// than failureTimeout, instead of letting memory grow. The peer is a raw client that does
// the handshake by the book (docs/mesh.md), which also pins the handshake's wire format.
import net from 'node:net';
import { createHmac, randomBytes } from 'node:crypto';
import { expect, test } from 'vitest';
import { ActorSystem } from '../src/actors/system.js';
import { Mesh } from '../src/mesh/mesh.js';
import { FrameDecoder } from '../src/mesh/framing.js';
import { decodeStrict, encode, encodeStrict } from '../src/mesh/codec.js';
import { PROTOCOL_VERSION, Tag } from '../src/mesh/protocol.js';

const COOKIE = 'mesh-backpressure-cookie';

test('a peer that stops reading is dropped for back-pressure, not kept while memory grows', async () => {
  const system = new ActorSystem({ name: 'bp-node' });
  const mesh = new Mesh(system, {
    name: 'bp-node',
    cookie: COOKIE,
    port: 0,
    heartbeatInterval: 100,
    failureTimeout: 1000,
    highWaterMark: 256 * 1024,
  });
  await mesh.start();
  const socket = net.connect({ host: '127.0.0.1', port: Number(mesh.address!.split(':').pop()) });
  socket.on('error', () => {});
  try {
    await new Promise<void>((r) => socket.once('connect', () => r()));
    // Handshake as a dialer named 'bp-reader'.
    const frames: unknown[][] = [];
    let wake: () => void = () => {};
    const decoder = new FrameDecoder(1 << 20);
    const onData = (chunk: Buffer): void =>
      decoder.push(chunk, (f) => {
        frames.push(decodeStrict(f) as unknown[]);
        wake();
      });
    socket.on('data', onData);
    const next = async (): Promise<unknown[]> => {
      while (frames.length === 0) await new Promise<void>((r) => (wake = r));
      return frames.shift()!;
    };
    const nonce = randomBytes(32);
    socket.write(encodeStrict([Tag.HELLO, PROTOCOL_VERSION, 'bp-reader', 'inc-1', nonce, 16 << 20]));
    const [tag, , name, , peerNonce] = await next();
    expect([tag, name]).toEqual([Tag.CHALLENGE, 'bp-node']);
    const proof = createHmac('sha256', COOKIE)
      .update('dial')
      .update('\0')
      .update(peerNonce as Uint8Array)
      .update(nonce)
      .update('\0bp-reader\0bp-node')
      .digest();
    socket.write(encodeStrict([Tag.AUTH, proof]));
    expect(await next()).toEqual([Tag.WELCOME, expect.any(Uint8Array)]);
    const down = new Promise<string>((resolve) => mesh.on('nodedown', (_n, reason) => resolve(reason)));
    expect(mesh.nodes()).toEqual(['bp-reader']);

    // Alive but not reading: heartbeats keep going out, nothing is read any more.
    socket.off('data', onData);
    socket.pause();
    const beat = setInterval(() => socket.write(encode([Tag.HEARTBEAT])), 50);
    try {
      const chunk = 'x'.repeat(64 * 1024);
      // Far more than the kernel buffers of a loopback socket hold.
      for (let i = 0; i < 400; i++) system.cast({ node: 'bp-reader', id: 'sink' }, chunk);
      expect(await down).toBe('backpressure');
      expect(mesh.nodes()).toEqual([]);
    } finally {
      clearInterval(beat);
    }
  } finally {
    socket.destroy();
    await mesh.close();
    await system.close();
  }
});
