// Membership over real processes: a full mesh through one seed, a late joiner, goodbye.
import { describe, test, expect } from 'vitest';
import { startCluster } from './helpers/peers.js';

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
