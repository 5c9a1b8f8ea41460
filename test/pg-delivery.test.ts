// Process groups: when and in which order a peer's joins and leaves take effect on a node.
// Deltas are applied as the link delivers them, so whatever the same peer sent after a join
// (here, the reply of a call) finds the member already in this node's view, however busy this
// node's actors are; and they leave in the order the groups changed, even when a monitor
// callback changes a group in turn.
import { afterEach, describe, expect, it } from 'vitest';
import type { Node } from '../src/node.js';
import { TcpNodes } from './helpers/tcp-nodes.js';
import type { ActorRef } from '../src/actors/ref.js';

const tcp = new TcpNodes('pd');
afterEach(() => tcp.closeAll());

const pair = async (): Promise<[Node, Node]> => (await tcp.cluster(2)) as [Node, Node];

describe('pg: a remote delta is applied when its frame is read', () => {
  it('a member joined before a reply is seen by the caller as the reply arrives, while its actors are busy', async () => {
    const [a, b] = await pair();
    // On a: an actor that joins a fresh actor to `g` (or makes it leave), then replies.
    const joiner = a.spawn<null, { op: 'join' } | { op: 'leave'; id: string }, ActorRef>({
      init: () => null,
      handleCall: (msg, state) => {
        if (msg.op === 'join') {
          const x = a.spawn({ init: () => null });
          a.pg.join('g', x);
          return { reply: x, state };
        }
        a.pg.leave('g', a.ref({ node: a.name, id: msg.id }));
        return { reply: a.ref({ node: a.name, id: msg.id }), state };
      },
    });
    // On b: local actors calling each other without pause, so that every turn of b's event
    // loop starts with its actors' run budget spent (their runs then wait for the next turn).
    const echo = b.spawn({ init: () => null, handleCall: (m: number, s: null) => ({ reply: m, state: s }) });
    let busy = true;
    const spin = (async () => {
      while (busy) await echo.call(1);
    })();
    try {
      const remote = b.ref<{ op: 'join' } | { op: 'leave'; id: string }, ActorRef>(joiner);
      for (let i = 0; i < 20; i++) {
        const x = await remote.call({ op: 'join' });
        expect(b.pg.getMembers('g').map((r) => r.id)).toContain(x.id);
        const y = await remote.call({ op: 'leave', id: x.id });
        expect(b.pg.getMembers('g').map((r) => r.id)).not.toContain(y.id);
      }
    } finally {
      busy = false;
      await spin;
    }
  });
});

describe('pg: deltas leave in the order the groups changed', () => {
  it('a monitor that makes a member leave as it joins: the peers see the join, then the leave', async () => {
    const [a, b] = await pair();
    const x = a.spawn({ init: () => null });
    const echo = a.spawn({ init: () => null, handleCall: (m: number, s: null) => ({ reply: m, state: s }) });
    const seenOnB: string[] = [];
    b.pg.monitor('g', (e) => seenOnB.push(`${e.type} ${e.refs.map((r) => r.id).join()}`));
    const off = a.pg.monitor('g', (e) => {
      if (e.type === 'join') a.pg.leave('g', e.refs);
    });
    a.pg.join('g', x);
    off();
    expect(a.pg.getMembers('g')).toEqual([]);
    // A call over the same link, answered after both deltas: b has applied them by then.
    await b.ref<number, number>(echo).call(1);
    expect(seenOnB).toEqual([`join ${x.id}`, `leave ${x.id}`]);
    expect(b.pg.getMembers('g')).toEqual([]);
  });
});
