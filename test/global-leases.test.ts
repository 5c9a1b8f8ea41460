// Leases: a node that keeps taking a lock keeps it, idle, between its calls, and takes it
// again with no message, until another node asks. Whole lock services on real actor systems,
// over a network whose deliveries the test drives (./helpers/lock-net.ts); the same code runs
// over TCP in global-cluster and across processes in global-processes.
import { describe, expect, it } from 'vitest';
import { LockNotAcquiredError } from '../src/errors.js';
import { LEASE_STREAK, LEASE_TOKENS } from '../src/mesh/global/coordinator.js';
import { LEASE_IDLE_MS } from '../src/mesh/global/requester.js';
import { decodeLockMsg } from '../src/mesh/global/messages.js';
import { resourceKey } from '../src/mesh/global/service.js';
import type { GlobalLocks } from '../src/mesh/global/index.js';
import { deferred } from '../src/util/deferred.js';
import { LockNet, resourceFor, settle, threeNodes, type PendingCast } from './helpers/lock-net.js';

const msgType = (p: PendingCast): string | undefined => decodeLockMsg(p.msg)?.t;

/** `node` takes `r` (each call through the coordinator) until it holds a lease; the tokens. */
async function leaseTo(net: LockNet, node: GlobalLocks, r: string): Promise<number[]> {
  const tokens: number[] = [];
  for (let i = 0; i < 2 * LEASE_STREAK && node.stats().leased === 0; i++) {
    const call = node.trans(r, (l) => void tokens.push(l.token));
    await net.deliver();
    await call;
  }
  expect(node.stats().leased).toBe(1);
  return tokens;
}

