// Unauthenticated connections cannot pile up: inbound handshakes in progress are capped per
// remote host and overall; beyond the caps a connection is closed unanswered, and the
// capacity comes back as soon as the pending ones end.
import net from 'node:net';
import { expect, test } from 'vitest';
import { ActorSystem } from '../src/actors/system.js';
import { DEFAULT_MAX_PENDING_HANDSHAKES, DEFAULT_MAX_PENDING_HANDSHAKES_PER_HOST, Mesh } from '../src/mesh/mesh.js';
import { startNode } from '../src/node.js';

const COOKIE = 'mesh-flood-cookie';

/** Opens `n` sockets from `localAddress` that send nothing; resolves with them and a count of those the server closed. */
async function flood(port: number, localAddress: string, n: number) {
  const sockets: net.Socket[] = [];
  let closedByServer = 0;
  let onClose = () => {};
  await Promise.all(
    Array.from({ length: n }, () => {
      const s = net.connect({ host: '127.0.0.1', port, localAddress });
      s.on('error', () => {});
      s.on('close', () => {
        closedByServer++;
        onClose();
      });
      sockets.push(s);
      return new Promise<void>((r) => s.once('connect', () => r()));
    }),
  );
  const closed = async (count: number) => {
    while (closedByServer < count) await new Promise<void>((r) => (onClose = r));
  };
  return { sockets, closed, get closedByServer() { return closedByServer; } };
}

test('the defaults are documented values', () => {
  expect([DEFAULT_MAX_PENDING_HANDSHAKES, DEFAULT_MAX_PENDING_HANDSHAKES_PER_HOST]).toEqual([128, 32]);
});

// Regression: there was no cap on concurrent unauthenticated handshakes (thousands held, tens of MB).
test('pending handshakes are capped per host and overall; beyond, connections are closed; a real node joins once they end', async () => {
  const system = new ActorSystem({ name: 'flood-target' });
  const mesh = new Mesh(system, {
    name: 'flood-target',
    cookie: COOKIE,
    port: 0,
    handshakeTimeout: 30_000,
    maxPendingHandshakes: 6,
    maxPendingHandshakesPerHost: 4,
  });
  await mesh.start();
  const port = Number(mesh.address!.split(':').pop());
  try {
    const one = await flood(port, '127.0.0.1', 10);
    await one.closed(6); // 4 held for 127.0.0.1, the other 6 closed unanswered
    expect(mesh.debugInfo()).toMatchObject({ handshakes: 4, overCap: 6 });
    const two = await flood(port, '127.0.0.2', 10);
    await two.closed(8); // only 2 more fit under the overall cap of 6
    expect(mesh.debugInfo()).toMatchObject({ handshakes: 6, overCap: 14 });
    expect(one.closedByServer + two.closedByServer).toBe(14);

    // The held ones end (the client leaves): the capacity comes back.
    for (const s of [...one.sockets, ...two.sockets]) s.destroy();
    while (mesh.debugInfo().handshakes > 0) await new Promise((r) => setTimeout(r, 10));
    await using peer = await startNode({ cookie: COOKIE, port: 0, name: 'flood-peer', seeds: [mesh.address!] });
    expect(peer.nodes()).toEqual(['flood-target']);
  } finally {
    await mesh.close();
  }
});
