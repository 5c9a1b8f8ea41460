// Process groups across several nodes in one process, over real TCP links (port 0).
import { afterEach, describe, expect, it } from 'vitest';
import { startNode, type Node } from '../src/node.js';
import type { PgEvent } from '../src/mesh/pg.js';
import { fullMesh, TcpNodes } from './helpers/tcp-nodes.js';

const TIMING = { heartbeatInterval: 100, failureTimeout: 1500 };
const tcp = new TcpNodes('pc');
const live = tcp.live;
const cluster = (size: number): Promise<Node[]> => tcp.cluster(size, TIMING);

afterEach(() => tcp.closeAll());

const idle = (n: Node) => n.spawn({ init: () => null, handleCall: (_m: 'ping', s: null) => ({ reply: `pong from ${n.name}`, state: s }) });
const keys = (refs: { node: string; id: string }[]) => refs.map((r) => `${r.id}@${r.node}`).sort();
/** How long `expect.poll` waits for the views to converge, and how often it looks. */
const WAIT = { timeout: 10_000, interval: 5 };
/** Resolves once every node's view of `group` holds exactly `expected`. */
const converged = (nodes: Node[], group: string, expected: { node: string; id: string }[]) =>
  expect.poll(() => nodes.map((n) => keys(n.pg.getMembers(group))), WAIT).toEqual(nodes.map(() => keys(expected)));

describe('pg across nodes over TCP', () => {
  it('joins and leaves converge on every node; members are callable from anywhere', async () => {
    const nodes = await cluster(3);
    const [a, b, c] = nodes as [Node, Node, Node];
    const [xa, xb, xc] = [idle(a), idle(b), idle(c)];
    a.pg.join('workers', xa);
    b.pg.join('workers', xb);
    c.pg.join('workers', xc);
    await converged(nodes, 'workers', [xa, xb, xc]);
    expect(keys(b.pg.getLocalMembers('workers'))).toEqual(keys([xb]));
    for (const n of nodes) expect(n.pg.whichGroups()).toEqual(['workers']);
    const replies = await Promise.all(a.pg.getMembers('workers').map((m) => m.call('ping')));
    expect(replies.sort()).toEqual(nodes.map((n) => `pong from ${n.name}`).sort());
    b.pg.leave('workers', xb);
    await converged(nodes, 'workers', [xa, xc]);
  });

  it('an actor that stops or crashes leaves on every node', async () => {
    const nodes = await cluster(3);
    const [a, b] = nodes as [Node, Node];
    const stopping = idle(a);
    const crashing = a.spawn({ init: () => null, handleCall: (_m: 'crash', _s: null): never => { throw new Error('crash'); } });
    const stays = idle(b);
    a.pg.join('g', [stopping, crashing]);
    b.pg.join('g', stays);
    await converged(nodes, 'g', [stopping, crashing, stays]);
    await stopping.stop();
    await converged(nodes, 'g', [crashing, stays]);
    await expect(crashing.call('crash')).rejects.toThrow('crash');
    await converged(nodes, 'g', [stays]);
  });

  it('a node that joins later sees the existing members, and they see its own', async () => {
    const nodes = await cluster(2);
    const [a, b] = nodes as [Node, Node];
    const [xa, xb] = [idle(a), idle(b)];
    a.pg.join('g', xa);
    b.pg.join('g', xb);
    await converged(nodes, 'g', [xa, xb]);
    const tag = a.name.split('-')[0]!;
    const late = await startNode({ name: `${tag}-late`, port: 0, cookie: `cookie-${tag}`, seeds: [b.address!], ...TIMING });
    live.push(late);
    const xl = idle(late);
    late.pg.join('g', xl); // before it is connected: goes out with its sync
    await fullMesh([...nodes, late]);
    await converged([...nodes, late], 'g', [xa, xb, xl]);
  });

  it('a node that closes vanishes from every other view; monitors hear it', async () => {
    const nodes = await cluster(3);
    const [a, b, c] = nodes as [Node, Node, Node];
    const [xa, xb, xc] = [idle(a), idle(b), idle(c)];
    a.pg.join('g', xa);
    b.pg.join('g', xb);
    c.pg.join('g', [xc]);
    await converged(nodes, 'g', [xa, xb, xc]);
    const events: PgEvent[] = [];
    a.pg.monitor('g', (e) => events.push(e));
    await c.close();
    await converged([a, b], 'g', [xa, xb]);
    expect(events.map((e) => [e.type, keys(e.refs)])).toEqual([['leave', keys([xc])]]);
  });

  it('monitor reports remote joins and leaves', async () => {
    const nodes = await cluster(2);
    const [a, b] = nodes as [Node, Node];
    const events: PgEvent[] = [];
    const off = a.pg.monitor('m', (e) => events.push(e));
    const [x, y] = [idle(b), idle(b)];
    b.pg.join('m', [x, y]);
    await expect.poll(() => events.length, WAIT).toBe(1);
    b.pg.leave('m', x);
    await expect.poll(() => events.length, WAIT).toBe(2);
    expect(events.map((e) => [e.type, e.group, keys(e.refs)])).toEqual([
      ['join', 'm', keys([x, y])],
      ['leave', 'm', keys([x])],
    ]);
    off();
    b.pg.leave('m', y);
    await converged(nodes, 'm', []);
    expect(events).toHaveLength(2);
  });

  it('a malformed message to pg is dropped and the groups keep working', async () => {
    const nodes = await cluster(2);
    const [a, b] = nodes as [Node, Node];
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      a.system.cast({ node: b.name, id: 'pg' }, { t: 'join', from: a.name, group: 'g', ids: [42] });
      a.system.cast({ node: b.name, id: 'pg' }, 'garbage');
      await expect.poll(() => warnings.filter((m) => m.includes('malformed')), WAIT).toHaveLength(2);
      const x = idle(a);
      a.pg.join('g', x);
      await converged(nodes, 'g', [x]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('a scope converges between nodes that start it at different times, apart from the default scope', async () => {
    const nodes = await cluster(2);
    const [a, b] = nodes as [Node, Node];
    const xa = idle(a);
    a.pg.scope('jobs').join('g', xa); // b does not run the scope yet
    const xb = idle(b);
    // A call after the join on the same link: once answered, b has dropped a's join.
    await a.ref(xb).call('ping');
    b.pg.scope('jobs').join('g', xb); // b asks a for its state when the scope starts
    await expect.poll(() => [a, b].map((n) => keys(n.pg.scope('jobs').getMembers('g'))), WAIT).toEqual([keys([xa, xb]), keys([xa, xb])]);
    expect(a.pg.getMembers('g')).toEqual([]);
    b.pg.scope('jobs').leave('g', xb);
    await expect.poll(() => keys(a.pg.scope('jobs').getMembers('g')), WAIT).toEqual(keys([xa]));
  });

  it('refuses to join an actor of another node', async () => {
    const nodes = await cluster(2);
    const [a, b] = nodes as [Node, Node];
    expect(() => a.pg.join('g', idle(b))).toThrow(/own node/);
  });
});