describe('leases', () => {
  it('a node that keeps taking a lock gets a lease: its next calls take it with no message, tokens still increasing', async () => {
    const { net, r, A, B } = threeNodes('lease-retake');
    const tokens = await leaseTo(net, B, r);
    expect(tokens).toHaveLength(LEASE_STREAK);
    expect(A.stats().queues).toEqual([{ lock: resourceKey(r), holders: 1, leased: 1, waiting: 0 }]);
    for (let i = 0; i < 10; i++) {
      // Resolves with nothing delivered: nothing was sent.
      await B.trans(r, (l) => void tokens.push(l.token));
      expect(net.pending).toEqual([]);
    }
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
    expect(B.stats()).toMatchObject({ retakes: 10, grants: LEASE_STREAK + 10, holding: 0, leased: 1 });
    expect(A.stats().coordinator).toMatchObject({ grants: LEASE_STREAK, leases: 1 });
    await net.close();
  });

  it("another node's call revokes an idle lease: it is released at once, and the call granted above every reserved token", async () => {
    const { net, r, A, B, C } = threeNodes('lease-revoke');
    const tokens = await leaseTo(net, B, r);
    const leaseToken = tokens.at(-1)!;
    let cToken = 0;
    const c = C.trans(r, (l) => {
      cToken = l.token;
    });
    const seen = await net.deliverLogged();
    await c;
    expect(seen).toContain('A>B revoke');
    expect(seen).toContain('B>A release');
    expect(cToken).toBeGreaterThan(leaseToken + LEASE_TOKENS);
    expect(B.stats().leased).toBe(0);
    expect(A.stats().coordinator.revokes).toBe(1);
    expect(A.stats().queues).toEqual([]);
    await net.close();
  });

  it('a busy lease answers busy and lets go when its call settles; the waiter runs after it, and the node asks again next time', async () => {
    const { net, r, B, C } = threeNodes('lease-busy');
    await leaseTo(net, B, r);
    const order: string[] = [];
    const gate = deferred<void>();
    const b = B.trans(r, async () => {
      order.push('b in');
      await gate.promise;
      order.push('b out');
    });
    await settle();
    expect(order).toEqual(['b in']); // a retake: no message
    const c = C.trans(r, () => void order.push('c'));
    expect(await net.deliverLogged()).toEqual(['C>A acquire', 'A>B revoke', 'B>A busy']);
    expect(order).toEqual(['b in']);
    gate.resolve();
    await b;
    await net.deliver();
    await c;
    expect(order).toEqual(['b in', 'b out', 'c']);
    expect(B.stats().leased).toBe(0);
    // The lease is gone: B's next call goes to the coordinator.
    const next = B.trans(r, () => void order.push('b again'));
    await settle();
    expect(net.pending.map(msgType)).toEqual(['acquire']);
    await net.deliver();
    await next;
    await net.close();
  });

  it("a lease's node keeps its own calls in order: a later call never takes the lease ahead of one that waits in the queue", async () => {
    const { net, r, B } = threeNodes('lease-own-order');
    await leaseTo(net, B, r);
    const order: string[] = [];
    const gate = deferred<void>();
    const b1 = B.trans(r, async () => {
      order.push('b1');
      await gate.promise;
    });
    await settle();
    const b2 = B.trans(r, () => void order.push('b2'));
    // b2's acquire reaches the coordinator; its revoke is held back on the way to B.
    await net.deliver((p) => p.from === 'B');
    expect(net.pending.map(msgType)).toEqual(['revoke']);
    gate.resolve();
    await b1;
    await settle();
    // b1 does not keep the lease idle: a call of its node waits for it.
    expect(net.pending.map(msgType)).toEqual(['revoke', 'release']);
    const b3 = B.trans(r, () => void order.push('b3'));
    await net.deliver();
    await Promise.all([b2, b3]);
    expect(order).toEqual(['b1', 'b2', 'b3']);
    await net.close();
  });

  it('a try-lock (retries: 0) behind an idle lease gets the lock; behind a busy one it is refused, and fn never runs', async () => {
    const { net, r, B, C } = threeNodes('lease-trylock');
    await leaseTo(net, B, r);
    let ran = 0;
    const free = C.trans(r, () => void ran++, { retries: 0 });
    await net.deliver();
    await free;
    expect(ran).toBe(1);

    await leaseTo(net, B, r);
    const gate = deferred<void>();
    const b = B.trans(r, () => gate.promise);
    await settle();
    const busy = C.trans(r, () => void ran++, { retries: 0 }).catch((e: unknown) => e);
    await net.deliver();
    const err = await busy;
    expect(err).toBeInstanceOf(LockNotAcquiredError);
    expect(err).toMatchObject({ reason: 'retries' });
    expect(ran).toBe(1);
    gate.resolve();
    await b;
    await net.deliver();
    expect(net.locks.get('A')!.stats().queues).toEqual([]);
    await net.close();
  });

  it('with lease: false every call goes through the coordinator', async () => {
    const { net, r, A, B } = threeNodes('lease-off');
    for (let i = 0; i < 2 * LEASE_STREAK; i++) {
      const call = B.trans(r, () => undefined, { lease: false });
      await settle();
      expect(net.pending.map(msgType)).toContain('acquire');
      await net.deliver();
      await call;
    }
    expect(B.stats()).toMatchObject({ leased: 0, retakes: 0 });
    expect(A.stats().coordinator.leases).toBe(0);
    expect(A.stats().queues).toEqual([]);
    await expect(B.trans(r, () => 1, { lease: 'yes' as unknown as boolean })).rejects.toThrow(/lease/);
    await net.close();
  });

  it('an idle lease is released after it idled LEASE_IDLE_MS', async () => {
    const { net, r, A, B } = threeNodes('lease-idle');
    await leaseTo(net, B, r);
    await new Promise((res) => setTimeout(res, LEASE_IDLE_MS / 2));
    expect(net.pending).toEqual([]);
    // Released by a timer: await the message rather than a fixed time.
    const deadline = Date.now() + LEASE_IDLE_MS * 5;
    while (!net.pending.some((p) => p.from === 'B' && msgType(p) === 'release') && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 20));
    }
    await net.deliver();
    expect(B.stats().leased).toBe(0);
    expect(A.stats().queues).toEqual([]);
    await net.close();
  });

  it('close releases an idle lease', async () => {
    const { net, r, A, B } = threeNodes('lease-close');
    await leaseTo(net, B, r);
    await B.close();
    await net.deliver();
    expect(A.stats().queues).toEqual([]);
    await net.close();
  });

  it('a call that takes an idle lease and close() in the same tick: the call rejects (closed) and fn never runs', async () => {
    const { net, r, B, C } = threeNodes('lease-close-race');
    await leaseTo(net, B, r);
    const log: string[] = [];
    const b = B.trans(r, () => void log.push('b')).catch((e: unknown) => log.push(`b: ${(e as LockNotAcquiredError).reason}`));
    const closing = B.close();
    const c = C.trans(r, () => void log.push('c'));
    await net.deliver();
    await Promise.all([b, c, closing]);
    expect(log.sort()).toEqual(['b: closed', 'c']);
    await net.close();
  });

  it('a lease whose reserved tokens are used up is released when its last call settles', async () => {
    const { net, r, A, B } = threeNodes('lease-tokens');
    await leaseTo(net, B, r);
    while (B.stats().retakes < LEASE_TOKENS) await B.trans(r, () => undefined);
    await settle();
    expect(B.stats().leased).toBe(0);
    expect(net.pending.map(msgType)).toEqual(['release']);
    await net.deliver();
    expect(A.stats().queues).toEqual([]);
    await net.close();
  });

  it('a lease ended by a round its coordinator did not see is released there too; a revoke for a lease let go is answered', async () => {
    const { net, r, A, B, C } = threeNodes('lease-stale');
    await leaseTo(net, B, r);
    // A and C lose each other (B still sees both): C takes over and B's report ends the lease.
    net.down('A', 'C');
    net.down('C', 'A');
    const c1 = C.trans(r, () => undefined);
    await net.deliver();
    await c1;
    expect(B.stats().leased).toBe(0);
    // B told A too, so when the link heals A counts no holder.
    net.up('A', 'C');
    net.up('C', 'A');
    await net.deliver();
    const log: string[] = [];
    const b = B.trans(r, () => void log.push('b'));
    const c2 = C.trans(r, () => void log.push('c'));
    await net.deliver();
    await Promise.all([b, c2]);
    expect(log.sort()).toEqual(['b', 'c']);
    expect(A.stats().queues).toEqual([]);
    await net.close();
  });

  it('a lease ends with its coordinator: a node that takes over hears the lease holder first, then grants above the reserved tokens', async () => {
    const { net, r, B, C } = threeNodes('lease-takeover');
    const tokens = await leaseTo(net, B, r);
    const leaseToken = tokens.at(-1)!;
    // A dies. C sees it first and takes over with its own call; B still sees A up.
    net.dead.add('A');
    net.pending = [];
    net.down('C', 'A');
    let cToken = 0;
    const c = C.trans(r, (l) => {
      cToken = l.token;
    });
    await net.deliver((p) => p.to !== 'A');
    await c;
    // B's report ended its idle lease, so C's grant cannot overlap a retake.
    expect(B.stats().leased).toBe(0);
    expect(cToken).toBeGreaterThan(leaseToken + LEASE_TOKENS);
    // B's next call (to A in its view, lost) is re-registered with C once B sees A down.
    let bToken = 0;
    const b = B.trans(r, (l) => {
      bToken = l.token;
    });
    await settle();
    net.down('B', 'A');
    await net.deliver((p) => p.to !== 'A');
    await b;
    expect(bToken).toBeGreaterThan(cToken);
    expect(B.stats().retakes).toBe(0);
    await net.close();
  });
});

