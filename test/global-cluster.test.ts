// Global locks across several nodes in one process, over real TCP links (port 0).
import { afterEach, describe, expect, it } from 'vitest';
import { startNode, type Node } from '../src/node.js';
import { LockNotAcquiredError } from '../src/errors.js';
import { deferred } from '../src/util/deferred.js';
import { rendezvous } from '../src/mesh/global/rendezvous.js';
import { resourceKey } from '../src/mesh/global/service.js';
import type { Lock } from '../src/mesh/global/index.js';

const TIMING = { heartbeatInterval: 100, failureTimeout: 1500 };
let seq = 0;
const live: Node[] = [];

async function cluster(size: number, extra: { maxFrameSize?: number } = {}): Promise<Node[]> {
  const tag = `gc${process.pid}x${++seq}`;
  const cookie = `cookie-${tag}`;
  const first = await startNode({ name: `${tag}-0`, port: 0, cookie, ...TIMING, ...extra });
  live.push(first);
  const rest = await Promise.all(
    Array.from({ length: size - 1 }, (_, i) => startNode({ name: `${tag}-${i + 1}`, port: 0, cookie, seeds: [first.address!], ...TIMING, ...extra })),
  );
  live.push(...rest);
  const all = [first, ...rest];
  await fullMesh(all);
  return all;
}

async function join(existing: Node[], name: string): Promise<Node> {
  const n = await startNode({ name, port: 0, cookie: `cookie-${existing[0]!.name.split('-')[0]}`, seeds: [existing[0]!.address!], ...TIMING });
  live.push(n);
  await fullMesh([...existing, n]);
  return n;
}

async function fullMesh(all: Node[]): Promise<void> {
  await Promise.all(all.flatMap((a) => all.filter((b) => b !== a).map((b) => a.onNodeUp(b.name))));
}

afterEach(async () => {
  await Promise.all(live.splice(0).map((n) => n.close()));
});

function holdLock(n: Node, resource: unknown, options = {}) {
  const entered = deferred<Lock>();
  const done = deferred<void>();
  const result = n.global.trans(resource, async (lock) => {
    entered.resolve(lock);
    await done.promise;
    return n.name;
  }, options);
  return { entered: entered.promise, release: () => done.resolve(), result };
}

/** Total waiters queued for `resource` at whichever node coordinates it. */
const queued = (nodes: Node[], lock: string): number =>
  nodes.reduce((sum, n) => sum + (n.global.stats().queues.find((q) => q.lock === lock)?.waiting ?? 0), 0);

/** How long `expect.poll` waits for a state of the cluster, and how often it looks. */
const WAIT = { timeout: 10_000, interval: 5 };

/** A resource name (with prefix) whose coordinator among `names` is `want`. */
function resourceWonBy(names: string[], want: string, prefix: string, unlessAmong?: string[]): string {
  for (let i = 0; ; i++) {
    const r = `${prefix}-${i}`;
    const lk = resourceKey(r);
    if (rendezvous(lk, names) === want && (!unlessAmong || rendezvous(lk, unlessAmong) !== want)) return r;
  }
}

