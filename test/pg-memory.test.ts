// Process groups with many groups (issue 17: one per key of a keyed expirable): what a
// membership costs in heap, that an actor in many groups leaves them all and leaves no
// record behind, and that getMembers keeps its order (this node first, then each peer's
// members together, each in join order, repeats included) whatever the table looks like.
// Nodes run in this process over real TCP links (port 0).
import { setFlagsFromString, getHeapStatistics } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import type { Node } from '../src/node.js';
import type { PgEvent } from '../src/mesh/pg.js';
import { TcpNodes } from './helpers/tcp-nodes.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const TIMING = { heartbeatInterval: 200, failureTimeout: 5000 };
const tcp = new TcpNodes('pm');
const cluster = (size: number): Promise<Node[]> => tcp.cluster(size, TIMING);

afterEach(() => tcp.closeAll());

const idle = (n: Node) => n.spawn({ init: () => null, handleCall: (_m: 'ping', s: null) => ({ reply: 'pong', state: s }) });
/**
 * How long `expect.poll` waits for 20k groups to reach the other node or to go, and how often
 * it looks; the tests of this file get twice that (TEST_TIMEOUT), so a wait that runs out is
 * reported as the wait it is, not as the test's timeout.
 */
const WAIT = { timeout: 60_000, interval: 10 };
const TEST_TIMEOUT = 2 * WAIT.timeout;
const heap = async (): Promise<number> => {
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  return getHeapStatistics().used_heap_size;
};
const group = (i: number) => `tokens:customer-${i}`;

