// Regression tests of the store: each pins one defect that was found and fixed (the first
// line of each test says which). Real nodes over real TCP in this process; wire messages
// crafted here only stand for what a peer would send in the situation described.
import { describe, expect, it, vi } from 'vitest';
import { defineExpirables } from '../src/dsl/define.js';
import { expirable } from '../src/dsl/definition.js';
import { ok } from '../src/dsl/result.js';
import { clockToken } from '../src/mesh/global/fencing.js';
import type { Node } from '../src/node.js';
import { localCluster } from './fixtures/store-mesh.js';
import { gate, sleep, uniqueNamespace } from './fixtures/store-tools.js';

const soon = (ms: number) => Date.now() + ms;

describe('store regressions (cluster scope, TCP)', () => {
  it('an early answer by a push is not handed to later callers once that value has expired', async () => {
    // Pins: a push answered this node's waiting callers, the promise stayed joinable until
    // this node's own lock turn ended, and a miss after expiry got the expired value.
    await using c = await localCluster(2);
    const [a, b] = c.nodes as [Node, Node];
    const namespace = uniqueNamespace('reg');
    let fetches = 0;
    const defs = () => ({ tok: expirable({ fetch: async () => ok(`tok-${++fetches}`, soon(60_000)) }) });
    const A = defineExpirables(defs(), { node: a, namespace });
    const B = defineExpirables(defs(), { node: b, namespace });
    await A.clear('tok'); // attaches A's store (its router answers pushes)
    const resource = `expirable-store/${namespace}/tok/`;
    // Another holder keeps the lock, so A's refresh waits for its turn.
    const release = gate();
    const granted = gate();
    let token = 0;
    const holding = b.global.trans(resource, async (lock) => {
      token = lock.token;
      granted.open();
      await release.promise;
    });
    await granted.promise;
    const first = A.tok();
    // The holder pushes what it wrote (a value living 300 ms); A's waiting caller takes it.
    await b.ref({ node: a.name, id: `expirable-store/${namespace}` }).call({
      t: 'put',
      n: 'tok',
      k: '',
      from: b.name,
      snap: { v: token, has: true, value: 'pushed', exp: soon(300), ttl: 300, hs: false, st: undefined },
    });
    expect(await first).toMatchObject({ ok: true, value: 'pushed' });
    await sleep(450); // the pushed value has expired; A's first refresh still waits for the lock
    const later = A.tok();
    release.open();
    await holding;
    expect(await later).toMatchObject({ ok: true, value: 'tok-1' });
    await Promise.all([A.close(), B.close()]);
  });

  it('a clear and a refresh win over versions above the lock\'s tokens (a new coordinator whose clock is behind)', async () => {
    // Pins: writes carried the bare lock token as their version, so after a coordinator
    // change to a host whose clock is behind, a clear was ignored by replicas holding a
    // version above the new tokens, and a new value was refused by them.
    await using c = await localCluster(2);
    const [a, b] = c.nodes as [Node, Node];
    const namespace = uniqueNamespace('reg');
    let fetches = 0;
    const defs = () => ({ tok: expirable({ fetch: async () => ok(`tok-${++fetches}`, soon(60_000)) }) });
    const A = defineExpirables(defs(), { node: a, namespace });
    const B = defineExpirables(defs(), { node: b, namespace });
    expect(await A.tokOrThrow()).toBe('tok-1');
    expect(await B.tokOrThrow()).toBe('tok-1');
    const group = `expirable-store/${namespace}/tok/`;
    await vi.waitFor(() => expect(a.pg.getMembers(group)).toHaveLength(2));
    const onB = a.pg.getMembers(group).find((m) => m.node === b.name)!;
    // B holds a value written under a coordinator whose clock ran 10 minutes ahead of the
    // one granting tokens now.
    const ahead = clockToken() + 10 * 60_000 * 1024;
    await a.ref(onB).call({ t: 'put', from: a.name, snap: { v: ahead, has: true, value: 'ahead', exp: soon(60_000), ttl: 60_000, hs: false, st: undefined } });
    expect(await B.tokOrThrow()).toBe('ahead');
    await A.clear('tok');
    const r = await B.tok();
    expect(r.ok && r.value).not.toBe('ahead');
    // The next value written on A replaces the tombstone on B: B takes it, no fetch.
    expect(await A.tokOrThrow()).toBe(r.ok ? r.value : undefined);
    expect(await B.tokOrThrow()).toBe('tok-2');
    expect(fetches).toBe(2);
    await Promise.all([A.close(), B.close()]);
  });
});
