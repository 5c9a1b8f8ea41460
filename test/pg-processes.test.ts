// Process groups across real node processes: convergence, auto-leave on stop and crash,
// kill -9, a late joiner, monitors, and a remote ref refused.
import { afterEach, describe, expect, it } from 'vitest';
import { disposeAllPeers, startCluster, type Peer } from './helpers/peers.js';
import { PG_PEER } from './fixtures/pg-peer.js';
import { FIXTURES } from './helpers/fixtures.js';
import type { ActorRefData } from '../src/actors/ref.js';

const OPTS = { cookie: 'pg-processes', heartbeatInterval: 100, failureTimeout: 1000 };

afterEach(async () => {
  await disposeAllPeers();
});

const key = (r: ActorRefData) => `${r.id}@${r.node}`;
const sorted = (refs: ActorRefData[]) => refs.map(key).sort();
async function converged(peers: Peer[], group: string, expected: ActorRefData[], ms = 15_000): Promise<void> {
  const want = JSON.stringify(sorted(expected));
  const end = Date.now() + ms;
  for (;;) {
    const views = await Promise.all(peers.map((p) => p.run<string[]>(PG_PEER, 'members', group)));
    if (views.every((v) => JSON.stringify(v) === want)) return;
    if (Date.now() > end) throw new Error(`views did not converge on ${want}: ${JSON.stringify(views)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('pg across processes', () => {
  it('join, leave, stop and crash converge on three processes; kill -9 removes a node everywhere', async () => {
    await using c = await startCluster(3, OPTS);
    const [a, b, d] = c.peers as [Peer, Peer, Peer];
    await a.run(PG_PEER, 'monitorGroup', 'workers');
    const xa = await a.run<ActorRefData[]>(PG_PEER, 'spawnAndJoin', 'workers', 2);
    const xb = await b.run<ActorRefData[]>(PG_PEER, 'spawnAndJoin', 'workers', 1);
    const xd = await d.run<ActorRefData[]>(PG_PEER, 'spawnAndJoin', 'workers', 2);
    await converged(c.peers, 'workers', [...xa, ...xb, ...xd]);
    expect(await b.run(PG_PEER, 'localMembers', 'workers')).toEqual(sorted(xb));
    expect(await d.run(PG_PEER, 'whichGroups')).toEqual(['workers']);
    expect(await b.run<string[]>(PG_PEER, 'pingAll', 'workers')).toHaveLength(5);

    // Explicit leave.
    expect(await d.run(PG_PEER, 'leave', 'workers', [xd[0]])).toBe(true);
    await converged(c.peers, 'workers', [...xa, ...xb, xd[1]!]);
    // A stop and a crash leave by themselves.
    await a.run(FIXTURES, 'stop', xa[0]);
    await expect(b.run(FIXTURES, 'call', xb[0], 'crash')).rejects.toThrow('asked to crash');
    await converged(c.peers, 'workers', [xa[1]!, xd[1]!]);

    // kill -9: the node's members vanish from every other view.
    d.kill();
    await converged([a, b], 'workers', [xa[1]!]);

    // a's monitor heard every change, each once, in order.
    await a.waitEvent('pg', (_g, type, refs: string[]) => type === 'leave' && refs.includes(key(xd[1]!)));
    const events = a.events.filter((e) => e.type === 'pg').map((e) => [e.args[1], e.args[2]]);
    const joined = events.filter(([t]) => t === 'join').flatMap(([, refs]) => refs as string[]);
    const left = events.filter(([t]) => t === 'leave').flatMap(([, refs]) => refs as string[]);
    expect(joined.sort()).toEqual(sorted([...xa, ...xb, ...xd]));
    expect(left.sort()).toEqual(sorted([xd[0]!, xa[0]!, xb[0]!, xd[1]!]));
  });

  it('a node that connects later sees the existing members, and they see its own', async () => {
    await using c = await startCluster(2, OPTS);
    const [a, b] = c.peers as [Peer, Peer];
    const xa = await a.run<ActorRefData[]>(PG_PEER, 'spawnAndJoin', 'g', 1);
    const xb = await b.run<ActorRefData[]>(PG_PEER, 'spawnAndJoin', 'g', 1);
    await converged(c.peers, 'g', [...xa, ...xb]);
    const late = await c.add({ ...OPTS, name: `${a.name}-late` });
    await converged([late], 'g', [...xa, ...xb]);
    const xl = await late.run<ActorRefData[]>(PG_PEER, 'spawnAndJoin', 'g', 1);
    await converged(c.peers, 'g', [...xa, ...xb, ...xl]);
  });

  it('a node whose link dropped (SIGSTOP past the failure timeout) vanishes, then converges again on reconnect', async () => {
    await using c = await startCluster(3, OPTS);
    const [a, b, d] = c.peers as [Peer, Peer, Peer];
    const xa = await a.run<ActorRefData[]>(PG_PEER, 'spawnAndJoin', 'g', 1);
    const xd = await d.run<ActorRefData[]>(PG_PEER, 'spawnAndJoin', 'g', 1);
    await converged(c.peers, 'g', [...xa, ...xd]);
    d.pause();
    await a.waitEvent('nodedown', (name) => name === d.name);
    await converged([a, b], 'g', xa);
    // While d is away, a's group changes: d must learn it on reconnect.
    const xa2 = await a.run<ActorRefData[]>(PG_PEER, 'spawnAndJoin', 'g', 1);
    d.resume();
    await Promise.all(c.peers.map((p) => p.waitNodes(c.peers.filter((q) => q !== p).map((q) => q.name))));
    await converged(c.peers, 'g', [...xa, ...xa2, ...xd]);
  });

  it('a remote ref is refused with a clear error', async () => {
    await using c = await startCluster(2, OPTS);
    const [a, b] = c.peers as [Peer, Peer];
    const [xb] = await b.run<ActorRefData[]>(PG_PEER, 'spawnAndJoin', 'g', 1);
    const err = await a.run<{ name: string; message: string }>(PG_PEER, 'joinRemote', 'g', xb);
    expect(err.name).toBe('InvalidOptionError');
    expect(err.message).toMatch(/actor of this node/);
  });
});
