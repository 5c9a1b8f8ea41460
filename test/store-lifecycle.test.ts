// Clear and close across nodes, and what they stop: clear of every key of a keyed expirable
// and clearAll reach every node; timers stop after clear and close; callers waiting for the
// lock when their node or store closes get 'unavailable'; the diagnostics of a background
// refresh that finds a newer value ('skipped'), that stands by for a peer's retry
// ('deferred'), and of a value taken from a peer ('adopt').
import { describe, expect, it } from 'vitest';
import { defineExpirables } from '../src/dsl/define.js';
import { expirable } from '../src/dsl/definition.js';
import { fail, ok } from '../src/store/result.js';
import { startNode, type Node } from '../src/node.js';
import { localCluster } from './fixtures/store-mesh.js';
import { EventLog, gate, sleep, uniqueNamespace } from './fixtures/store-tools.js';

const soon = (ms: number) => Date.now() + ms;

describe('clear, close and diagnostics across nodes (TCP, one process)', () => {
  it("clear(name) of a keyed expirable and clearAll() drop every key on every node, including keys the clearing node never held", async () => {
    await using c = await localCluster(3);
    const namespace = uniqueNamespace('life');
    const fetched: string[] = [];
    const defs = () => ({
      k: expirable({ keyed: true, fetch: async (key: string) => (fetched.push(key), ok(`${key}-${fetched.length}`, soon(60_000))) }),
      u: expirable({ fetch: async () => (fetched.push('u'), ok(`u-${fetched.length}`, soon(60_000))) }),
    });
    const [A, B, C] = c.nodes.map((node) => defineExpirables(defs(), { node, namespace }));
    expect(await A!.kOrThrow('x')).toBe('x-1');
    expect(await B!.kOrThrow('y')).toBe('y-2');
    // C holds no key: its clear asks every node which keys they hold.
    await C!.clear('k');
    expect(await A!.kOrThrow('x')).toBe('x-3');
    expect(await B!.kOrThrow('y')).toBe('y-4');
    expect(await B!.uOrThrow()).toBe('u-5');
    await C!.clearAll();
    expect(await A!.kOrThrow('x')).toBe('x-6');
    expect(await B!.kOrThrow('y')).toBe('y-7');
    expect(await A!.uOrThrow()).toBe('u-8');
    await Promise.all([A!.close(), B!.close(), C!.close()]);
  });

  it('after clear (on any replica) and after close, no background refresh runs', async () => {
    await using c = await localCluster(2);
    const namespace = uniqueNamespace('life');
    let fetches = 0;
    // Refresh due ~1 s after each value arrives (the floor), expiry at 1.5 s.
    const defs = () => ({
      cleared: expirable({ refresh: { eager: { beforeExpiry: 1_000 } }, fetch: async () => (++fetches, ok('c', soon(1_500))) }),
      closed: expirable({ refresh: { eager: { beforeExpiry: 1_000 } }, fetch: async () => (++fetches, ok('d', soon(1_500))) }),
    });
    const [A, B] = c.nodes.map((node) => defineExpirables(defs(), { node, namespace }));
    using events = new EventLog(namespace);
    for (const E of [A!, B!]) {
      await E.cleared();
      await E.closed();
    }
    expect(fetches).toBe(2); // both replicas of both expirables armed their timers
    await A!.clear('cleared');
    await Promise.all([A!.close(), B!.close()]);
    await sleep(1_700); // past both the refresh point and the expiry
    expect(fetches).toBe(2);
    expect(events.count((e) => e.channel === 'refresh')).toBe(0);
  });

  it("callers waiting for the lock when their node closes, or their store closes, get 'unavailable'", async () => {
    await using c = await localCluster(3);
    const [a, b, d] = c.nodes as [Node, Node, Node];
    const namespace = uniqueNamespace('life');
    let fetches = 0;
    const g = gate();
    const defs = () => ({ tok: expirable({ fetch: async () => (++fetches, await g.promise, ok('t', soon(60_000))) }) });
    const [A, B, D] = [a, b, d].map((node) => defineExpirables(defs(), { node, namespace }));
    using events = new EventLog(namespace);
    const holder = A!.tok(); // holds the lock while its fetch waits
    await events.next((e) => e.channel === 'fetchStart');
    const onB = B!.tok();
    const onD = D!.tok();
    await sleep(50); // both wait for the lock
    await b.close();
    expect(await onB).toMatchObject({ ok: false, error: { reason: 'unavailable' } });
    await D!.close();
    g.open();
    expect(await holder).toMatchObject({ ok: true, value: 't' });
    expect(await onD).toMatchObject({ ok: false, error: { reason: 'unavailable' } });
    expect(fetches).toBe(1); // the closed store did not fetch when its turn came
    await A!.close();
  });

  it("diagnostics: a background refresh that finds a newer value is 'skipped'; a value taken from a peer under the lock is 'adopt'", async () => {
    await using c = await localCluster(2);
    const namespace = uniqueNamespace('life');
    let fetches = 0;
    const g = gate();
    // Eager refresh ~1.35-1.5 s after arrival on each replica (jitter up to 150 ms).
    const defs = () => ({
      fx: expirable({
        refresh: { eager: { beforeExpiry: 1_500 } },
        fetch: async () => {
          if (++fetches === 2) await g.promise; // the first background refresh waits for us
          return ok(`fx-${fetches}`, soon(3_000));
        },
      }),
    });
    const [A, B] = c.nodes.map((node) => defineExpirables(defs(), { node, namespace }));
    using events = new EventLog(namespace);
    expect(await A!.fxOrThrow()).toBe('fx-1');
    // Once A's refresh released the lock and its push reached B's node (an ask of B's router
    // sent after it on the same link is answered after it: B, holding nothing, dropped it),
    // B's miss asks the holders and adopts.
    await c.nodes[0]!.global.trans(`expirable-store/${namespace}/fx/`, async () => undefined);
    await c.nodes[0]!.ref({ node: c.nodes[1]!.name, id: `expirable-store/${namespace}` }).call({ t: 'ask', n: 'fx', k: '' });
    expect(await B!.fxOrThrow()).toBe('fx-1');
    expect(events.events.find((e) => e.channel === 'replicate' && e.node === c.nodes[1]!.name)).toMatchObject({ how: 'adopt', from: c.nodes[0]!.name });
    // Both timers fire; the first takes the lock and fetches (held), the other waits for it.
    await events.next((e) => e.channel === 'refresh' && e.phase === 'start', 5_000);
    const first = await events.next((e) => e.channel === 'fetchStart' && e.mode === 'eager', 5_000);
    await events.next((e) => e.channel === 'refresh' && e.phase === 'start' && e.node !== first.node, 5_000);
    g.open();
    const skipped = await events.next((e) => e.channel === 'refresh' && e.phase === 'skipped', 5_000);
    expect(skipped.node).not.toBe(first.node);
    expect(fetches).toBe(2);
    for (const E of [A!, B!]) expect(await E.fxOrThrow()).toBe('fx-2');
    await Promise.all([A!.close(), B!.close()]);
  });
  it("diagnostics: a replica waiting for the lock while a peer's background refresh fails gives up its turn ('deferred')", async () => {
    await using c = await localCluster(2);
    const namespace = uniqueNamespace('life');
    let fetches = 0;
    const g = gate();
    const defs = () => ({
      fx: expirable({
        refresh: { eager: { beforeExpiry: 1_500 } },
        fetch: async () => {
          if (++fetches === 1) return ok('good', soon(3_000));
          await g.promise;
          return fail(new Error('provider down'));
        },
      }),
    });
    const [A, B] = c.nodes.map((node) => defineExpirables(defs(), { node, namespace }));
    using events = new EventLog(namespace);
    expect(await A!.fxOrThrow()).toBe('good');
    expect(await B!.fxOrThrow()).toBe('good');
    const first = await events.next((e) => e.channel === 'fetchStart' && e.mode === 'eager', 5_000);
    await events.next((e) => e.channel === 'refresh' && e.phase === 'start' && e.node !== first.node, 5_000);
    g.open();
    const deferred = await events.next((e) => e.channel === 'refresh' && e.phase === 'deferred', 5_000);
    expect(deferred.node).not.toBe(first.node);
    expect(fetches).toBe(2); // the waiting replica did not fetch
    for (const E of [A!, B!]) expect(await E.fxOrThrow()).toBe('good'); // the value is kept
    await Promise.all([A!.close(), B!.close()]);
  });
});


describe('one node', () => {
  it('close() stops the timers of a standalone store too', async () => {
    await using node = await startNode();
    let fetches = 0;
    const E = defineExpirables(
      { fx: expirable({ scope: 'local', refresh: { eager: { beforeExpiry: 1_000 } }, fetch: async () => (++fetches, ok('x', soon(1_500))) }) },
      { node, namespace: uniqueNamespace('life') },
    );
    await E.fx();
    await E.close();
    await sleep(1_700);
    expect(fetches).toBe(1);
  });
});
