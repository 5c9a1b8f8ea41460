// Global locks on one node (a cluster of one): the API contract of `node.global.trans`.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { startNode, type Node } from '../src/node.js';
import { InvalidOptionError, LockNotAcquiredError } from '../src/errors.js';
import { deferred } from '../src/util/deferred.js';
import type { Lock } from '../src/mesh/global/index.js';

const nodes: Node[] = [];
async function node(): Promise<Node> {
  const n = await startNode();
  nodes.push(n);
  return n;
}
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
});

/** Resolves after `n` turns of the event loop (lets queued messages flow). */
const turns = async (n = 3): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
};

/** A lock holder whose fn waits until `release()`. */
function holdLock(n: Node, resource: unknown, options = {}) {
  const entered = deferred<Lock>();
  const done = deferred<void>();
  const result = n.global.trans(
    resource,
    async (lock) => {
      entered.resolve(lock);
      await done.promise;
      return 'held';
    },
    options,
  );
  return { entered: entered.promise, release: () => done.resolve(), result };
}

describe('global.trans on a standalone node', () => {
  it('runs fn under the lock and resolves with its value; a throw propagates and still releases', async () => {
    const n = await node();
    const lock = await n.global.trans('r1', (l) => l);
    expect(lock.resource).toBe('r1');
    expect(typeof lock.token).toBe('number');
    expect(lock.token).toBeGreaterThan(0);
    expect(lock.held).toBe(false); // released once fn settled
    await expect(n.global.trans('r1', () => { throw new Error('boom'); })).rejects.toThrow('boom');
    await expect(n.global.trans('r1', async () => Promise.reject(new Error('async boom')))).rejects.toThrow('async boom');
    // A result whose `then` cannot even be read (a revoked proxy): the error goes to the caller, the lock is released.
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    await expect(n.global.trans('r1', () => revoked.proxy)).rejects.toThrow(TypeError);
    await expect(n.global.trans('r1', () => 42, { retries: 0 })).resolves.toBe(42); // free again
  });

  it('never runs two fns at once on one resource, and tokens strictly increase in grant order', async () => {
    const n = await node();
    let inside = 0;
    let maxInside = 0;
    const tokens: number[] = [];
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        n.global.trans('shared', async (lock) => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          tokens.push(lock.token);
          await new Promise((r) => setTimeout(r, i % 3));
          await turns(1);
          inside--;
        }),
      ),
    );
    expect(maxInside).toBe(1);
    expect(tokens).toHaveLength(30);
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]!).toBeGreaterThan(tokens[i - 1]!);
  });

  // Pins a hang: with the coordinator on this node, a trans loop ran in microtasks only and
  // starved timers (and sockets) forever.
  it('a tight trans loop on a local lock still lets timers run', async () => {
    const n = await node();
    let stop = false;
    let grants = 0;
    setTimeout(() => (stop = true), 30);
    while (!stop) await n.global.trans('tight', () => grants++);
    expect(grants).toBeGreaterThan(0);
  }, 5_000);

  it('serves waiters in arrival order', async () => {
    const n = await node();
    const h = holdLock(n, 'fifo');
    await h.entered;
    const order: number[] = [];
    const waiters: Promise<void>[] = [];
    for (let i = 0; i < 8; i++) {
      waiters.push(n.global.trans('fifo', async () => { order.push(i); await turns(1); }));
      await turns(1); // each request reaches the coordinator before the next is made
    }
    h.release();
    await Promise.all(waiters);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('different resources do not block each other; equal values are the same lock', async () => {
    const n = await node();
    const h = holdLock(n, { tenant: 't1', kind: 'token' });
    await h.entered;
    await expect(n.global.trans({ tenant: 't2', kind: 'token' }, () => 'other', { retries: 0 })).resolves.toBe('other');
    await expect(n.global.trans('1', () => 'string one', { retries: 0 })).resolves.toBe('string one');
    // Same value, other key order: the same lock, so a try-lock fails.
    await expect(n.global.trans({ kind: 'token', tenant: 't1' }, () => 'x', { retries: 0 })).rejects.toBeInstanceOf(LockNotAcquiredError);
    await expect(n.global.trans(['a', 1], () => 'array', { retries: 0 })).resolves.toBe('array');
    h.release();
    await expect(h.result).resolves.toBe('held');
  });

  it('retries: 0 is a try-lock; retries: n waits only when at most n holders are ahead', async () => {
    const n = await node();
    const h = holdLock(n, 'try');
    await h.entered;
    let ran = false;
    const err = await n.global.trans('try', () => { ran = true; }, { retries: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockNotAcquiredError);
    expect((err as LockNotAcquiredError).reason).toBe('retries');
    expect((err as LockNotAcquiredError).resource).toBe('try');
    expect((err as Error).message).toMatch(/"try".*retries/);
    // One holder ahead: retries 1 queues.
    const queued = n.global.trans('try', () => 'second', { retries: 1 });
    await turns();
    // Holder plus one waiter ahead: retries 1 is refused.
    await expect(n.global.trans('try', () => { ran = true; }, { retries: 1 })).rejects.toMatchObject({ reason: 'retries' });
    h.release();
    await expect(queued).resolves.toBe('second');
    expect(ran).toBe(false);
    expect(n.global.stats().failures.retries).toBe(2);
  });

  it('timeout: rejects with LockNotAcquiredError, fn never runs, and its place in the queue is gone', async () => {
    const n = await node();
    const h = holdLock(n, 'to');
    await h.entered;
    let ran = false;
    const t0 = performance.now();
    const timedOut = n.global.trans('to', () => { ran = true; }, { timeout: 50 });
    await turns();
    const later = n.global.trans('to', () => 'later');
    await turns();
    expect(n.global.stats().queues).toEqual([{ lock: 'to', holders: 1, leased: 0, waiting: 2 }]);
    const err = await timedOut.catch((e: unknown) => e);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(45);
    expect(err).toMatchObject({ name: 'LockNotAcquiredError', reason: 'timeout' });
    expect(n.global.stats().queues).toEqual([{ lock: 'to', holders: 1, leased: 0, waiting: 1 }]);
    h.release();
    await expect(later).resolves.toBe('later');
    expect(ran).toBe(false);
    expect(n.global.stats().queues).toEqual([]);
  });

  it('timeout does not fire once the lock is granted', async () => {
    const n = await node();
    await expect(
      n.global.trans('granted-then-slow', async () => { await new Promise((r) => setTimeout(r, 60)); return 'ok'; }, { timeout: 10 }),
    ).resolves.toBe('ok');
  });

  it('signal: an aborted signal rejects at once; an abort while waiting removes the waiter', async () => {
    const n = await node();
    let ran = false;
    const already = AbortSignal.abort(new Error('user left'));
    await expect(n.global.trans('sig', () => { ran = true; }, { signal: already })).rejects.toMatchObject({
      reason: 'aborted',
      message: expect.stringContaining('user left'),
    });
    const h = holdLock(n, 'sig');
    await h.entered;
    const ac = new AbortController();
    const waiting = n.global.trans('sig', () => { ran = true; }, { signal: ac.signal });
    await turns();
    expect(n.global.stats().waiting).toBe(1);
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'LockNotAcquiredError', reason: 'aborted' });
    await turns();
    expect(n.global.stats().queues).toEqual([{ lock: 'sig', holders: 1, leased: 0, waiting: 0 }]);
    h.release();
    await h.result;
    expect(ran).toBe(false);
  });

  it('is re-entrant for the same async context, and a nested other resource is a normal acquire', async () => {
    const n = await node();
    const seen: string[] = [];
    const result = await n.global.trans('outer', async (outer) => {
      const inner = await n.global.trans('outer', async (l) => {
        seen.push('inner');
        await turns(1);
        return l.token;
      }, { retries: 0 });
      expect(inner).toBe(outer.token);
      // Another resource: its own lock (and another token).
      const other = await n.global.trans('other', (l) => l.token, { retries: 0 });
      expect(other).not.toBe(outer.token);
      // From a detached context that outlives fn, the lock is not ours any more.
      return 'done';
    });
    expect(result).toBe('done');
    expect(seen).toEqual(['inner']);
    expect(n.global.stats().reentries).toBe(1);
  });

  it('re-entrance ends with fn: a call from a task that outlives fn acquires normally', async () => {
    const n = await node();
    const late = deferred<{ call: Promise<unknown> }>();
    await n.global.trans('ctx', () => {
      // Runs after fn settled: by then another holder has the lock.
      setTimeout(() => late.resolve({ call: n.global.trans('ctx', (l) => l.token, { retries: 0 }) }), 20);
    });
    const other = holdLock(n, 'ctx');
    await other.entered;
    // The detached call finds the lock held by someone else: not re-entrant, refused.
    await expect((await late.promise).call).rejects.toMatchObject({ reason: 'retries' });
    other.release();
    await other.result;
  });

  it('a node-local lock (nodes: [self]) is a lock of its own', async () => {
    const n = await node();
    const h = holdLock(n, 'scoped');
    await h.entered;
    await expect(n.global.trans('scoped', () => 'local', { nodes: [n.name], retries: 0 })).resolves.toBe('local');
    h.release();
    await h.result;
  });

  // Pins the lock key of an explicit node set: a string resource is its own text, so a key
  // made of "<resource>@<nodes>" could be spelt by another resource given without nodes.
  it('no resource given without nodes shares a lock with a resource given with a node set', async () => {
    const n = await node();
    const h = holdLock(n, 'r', { nodes: [n.name] });
    await h.entered;
    const lookalikes = [`r@[${n.name}]`, `\u0001@${JSON.stringify([n.name])}r`, `\u0001@["${n.name}"]"r"`, ['r', [n.name]]];
    for (const r of lookalikes) await expect(n.global.trans(r, () => 'free', { retries: 0 })).resolves.toBe('free');
    await expect(n.global.trans('r', () => 1, { nodes: [n.name], retries: 0 })).rejects.toMatchObject({ reason: 'retries' });
    h.release();
    await h.result;
  });

  it('an explicit node set with no connected node is unreachable', async () => {
    const n = await node();
    await expect(n.global.trans('x', () => 1, { nodes: ['nobody'] })).rejects.toMatchObject({ reason: 'unreachable' });
  });

  it('close releases held locks, rejects waiters and later calls with reason closed', async () => {
    const n = await node();
    const h = holdLock(n, 'closing');
    const lock = await h.entered;
    let ran = false;
    const waiting = n.global.trans('closing', () => { ran = true; });
    waiting.catch(() => {});
    await turns();
    await n.close();
    expect(lock.held).toBe(false);
    await expect(waiting).rejects.toMatchObject({ reason: 'closed' });
    await expect(n.global.trans('other', () => 1)).rejects.toMatchObject({ reason: 'closed' });
    h.release();
    await expect(h.result).resolves.toBe('held');
    expect(ran).toBe(false);
  });

  it('rejects bad arguments with InvalidOptionError', async () => {
    const n = await node();
    const fn = () => 1;
    await expect(n.global.trans('r', 'nope' as never)).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(n.global.trans(() => 1, fn)).rejects.toThrow(/resource/);
    await expect(n.global.trans(Symbol('s'), fn)).rejects.toBeInstanceOf(InvalidOptionError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(n.global.trans(cyclic, fn)).rejects.toThrow(/cycle/);
    await expect(n.global.trans('r', fn, { timeout: -1 })).rejects.toThrow(/timeout/);
    await expect(n.global.trans('r', fn, { retries: 1.5 })).rejects.toThrow(/retries/);
    await expect(n.global.trans('r', fn, { nodes: [] })).rejects.toThrow(/nodes/);
    await expect(n.global.trans('r', fn, { signal: {} as AbortSignal })).rejects.toThrow(/signal/);
    await expect(n.global.trans('r', fn, null as never)).rejects.toThrow(/options/);
  });

  it('publishes acquire, grant (with wait time) and release on diagnostics channels', async () => {
    const n = await node();
    const events: [string, Record<string, unknown>][] = [];
    const on = (name: string) => (msg: unknown) => {
      const m = msg as Record<string, unknown>;
      if (m.node === n.name) events.push([name, m]);
    };
    const subs = ['acquire', 'grant', 'release', 'fail'].map((k) => [`expirable-store:lock:${k}`, on(k)] as const);
    for (const [ch, fn] of subs) subscribe(ch, fn);
    try {
      const h = holdLock(n, 'diag');
      await h.entered;
      const second = n.global.trans('diag', () => 'second');
      await new Promise((r) => setTimeout(r, 20));
      h.release();
      await second;
      await n.global.trans('diag', () => 1, { retries: 0 });
    } finally {
      for (const [ch, fn] of subs) unsubscribe(ch, fn);
    }
    expect(events.map(([k]) => k)).toEqual(['acquire', 'grant', 'acquire', 'release', 'grant', 'release', 'acquire', 'grant', 'release']);
    const grants = events.filter(([k]) => k === 'grant').map(([, m]) => m);
    expect(grants[1]).toMatchObject({ resource: 'diag', lock: 'diag', waited: true });
    expect(grants[1]!.waitMs as number).toBeGreaterThanOrEqual(15);
    expect(grants[0]!.waited).toBe(false);
    const release = events.find(([k]) => k === 'release')![1];
    expect(release.token).toBe(grants[0]!.token);
    expect(release.heldMs as number).toBeGreaterThanOrEqual(15);
  });

  it('stats count acquires, grants, waits and show queue lengths', async () => {
    const n = await node();
    const before = performance.now();
    const h = holdLock(n, 'st');
    await h.entered;
    const w = [n.global.trans('st', () => 1), n.global.trans('st', () => 2)];
    const asked = performance.now();
    await turns();
    let s = n.global.stats();
    expect(s).toMatchObject({ acquires: 3, grants: 1, waits: 0, holding: 1, waiting: 2 });
    expect(s.queues).toEqual([{ lock: 'st', holders: 1, leased: 0, waiting: 2 }]);
    const released = performance.now();
    h.release();
    await Promise.all(w);
    const after = performance.now();
    s = n.global.stats();
    expect(s).toMatchObject({ acquires: 3, grants: 3, waits: 2, holding: 0, waiting: 0, queues: [] });
    // The two waiters of one node are one run: granted together, passed down here.
    expect(s.coordinator).toMatchObject({ grants: 3, handoffs: 2, runs: 1, locks: 1 });
    // The two waiters asked before `asked` and were granted after `released`; all three
    // requests asked and were granted between `before` and `after` (the service reads the
    // same clock, performance.now()).
    expect(s.waitMs.max).toBeGreaterThanOrEqual(released - asked);
    expect(s.waitMs.max).toBeLessThanOrEqual(after - before);
    expect(s.waitMs.total).toBeGreaterThanOrEqual(2 * (released - asked));
    expect(s.waitMs.total).toBeLessThanOrEqual(3 * (after - before));
  });
});