describe('leases while views disagree', () => {
  it('a revoke for a request that refused the lease grant and waits elsewhere is not answered with a release (its real coordinator would lose it)', async () => {
    // N sees W and X, which do not see each other: N's requests go to X (its winner), W
    // coordinates in its own view. N's third call is granted a lease by X, but by then it
    // answers to W (W's round asked N), so it refuses that grant and waits at W behind W's
    // own call. X revokes the lease for a call of its own; then X dies.
    const r = resourceFor('revoke-live', { 'N,W': 'W', 'N,X': 'X', 'N,W,X': 'X' });
    const net = new LockNet();
    const [N, W, X] = ['N', 'W', 'X'].map((n) => net.add(n)) as [GlobalLocks, GlobalLocks, GlobalLocks];
    net.link('N', 'X');
    net.link('N', 'W');
    for (let i = 0; i < LEASE_STREAK - 1; i++) {
      const call = N.trans(r, () => undefined);
      await net.deliver();
      await call;
    }
    const gateW = deferred<void>();
    const w = W.trans(r, () => gateW.promise); // W's round asks N
    await new Promise((res) => setTimeout(res, 5)); // N's call comes later than W's
    let nRan = false;
    const n = N.trans(r, () => {
      nRan = true;
    });
    await net.deliver((p) => p.from === 'N' && p.to === 'X' && msgType(p) === 'acquire');
    // X's grant (a lease: N's third in a row) waits on the wire; W's round runs first.
    expect(net.pending.map((p) => `${p.from}>${p.to} ${msgType(p)}`)).toContain('X>N granted');
    await net.deliver((p) => p.from !== 'X' && p.to !== 'X');
    await net.deliver((p) => p.from === 'X' && p.to === 'N'); // refused: n answers to W
    const x = X.trans(r, () => undefined); // queues behind the lease at X: X revokes it
    expect(await net.deliverLogged((p) => p.from === 'X' || p.to === 'X')).toContain('X>N revoke');
    // X dies; N and W see it down. n must still be served by W.
    net.dead.add('X');
    net.pending = net.pending.filter((p) => p.from !== 'X' && p.to !== 'X');
    net.down('N', 'X');
    await net.deliver((p) => p.to !== 'X');
    gateW.resolve();
    await w;
    await net.deliver((p) => p.to !== 'X');
    await n;
    expect(nRan).toBe(true);
    void x.catch(() => undefined);
    await net.close();
  });
});
