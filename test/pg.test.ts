// Process groups on one node (a cluster of one): the API contract of `node.pg`.
import { afterEach, describe, expect, it } from 'vitest';
import { startNode, type Node } from '../src/node.js';
import { InvalidOptionError } from '../src/errors.js';
import type { PgEvent } from '../src/mesh/pg.js';

const nodes: Node[] = [];
async function node(): Promise<Node> {
  const n = await startNode();
  nodes.push(n);
  return n;
}
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
});

const idle = (n: Node) =>
  n.spawn({
    init: () => null,
    handleCall: (msg: 'crash' | 'ping', state: null) => {
      if (msg === 'crash') throw new Error('asked to crash');
      return { reply: 'pong', state };
    },
  });

const ids = (refs: { id: string }[]) => refs.map((r) => r.id).sort();
const until = async (cond: () => boolean): Promise<void> => {
  while (!cond()) await new Promise((r) => setTimeout(r, 2));
};

describe('pg on a standalone node', () => {
  it('join and leave a ref or an array; reads are synchronous', async () => {
    const n = await node();
    const [a, b, c] = [idle(n), idle(n), idle(n)];
    n.pg.join('workers', a);
    expect(ids(n.pg.getMembers('workers'))).toEqual([a.id]);
    n.pg.join('workers', [b, c]);
    expect(ids(n.pg.getMembers('workers'))).toEqual(ids([a, b, c]));
    expect(ids(n.pg.getLocalMembers('workers'))).toEqual(ids([a, b, c]));
    expect(n.pg.leave('workers', [a, b])).toBe(true);
    expect(ids(n.pg.getMembers('workers'))).toEqual([c.id]);
    expect(n.pg.leave('workers', a)).toBe(false); // not joined
    expect(n.pg.whichGroups()).toEqual(['workers']);
    n.pg.leave('workers', c);
    expect(n.pg.whichGroups()).toEqual([]);
    expect(n.pg.getMembers('workers')).toEqual([]);
  });

  it('members are refs bound to the node: call works on them', async () => {
    const n = await node();
    n.pg.join('g', idle(n));
    await expect(n.pg.getMembers('g')[0]!.call('ping')).resolves.toBe('pong');
  });

  it('returned arrays are copies: mutating one does not change the group', async () => {
    const n = await node();
    n.pg.join('g', idle(n));
    n.pg.getMembers('g').pop();
    n.pg.getLocalMembers('g').pop();
    expect(n.pg.getMembers('g')).toHaveLength(1);
  });

  it('a ref may join more than once and leaves once per leave (as pg)', async () => {
    const n = await node();
    const a = idle(n);
    n.pg.join('g', a);
    n.pg.join('g', a);
    expect(n.pg.getMembers('g')).toHaveLength(2);
    n.pg.leave('g', a);
    expect(n.pg.getMembers('g')).toHaveLength(1);
    n.pg.leave('g', a);
    expect(n.pg.getMembers('g')).toHaveLength(0);
  });

  it('an actor that stops or crashes leaves all its groups', async () => {
    const n = await node();
    const [a, b] = [idle(n), idle(n)];
    n.pg.join('g1', [a, b]);
    n.pg.join('g2', a);
    await a.stop();
    await until(() => n.pg.getMembers('g1').length === 1);
    expect(ids(n.pg.getMembers('g1'))).toEqual([b.id]);
    expect(n.pg.getMembers('g2')).toEqual([]);
    await expect(b.call('crash')).rejects.toThrow('asked to crash');
    await until(() => n.pg.getMembers('g1').length === 0);
    expect(n.pg.whichGroups()).toEqual([]);
  });

  it('a ref already gone leaves right after joining', async () => {
    const n = await node();
    const a = idle(n);
    await a.stop();
    n.pg.join('g', a);
    await until(() => n.pg.getMembers('g').length === 0);
  });

  it('monitor reports joins and leaves of its group until unsubscribed', async () => {
    const n = await node();
    const [a, b] = [idle(n), idle(n)];
    const events: PgEvent[] = [];
    const off = n.pg.monitor('g', (e) => events.push(e));
    n.pg.join('g', [a, b]);
    n.pg.join('other', a); // another group: not reported
    n.pg.leave('g', a);
    await b.stop();
    await until(() => events.length === 3);
    expect(events.map((e) => [e.type, e.group, ids(e.refs)])).toEqual([
      ['join', 'g', ids([a, b])],
      ['leave', 'g', [a.id]],
      ['leave', 'g', [b.id]],
    ]);
    off();
    n.pg.join('g', a);
    expect(events).toHaveLength(3);
  });

  it('refuses a remote ref, a non-ref and a bad group name', async () => {
    const n = await node();
    expect(() => n.pg.join('g', { node: 'elsewhere', id: 'x' })).toThrow(InvalidOptionError);
    expect(() => n.pg.join('g', { node: 'elsewhere', id: 'x' })).toThrow(/own node/);
    expect(() => n.pg.join('g', [idle(n), { node: 'elsewhere', id: 'x' }])).toThrow(InvalidOptionError);
    expect(n.pg.getMembers('g')).toEqual([]); // all or nothing
    expect(() => n.pg.join('g', 'nope' as never)).toThrow(InvalidOptionError);
    expect(() => n.pg.join('', idle(n))).toThrow(/group/);
    expect(() => n.pg.leave('g', { node: 'elsewhere', id: 'x' })).toThrow(InvalidOptionError);
    expect(() => n.pg.monitor('g', 'x' as never)).toThrow(InvalidOptionError);
  });

  it('scopes are independent sets of groups', async () => {
    const n = await node();
    const a = idle(n);
    const other = n.pg.scope('other');
    expect(n.pg.scope('other')).toBe(other);
    expect(other.name).toBe('other');
    other.join('g', a);
    expect(other.getMembers('g')).toHaveLength(1);
    expect(n.pg.getMembers('g')).toEqual([]);
    expect(n.pg.whichGroups()).toEqual([]);
    expect(() => n.pg.scope('')).toThrow(InvalidOptionError);
    await n.close();
    expect(other.getMembers('g')).toEqual([]); // closed with the node
  });

  it('close leaves every group', async () => {
    const n = await node();
    n.pg.join('g', idle(n));
    const events: PgEvent[] = [];
    n.pg.monitor('g', (e) => events.push(e));
    await n.close();
    expect(n.pg.getMembers('g')).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(['leave']);
  });
});
