// Hostile bytes on a node's port and oversize frames from an authenticated peer: only the
// offending link closes; the node keeps serving its peers.
import net from 'node:net';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { startNode, type Node } from '../src/node.js';
import type { Mesh } from '../src/mesh/mesh.js';
import { spawnPeer } from './helpers/peers.js';
import { FIXTURES } from './helpers/fixtures.js';
import { rawPeer } from './helpers/raw-peer.js';
import { encode } from '../src/mesh/codec.js';
import { Tag } from '../src/mesh/protocol.js';

type Ref = { node: string; id: string };
const OPTS = { cookie: 'mesh-garbage-cookie', heartbeatInterval: 100, failureTimeout: 3000 };

/** Opens a connection, writes `bytes`, and resolves when the link is closed (by either side). */
function throwBytes(port: number, bytes: Uint8Array, end = true): Promise<'closed'> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.write(bytes);
      if (end) socket.end();
    });
    socket.on('error', () => {});
    socket.on('data', () => {});
    socket.once('close', () => resolve('closed'));
  });
}

const echoBehavior = {
  init: () => 0,
  handleCall: (msg: unknown, state: number) => ({ reply: msg, state: state + 1 }),
};

async function expectServing(node: Node, peer: Awaited<ReturnType<typeof spawnPeer>>): Promise<void> {
  expect(node.nodes()).toContain(peer.name);
  const here = node.spawn(echoBehavior);
  expect(await peer.run(FIXTURES, 'call', { node: here.node, id: here.id }, 'still here?')).toBe('still here?');
  const there = await peer.run<Ref>(FIXTURES, 'spawnCounter');
  expect(await node.ref(there).call({ add: 5 })).toBe(5);
}

describe('garbage on the port', () => {
  test('10,000 random byte strings and a 0xFFFFFFFF length prefix: the node keeps serving its peers', async () => {
    await using node = await startNode({ ...OPTS, port: 0, name: 'garbage-target' });
    await using peer = await spawnPeer();
    await peer.start({ ...OPTS, name: 'garbage-peer', seeds: [node.address!] });
    await node.onNodeUp(peer.name);
    const port = Number(node.address!.split(':').pop());

    // A length prefix of 0xFFFFFFFF: the node closes that link itself, without waiting for the bytes.
    const hugePrefix = new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
    expect(await throwBytes(port, hugePrefix, false)).toBe('closed');

    const inputs = fc.sample(
      fc.oneof(
        fc.uint8Array({ minLength: 0, maxLength: 64 }),
        // A plausible small length prefix followed by junk, to get past the framing.
        fc.tuple(fc.integer({ min: 0, max: 40 }), fc.uint8Array({ maxLength: 40 })).map(([n, body]) => {
          const out = new Uint8Array(4 + body.length);
          new DataView(out.buffer).setUint32(0, n);
          out.set(body, 4);
          return out;
        }),
      ),
      { numRuns: 10_000, seed: 4242 },
    );
    const batch = 200;
    for (let i = 0; i < inputs.length; i += batch) {
      await Promise.all(inputs.slice(i, i + batch).map((bytes) => throwBytes(port, bytes)));
    }
    expect((node.membership as Mesh).debugInfo().handshakes).toBe(0);
    expect(node.nodes()).toEqual([peer.name]);
    await expectServing(node, peer);
    expect(peer.events.some((e) => e.type === 'nodedown')).toBe(false);
  });
});

describe('oversize frames', () => {
  // A real node never sends such a frame (it checks the receiver's limit first, see
  // mesh-wire.test.ts); a raw peer that ignores the limit is cut off by the framing.
  test('an authenticated peer that sends a frame above maxFrameSize loses that link only', async () => {
    await using node = await startNode({ ...OPTS, port: 0, name: 'small-frames', maxFrameSize: 64 * 1024 });
    await using other = await spawnPeer();
    await other.start({ ...OPTS, port: 0, name: 'bystander', seeds: [node.address!] });
    await node.onNodeUp(other.name);
    const echo = node.spawn(echoBehavior, { name: 'echo' });
    const downs: [string, string][] = [];
    node.on('nodedown', (n, reason) => downs.push([n, reason]));
    const big = await rawPeer(node, 'big-sender', OPTS.cookie, () => {});
    const bigDown = node.onNodeDown('big-sender');
    const bigClosed = new Promise<string>((r) => (big.onClose = (info) => r(info.reason)));
    big.send(encode([Tag.CALL, 1, echo.id, 'x'.repeat(100 * 1024)]));
    expect(await bigDown).toBe('frame_too_large');
    await bigClosed;
    expect(downs).toEqual([['big-sender', 'frame_too_large']]);
    // The bystander never noticed, and both links to it still work.
    await expectServing(node, other);
    expect(other.events.some((e) => e.type === 'nodedown')).toBe(false);
    // A frame under the limit goes through on a new link.
    const replies: unknown[][] = [];
    let got!: () => void;
    const replied = new Promise<void>((r) => (got = r));
    const again = await rawPeer(node, 'big-sender', OPTS.cookie, (_t, m) => {
      if (m[0] !== Tag.REPLY) return;
      replies.push(m);
      got();
    });
    again.send(encode([Tag.CALL, 2, echo.id, 'small']));
    await replied;
    expect(replies).toEqual([[Tag.REPLY, 2, 'small']]);
    again.destroy('done');
  });
});
