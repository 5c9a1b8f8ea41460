// Membership over real processes: a full mesh through one seed, a late joiner, goodbye.
import net from 'node:net';
import { describe, test, expect } from 'vitest';
import { startNode } from '../src/node.js';
import { InvalidOptionError } from '../src/errors.js';
import { spawnPeer, startCluster, type Peer } from './helpers/peers.js';

const OPTS = { cookie: 'mesh-cluster-cookie', heartbeatInterval: 100, failureTimeout: 1000 };

describe('cluster membership', () => {
  test('three processes form a full mesh through one seed, and a late fourth joins', async () => {
    await using c = await startCluster(3, OPTS);
    const names = c.peers.map((p) => p.name);
    for (const p of c.peers) expect(await p.nodes()).toEqual(names.filter((n) => n !== p.name).sort());
    const d = await c.add({ ...OPTS, name: `${names[0]}-late` });
    for (const p of c.peers) {
      await p.waitNodes(c.peers.filter((q) => q !== p).map((q) => q.name));
    }
    // Each node reported each peer up exactly once (those connected while startNode ran, before
    // any listener could be attached, are in initialNodes).
    for (const p of c.peers) {
      const ups = [...p.initialNodes, ...p.events.filter((e) => e.type === 'nodeup').map((e) => e.args[0])];
      expect(ups.sort()).toEqual(c.peers.filter((q) => q !== p).map((q) => q.name).sort());
    }
    void d;
  });
});

describe('joining and rejoining', () => {
  test('a node whose seed is not up yet keeps dialling it with backoff and joins when it comes', async () => {
    // Reserve a free port for the seed, then release it.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await using joiner = await startNode({ ...OPTS, name: 'early-joiner', seeds: [`127.0.0.1:${port}`] });
    expect(joiner.nodes()).toEqual([]);
    await using seed = await startNode({ ...OPTS, name: 'late-seed', port });
    await joiner.onNodeUp('late-seed');
    expect(seed.nodes()).toEqual(['early-joiner']);
  });

  test('a peer killed with -9 and restarted under the same name rejoins', async () => {
    await using c = await startCluster(2, OPTS);
    const [a, b] = c.peers as [Peer, Peer];
    b.kill();
    await a.waitEvent('nodedown', (n) => n === b.name);
    await using b2 = await spawnPeer();
    await b2.start({ ...OPTS, port: 0, name: b.name, seeds: [a.address!] });
    expect(b2.initialNodes).toEqual([a.name]);
    await a.waitNodes([b.name]);
    expect(a.events.filter((e) => e.type === 'nodeup' && e.args[0] === b.name)).toHaveLength(2);
  });

  test('a node that does not listen dials every member it learns of', async () => {
    await using seed = await startNode({ ...OPTS, name: 'nl-seed', port: 0 });
    await using other = await startNode({ ...OPTS, name: 'nl-other', port: 0, seeds: [seed.address!] });
    await using client = await startNode({ ...OPTS, name: 'nl-client', seeds: [seed.address!] });
    expect(client.address).toBeUndefined();
    await client.onNodeUp('nl-other'); // learned from the seed's MEMBERS, dialled by the client
    expect(client.nodes().sort()).toEqual(['nl-other', 'nl-seed']);
    await other.onNodeUp('nl-client');
  });

  test('a port already in use fails startNode with the socket error', async () => {
    await using first = await startNode({ ...OPTS, name: 'port-owner', port: 0 });
    const port = Number(first.address!.split(':').pop());
    await expect(startNode({ ...OPTS, name: 'port-thief', port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  test('failureTimeout must exceed heartbeatInterval', async () => {
    await expect(startNode({ ...OPTS, port: 0, heartbeatInterval: 500, failureTimeout: 500 })).rejects.toBeInstanceOf(InvalidOptionError);
  });
});