describe('global.trans across nodes over TCP', () => {
  it('3 nodes x 10 concurrent trans with an await inside: never two holders, tokens strictly increasing', async () => {
    const nodes = await cluster(3);
    let inside = 0;
    let violations = 0;
    const tokens: number[] = [];
    await Promise.all(
      nodes.flatMap((n) =>
        Array.from({ length: 10 }, () =>
          n.global.trans('hot', async (lock) => {
            if (++inside > 1) violations++;
            tokens.push(lock.token);
            await new Promise((r) => setTimeout(r, 1));
            inside--;
          }),
        ),
      ),
    );
    expect(violations).toBe(0);
    expect(tokens).toHaveLength(30);
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]!).toBeGreaterThan(tokens[i - 1]!);
    const grants = nodes.reduce((s, n) => s + n.global.stats().grants, 0);
    expect(grants).toBe(30);
  });

  it('once the views agree, a lock never taken before costs no recovery round on any node: one survey per view change did it', async () => {
    // Four nodes seeded with the first, so their views change several times in a row while
    // they connect: every node must end with authority, whichever of its surveys met a
    // view that had not caught up yet.
    const nodes = await cluster(4);
    const rounds = (all: Node[]): number => all.reduce((s, n) => s + n.global.stats().coordinator.rounds, 0);
    // 40 new locks, from every node in turn: about 10 coordinated by each node.
    let batch = 0;
    const roundsOfNewLocks = async (all: Node[]): Promise<number> => {
      const before = rounds(all);
      const b = batch++;
      for (let k = 0; k < 40; k++) await all[k % all.length]!.global.trans(`fresh-${b}-${k}`, () => null);
      return rounds(all) - before;
    };
    await expect.poll(() => roundsOfNewLocks(nodes), { timeout: 10_000 }).toBe(0);
    expect(nodes.every((n) => n.global.stats().coordinator.surveyed > 0)).toBe(true);
    // A node joins: new views, new surveys; then again no round, the new node's locks included.
    const all = [...nodes, await join(nodes, `${nodes[0]!.name.split('-')[0]}-4`)];
    await expect.poll(() => roundsOfNewLocks(all), { timeout: 10_000 }).toBe(0);
  });

  it('serves staggered waiters from several nodes in arrival order', async () => {
    const nodes = await cluster(3);
    const [a, b, c] = nodes as [Node, Node, Node];
    const h = holdLock(a, 'fifo');
    await h.entered;
    const order: string[] = [];
    const waiters: Promise<unknown>[] = [];
    const sequence = [b, c, a, c, b, a];
    for (const [i, n] of sequence.entries()) {
      waiters.push(n.global.trans('fifo', () => { order.push(`${i}:${n.name}`); }));
      await expect.poll(() => queued(nodes, 'fifo'), WAIT).toBe(i + 1);
    }
    h.release();
    await Promise.all(waiters);
    expect(order).toEqual(sequence.map((n, i) => `${i}:${n.name}`));
  });

  it('try-lock and timeout from another node give LockNotAcquiredError and leave the queue', async () => {
    const nodes = await cluster(2);
    const [a, b] = nodes as [Node, Node];
    const h = holdLock(a, 'busy');
    await h.entered;
    let ran = false;
    await expect(b.global.trans('busy', () => { ran = true; }, { retries: 0 })).rejects.toMatchObject({ reason: 'retries' });
    const err = await b.global.trans('busy', () => { ran = true; }, { timeout: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockNotAcquiredError);
    expect((err as LockNotAcquiredError).reason).toBe('timeout');
    await expect.poll(() => queued(nodes, 'busy'), WAIT).toBe(0);
    const ac = new AbortController();
    const aborted = b.global.trans('busy', () => { ran = true; }, { signal: ac.signal });
    await expect.poll(() => queued(nodes, 'busy'), WAIT).toBe(1);
    ac.abort();
    await expect(aborted).rejects.toMatchObject({ reason: 'aborted' });
    await expect.poll(() => queued(nodes, 'busy'), WAIT).toBe(0);
    h.release();
    await h.result;
    expect(ran).toBe(false);
    // The release is one message to the coordinator: once it has arrived, the lock is free.
    await expect.poll(() => nodes.map((n) => n.global.stats().queues), WAIT).toEqual(nodes.map(() => []));
    await expect(b.global.trans('busy', () => 'free', { retries: 0 })).resolves.toBe('free');
  });

  it('a node-local lock does not block another node', async () => {
    const nodes = await cluster(2);
    const [a, b] = nodes as [Node, Node];
    const h = holdLock(a, 'local', { nodes: [a.name] });
    await h.entered;
    await expect(b.global.trans('local', () => 'b local', { nodes: [b.name], retries: 0 })).resolves.toBe('b local');
    await expect(b.global.trans('local', () => 'b cluster', { retries: 0 })).resolves.toBe('b cluster');
    // ... while a's own node-local lock is still exclusive on a.
    await expect(a.global.trans('local', () => 'again', { nodes: [a.name], retries: 0 })).rejects.toBeInstanceOf(LockNotAcquiredError);
    h.release();
    await h.result;
  });

  it('an explicit node set naming another node is coordinated there', async () => {
    const nodes = await cluster(2);
    const [a, b] = nodes as [Node, Node];
    const h = holdLock(a, 'on-b', { nodes: [b.name] });
    await h.entered;
    expect(b.global.stats().queues).toEqual([{ lock: `\u0001@${JSON.stringify([b.name])}on-b`, holders: 1, leased: 0, waiting: 0 }]);
    await expect(b.global.trans('on-b', () => 1, { nodes: [b.name], retries: 0 })).rejects.toMatchObject({ reason: 'retries' });
    h.release();
    await h.result;
  });

  it('waiters of an explicit node set whose every node went down give up as unreachable', async () => {
    const nodes = await cluster(3);
    const [a, b, c] = nodes as [Node, Node, Node];
    const h = holdLock(c, 'only-b', { nodes: [b.name] });
    await h.entered;
    const waiting = a.global.trans('only-b', () => 'never', { nodes: [b.name] });
    waiting.catch(() => {}); // it rejects while b closes, before the assertion awaits it
    await expect.poll(() => b.global.stats().queues.map((q) => q.waiting), WAIT).toContain(1);
    await b.close();
    await expect(waiting).rejects.toMatchObject({ name: 'LockNotAcquiredError', reason: 'unreachable' });
    await expect(a.global.trans('only-b', () => 1, { nodes: [b.name] })).rejects.toMatchObject({ reason: 'unreachable' });
    h.release();
  });

  it('close releases the locks of the closing node: a waiter elsewhere gets the lock', async () => {
    const nodes = await cluster(3);
    const [a, b, c] = nodes as [Node, Node, Node];
    // Coordinated by c, held by a, waited for by b.
    const r = resourceWonBy(nodes.map((n) => n.name), c.name, 'closing');
    const h = holdLock(a, r);
    const lock = await h.entered;
    const waiter = b.global.trans(r, (l) => l.token);
    await expect.poll(() => queued(nodes, resourceKey(r)), WAIT).toBe(1);
    await a.close();
    expect(lock.held).toBe(false);
    await expect(waiter).resolves.toBeGreaterThan(lock.token);
    h.release();
  });

  it('the holder closing while it coordinates the lock: the waiters elsewhere are served after the takeover', async () => {
    const nodes = await cluster(3);
    const [a, b, c] = nodes as [Node, Node, Node];
    const r = resourceWonBy(nodes.map((n) => n.name), a.name, 'coord-closing');
    const h = holdLock(a, r);
    const lock = await h.entered;
    const got: number[] = [];
    const waiters = [b, c, b].map((n) => n.global.trans(r, async (l) => { got.push(l.token); await new Promise((res) => setTimeout(res, 2)); }));
    await expect.poll(() => queued(nodes, resourceKey(r)), WAIT).toBe(3);
    await a.close();
    await Promise.all(waiters);
    expect(got).toHaveLength(3);
    expect(got[0]!).toBeGreaterThan(lock.token);
    for (let i = 1; i < got.length; i++) expect(got[i]!).toBeGreaterThan(got[i - 1]!);
    h.release();
  });

  it('a malformed message to the lock service is dropped and the service keeps working', async () => {
    const nodes = await cluster(2);
    const [a, b] = nodes as [Node, Node];
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const r = resourceWonBy(nodes.map((n) => n.name), b.name, 'garbage');
      a.system.cast({ node: b.name, id: 'global' }, ['not', 'a', 'lock', 'message']);
      a.system.cast({ node: b.name, id: 'global' }, { t: 'acquire' });
      // A batch: each malformed message in it is dropped alone.
      a.system.cast({ node: b.name, id: 'global' }, [0, ['garbage'], 42]);
      await expect.poll(() => warnings.filter((m) => m.includes('malformed')), WAIT).toHaveLength(4);
      await expect(a.global.trans(r, () => 'still works')).resolves.toBe('still works');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('a burst of lock messages larger than a frame leaves in several casts: none is lost, nothing throws', async () => {
    // 2000 acquires in one tick are about 90 KiB of lock messages to the coordinator, and
    // its grants come back in runs: far more than one 64 KiB frame.
    const nodes = await cluster(2, { maxFrameSize: 64 * 1024 });
    const [a, b] = nodes as [Node, Node];
    const r = resourceWonBy(nodes.map((n) => n.name), a.name, 'burst');
    let done = 0;
    await Promise.all(Array.from({ length: 2000 }, () => b.global.trans(r, () => { done++; })));
    expect(done).toBe(2000);
    expect(a.nodes()).toContain(b.name); // the link survived
    await expect.poll(() => a.global.stats().queues, WAIT).toEqual([]); // the last releases reach it
  });

  it('a node that joins and now wins the lock takes over without a second grant', async () => {
    const nodes = await cluster(3);
    const names = nodes.map((n) => n.name);
    const tag = names[0]!.split('-')[0]!;
    const newcomer = `${tag}-3`;
    // A resource that one of the three coordinates now, and the newcomer once it joins.
    const r = resourceWonBy([...names, newcomer], newcomer, 'moving', undefined);
    const [a, b, c] = nodes as [Node, Node, Node];
    let inside = 0;
    let violations = 0;
    const tokens: number[] = [];
    const critical = async (l: Lock): Promise<void> => {
      if (++inside > 1) violations++;
      tokens.push(l.token);
      await new Promise((res) => setTimeout(res, 3));
      inside--;
    };
    const h = holdLock(a, r);
    const first = await h.entered;
    const before = [b, c, a, b].map((n) => n.global.trans(r, critical));
    await expect.poll(() => queued(nodes, resourceKey(r)), WAIT).toBe(4);
    const d = await join(nodes, newcomer);
    const after = [d, c, d].map((n) => n.global.trans(r, critical));
    // The newcomer coordinates the lock now; the holder is still a's.
    await expect.poll(() => d.global.stats().queues.find((q) => q.lock === resourceKey(r)), WAIT).toMatchObject({ holders: 1, waiting: 7 });
    expect(violations).toBe(0);
    h.release();
    await Promise.all([...before, ...after]);
    expect(violations).toBe(0);
    expect(tokens).toHaveLength(7);
    expect(tokens[0]!).toBeGreaterThan(first.token);
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]!).toBeGreaterThan(tokens[i - 1]!);
    expect(d.global.stats().coordinator.rounds).toBeGreaterThanOrEqual(1);
  });
});