describe('pg with many groups', { timeout: TEST_TIMEOUT }, () => {
  it('one actor per node in 20k groups costs under 200 bytes of heap per (group, member) on each node', async () => {
    // The same few actors in every group: the keyed expirables' case. Before the one-table
    // layout this cost about 300 bytes (a per-group cache, per-actor maps of groups, one ref
    // object per membership); it is now about 100. Both nodes live in this process, so the
    // heap holds both views: 2 nodes x 2 members x G groups.
    const G = 20_000;
    const [a, b] = (await cluster(2)) as [Node, Node];
    const [xa, xb] = [idle(a), idle(b)];
    const before = await heap();
    for (let i = 0; i < G; i++) a.pg.join(group(i), xa);
    for (let i = 0; i < G; i++) b.pg.join(group(i), xb);
    // Deltas keep their order on a link: the last group complete means every group is.
    await expect.poll(() => [a, b].map((n) => [n.pg.getMembers(group(G - 1)).length, n.pg.whichGroups().length]), WAIT).toEqual([[2, G], [2, G]]);
    const perMember = ((await heap()) - before) / (2 * 2 * G);
    expect(perMember).toBeLessThan(200);
    for (const n of [a, b]) {
      expect(n.pg.debugCounts()).toEqual({ groups: G, localMemberships: G, remoteMemberships: G, localActors: 1, remoteActors: 1, sharedLists: 1 });
    }

    // All of it goes when the actors stop: nothing kept per group once the groups are empty.
    await Promise.all([xa.stop(), xb.stop()]);
    await expect.poll(() => [a, b].map((n) => n.pg.whichGroups().length), WAIT).toEqual([0, 0]);
    for (const n of [a, b]) {
      expect(n.pg.debugCounts()).toEqual({ groups: 0, localMemberships: 0, remoteMemberships: 0, localActors: 0, remoteActors: 0, sharedLists: 0 });
    }
    expect(((await heap()) - before) / (2 * 2 * G)).toBeLessThan(20);
  });

  it('an actor in 20k groups leaves all of them when it stops, on every node, and no record of it is left', async () => {
    const G = 20_000;
    const [a, b] = (await cluster(2)) as [Node, Node];
    const [x, y] = [idle(a), idle(a)];
    const z = idle(b);
    for (let i = 0; i < G; i++) a.pg.join(group(i), x);
    a.pg.join(group(0), y);
    a.pg.join(group(7), [y, y]);
    b.pg.join(group(7), z);
    const events: PgEvent[] = [];
    b.pg.monitor(group(7), (e) => events.push(e));
    await expect.poll(() => [b.pg.debugCounts().remoteMemberships, a.pg.debugCounts().remoteMemberships], WAIT).toEqual([G + 3, 1]);
    expect(b.pg.debugCounts()).toMatchObject({ groups: G, localMemberships: 1, remoteMemberships: G + 3, localActors: 1, remoteActors: 2 });
    expect(events.map((e) => e.type)).toEqual(['join', 'join']); // x, then [y, y]
    events.length = 0;

    await x.stop();
    await expect.poll(() => b.pg.debugCounts().remoteMemberships, WAIT).toBe(3);
    expect(a.pg.debugCounts()).toMatchObject({ groups: 2, localMemberships: 3, remoteMemberships: 1, localActors: 1, remoteActors: 1 });
    expect(b.pg.debugCounts()).toMatchObject({ groups: 2, localMemberships: 1, remoteMemberships: 3, localActors: 1, remoteActors: 1 });
    for (const n of [a, b]) expect(n.pg.whichGroups().sort()).toEqual([group(0), group(7)].sort());
    expect(b.pg.getMembers(group(7)).map((r) => r.id)).toEqual([z.id, y.id, y.id]); // this node's first
    expect(events.map((e) => [e.type, e.refs.map((r) => r.id)])).toEqual([['leave', [x.id]]]);

    // The last actor of a node stops: that node keeps no record at all; its peer neither.
    await y.stop();
    await expect.poll(() => b.pg.debugCounts().remoteMemberships, WAIT).toBe(0);
    expect(a.pg.debugCounts()).toMatchObject({ groups: 1, localMemberships: 0, remoteMemberships: 1, localActors: 0, remoteActors: 1 });
    expect(b.pg.whichGroups()).toEqual([group(7)]);
    expect(events.map((e) => [e.type, e.refs.map((r) => r.id)])).toEqual([
      ['leave', [x.id]],
      ['leave', [y.id, y.id]],
    ]);

    // A node that closes: its peer drops every record of it.
    await b.close();
    await expect.poll(() => a.pg.debugCounts().remoteActors, WAIT).toBe(0);
    expect(a.pg.debugCounts()).toEqual({ groups: 0, localMemberships: 0, remoteMemberships: 0, localActors: 0, remoteActors: 0, sharedLists: 0 });
  });

  it('groups that share their members stay independent: a change to one leaves the others as they were', async () => {
    const nodes = await cluster(2);
    const [a, b] = nodes as [Node, Node];
    const [x, y] = [idle(a), idle(a)];
    const z = idle(b);
    const gs = ['s1', 's2', 's3', 's4'];
    for (const g of gs) a.pg.join(g, [x, y]);
    for (const g of gs) b.pg.join(g, z);
    const view = (n: Node, g: string) => n.pg.getMembers(g).map((r) => r.id);
    await expect.poll(() => gs.map((g) => [view(a, g).length, view(b, g).length]), WAIT).toEqual(gs.map(() => [3, 3]));
    // Same members in the same order: the groups (but the first, joined before x and y were
    // in another group) hold one array.
    expect(a.pg.debugCounts().sharedLists).toBe(1);
    expect(b.pg.debugCounts().sharedLists).toBe(1);
    a.pg.leave('s2', x);
    a.pg.join('s3', x);
    b.pg.leave('s4', z);
    await expect.poll(() => [view(b, 's2').length, view(b, 's3').length, view(a, 's4').length], WAIT).toEqual([2, 4, 2]);
    for (const n of [a, b]) {
      const zFirst = n === b;
      const order = (ids: string[]) => (zFirst ? [...ids.filter((id) => id === z.id), ...ids.filter((id) => id !== z.id)] : ids);
      expect(view(n, 's1')).toEqual(order([x.id, y.id, z.id]));
      expect(view(n, 's2')).toEqual(order([y.id, z.id]));
      expect(view(n, 's3')).toEqual(order([x.id, y.id, x.id, z.id]));
      expect(view(n, 's4')).toEqual([x.id, y.id]);
    }
    // Every actor stops: nothing shared is left behind.
    await Promise.all([x.stop(), y.stop(), z.stop()]);
    await expect.poll(() => [a, b].map((n) => n.pg.whichGroups().length), WAIT).toEqual([0, 0]);
    for (const n of [a, b]) expect(n.pg.debugCounts()).toMatchObject({ groups: 0, localActors: 0, remoteActors: 0, sharedLists: 0 });
  });

  it('member arrays are shared only between groups with the same members, whatever their ids hold', async () => {
    // Ids come from peers' messages: two lists whose ids, run together, read the same
    // ('x' + 'y|z' and 'x|y' + 'z' with a separator inside an id) must not share an array.
    const [a, b] = (await cluster(2)) as [Node, Node];
    const sep = (s: string) => `${s}\u0001${a.name}\u0000`;
    const lists = { left: ['x', `${sep('y')}z`], right: [sep('x') + 'y', 'z'] };
    const pg = { node: b.name, id: 'pg' };
    for (const [side, ids] of Object.entries(lists)) {
      for (const g of [`${side}1`, `${side}2`]) a.system.cast(pg, { t: 'join', from: a.name, group: g, ids });
    }
    await expect.poll(() => b.pg.whichGroups().length, WAIT).toBe(4);
    for (const [side, ids] of Object.entries(lists)) {
      for (const g of [`${side}1`, `${side}2`]) expect(b.pg.getMembers(g).map((r) => r.id)).toEqual(ids);
    }
  });

  it('getMembers: this node first, then each peer\'s members together, each in join order with repeats, in big and small groups', async () => {
    const nodes = await cluster(3);
    const actors = new Map(nodes.map((n) => [n.name, Array.from({ length: 12 }, () => idle(n))]));
    // Interleaved joins from every node: a small group (3 per node) and a big one (36 in all,
    // repeats included, changed in place past 16 members).
    const joined = new Map<string, Map<string, string[]>>([
      ['small', new Map()],
      ['big', new Map()],
    ]);
    const join = (n: Node, g: string, k: number) => {
      const ref = actors.get(n.name)![k]!;
      n.pg.join(g, ref);
      const byNode = joined.get(g)!;
      byNode.set(n.name, [...(byNode.get(n.name) ?? []), ref.id]);
    };
    for (let k = 0; k < 12; k++) for (const n of nodes) join(n, 'big', k);
    for (const n of nodes) join(n, 'big', 3); // a repeat
    for (let k = 0; k < 3; k++) for (const n of [...nodes].reverse()) join(n, 'small', 11 - k);
    // Leaves from the middle of each node's run.
    for (const n of nodes) {
      n.pg.leave('big', actors.get(n.name)![5]!);
      const ids = joined.get('big')!.get(n.name)!;
      ids.splice(ids.indexOf(actors.get(n.name)![5]!.id), 1);
    }
    const want = (g: string) => [...joined.get(g)!.values()].flat().sort();
    await expect.poll(() => nodes.map((n) => ['big', 'small'].map((g) => n.pg.getMembers(g).map((r) => r.id).sort())), WAIT).toEqual(nodes.map(() => ['big', 'small'].map(want)));

    for (const n of nodes) {
      const peerOrder: string[][] = [];
      for (const g of ['big', 'small']) {
        const got = n.pg.getMembers(g);
        // Split into runs of one node's members.
        const runs: { node: string; ids: string[] }[] = [];
        for (const r of got) {
          if (runs.at(-1)?.node === r.node) runs.at(-1)!.ids.push(r.id);
          else runs.push({ node: r.node, ids: [r.id] });
        }
        expect(runs.map((r) => r.node)).toHaveLength(3); // each node's members together
        expect(runs[0]!.node).toBe(n.name); // this node first
        for (const run of runs) expect(run.ids).toEqual(joined.get(g)!.get(run.node)); // join order, repeats
        expect(n.pg.getLocalMembers(g).map((r) => r.id)).toEqual(joined.get(g)!.get(n.name));
        peerOrder.push(runs.map((r) => r.node));
      }
      expect(peerOrder[0]).toEqual(peerOrder[1]); // peers in the same order in every group
    }
  });
});
