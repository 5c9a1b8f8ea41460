// The lock protocol's races, made to happen on purpose. Real TCP cannot force one message to
// overtake another on a different link, so these tests drive the protocol's own code (the
// Coordinator state machine, and whole GlobalLocks services on real ActorSystems) through a
// network whose deliveries the test orders by hand. The same code runs over the mesh in
// global-cluster and global-processes tests.
import { describe, expect, it, vi } from 'vitest';
import { Coordinator, MAX_IDLE, UNSEEN_HOLDER_GRACE_MS, type CoordinatorContext } from '../src/mesh/global/coordinator.js';
import { TokenMemory, clockToken, nextToken } from '../src/mesh/global/fencing.js';
import { RECORDS_PER_PART, decodeLockMsg, encodeLockBatch, encodeLockMsg, lockBatchOf, recordParts, type LockMsg, type WireHolder, type WireWaiter } from '../src/mesh/global/messages.js';
import { rendezvous } from '../src/mesh/global/rendezvous.js';
import { resourceKey } from '../src/mesh/global/service.js';
import { GlobalLocks } from '../src/mesh/global/index.js';
import type { Lock } from '../src/mesh/global/index.js';
import { deferred } from '../src/util/deferred.js';
import { LockNet, resourceFor, settle, threeNodes } from './helpers/lock-net.js';

// ---------------------------------------------------------------------------------------
// Coordinator alone, fed messages one by one.

function coordinator(self: string, peers: string[], winner: () => string = () => self) {
  const sent: [string, LockMsg][] = [];
  const up = new Set(peers);
  let local: { holders: WireHolder[]; waiters: WireWaiter[] } = { holders: [], waiters: [] };
  const ctx: CoordinatorContext = {
    self,
    send: (node, msg) => sent.push([node, msg]),
    winner,
    peers: () => up,
    isUp: (n) => n === self || up.has(n),
    seen: (n) => n === self || up.has(n) || peers.includes(n),
    tokens: new TokenMemory(),
    localReport: () => local,
    localLocks: () => [],
    view: () => 'view',
  };
  const c = new Coordinator(ctx);
  return {
    c,
    sent,
    up,
    setLocal: (l: typeof local) => (local = l),
    grants: () => sent.filter(([, m]) => m.t === 'granted').map(([n, m]) => [n, (m as { req: string }).req]),
    inquiries: () => sent.filter(([, m]) => m.t === 'inquire').map(([n, m]) => [n, (m as { round: number }).round] as const),
  };
}

const acquire = (from: string, req: string, extra: Partial<{ held: number; retries: number; since: number; lease: boolean }> = {}): LockMsg => ({
  t: 'acquire', from, lk: 'L', req, node: from, since: extra.since ?? 1, set: null, retries: extra.retries ?? null, held: extra.held ?? null, hops: 0, lease: extra.lease ?? false,
});
const release = (from: string, req: string): LockMsg => ({ t: 'release', from, lk: 'L', req, set: null, hops: 0 });
const report = (from: string, round: number, holders: WireHolder[], waiters: WireWaiter[], last = 0, more = false): LockMsg => ({
  t: 'report', from, lk: 'L', round, holders, waiters, last, more,
});
const handle = (c: Coordinator, m: LockMsg) => c.handle(m as Parameters<Coordinator['handle']>[0]);

const acquireOf = (from: string, lk: string, req: string): LockMsg => ({
  t: 'acquire', from, lk, req, node: from, since: 1, set: null, retries: null, held: null, hops: 0, lease: false,
});
const reportAll = (from: string, round: number, lks: string[], view = 'view', last = 0, more = false): LockMsg => ({
  t: 'reportAll', from, lk: '', round, view, lks, last, more,
});

describe('coordinator survey (one per view change)', () => {
  /** A coordinator of C among A and B whose survey every node answered: the survey's id. */
  type K = ReturnType<typeof coordinator>;
  /** The survey sent after `k.sent[since]`, checked to ask every connected node: its id. */
  function surveySent(k: K, since: number): number {
    const asked = k.sent.slice(since).filter(([, m]) => m.t === 'inquireAll');
    expect(asked.map(([n]) => n).sort()).toEqual([...k.up].sort());
    return (asked.at(-1)![1] as { round: number }).round;
  }
  /** Every connected node answers survey `id`, in our view unless `views` says otherwise, naming `named[node]`. */
  function answerAll(k: K, id: number, named: Record<string, string[]> = {}, views: Record<string, string> = {}): void {
    for (const n of k.up) handle(k.c, reportAll(n, id, named[n] ?? [], views[n] ?? 'view'));
  }
  /** A survey started and answered by every node. */
  function surveyed(k: K, named: Record<string, string[]> = {}, views: Record<string, string> = {}): void {
    const since = k.sent.length;
    k.c.survey();
    answerAll(k, surveySent(k, since), named, views);
  }

  it('once every node answered in the same view, a lock nobody named is granted at once, with no round', () => {
    const k = coordinator('C', ['A', 'B']);
    surveyed(k);
    handle(k.c, acquireOf('A', 'fresh', 'a1'));
    expect(k.inquiries()).toEqual([]);
    expect(k.grants()).toEqual([['A', 'a1']]);
    expect(k.c.stats()).toMatchObject({ rounds: 0, surveys: 1, surveyed: 1 });
  });

  it('before the survey has ended, and for a lock a node named, the recovery round runs as before', () => {
    const k = coordinator('C', ['A', 'B']);
    k.c.survey();
    const id = surveySent(k, 0);
    handle(k.c, reportAll('A', id, ['held-by-a']));
    handle(k.c, acquireOf('A', 'early', 'a1')); // B has not answered yet
    expect(k.inquiries().map(([n]) => n).sort()).toEqual(['A', 'B']);
    expect(k.grants()).toEqual([]);
    handle(k.c, reportAll('B', id, []));
    handle(k.c, acquireOf('B', 'held-by-a', 'b1'));
    expect(k.inquiries()).toHaveLength(4); // a round for the named lock too
    expect(k.grants()).toEqual([]);
    handle(k.c, acquireOf('B', 'other', 'b2'));
    expect(k.grants()).toEqual([['B', 'b2']]);
  });

  it('a node that answered in another view leaves no authority, until it surveys in ours', () => {
    const k = coordinator('C', ['A', 'B']);
    surveyed(k, {}, { B: 'another view' });
    handle(k.c, acquireOf('A', 'x', 'a1'));
    expect(k.inquiries()).toHaveLength(2);
    expect(k.grants()).toEqual([]);
    // A surveying in our view starts nothing (our survey did not fail because of A)...
    const before = k.sent.length;
    k.c.surveyedBy('A', 'view');
    expect(k.sent.length).toBe(before);
    // ... B doing so does, once: our views agree now.
    k.c.surveyedBy('B', 'view');
    answerAll(k, surveySent(k, before));
    handle(k.c, acquireOf('A', 'y', 'a2'));
    expect(k.grants()).toEqual([['A', 'a2']]);
    expect(k.inquiries()).toHaveLength(2); // only x's round
  });

  it('a node that answered in another view and surveys in ours while our survey is still under way: ours runs again when it ends', () => {
    const k = coordinator('C', ['A', 'B']);
    k.c.survey();
    const id = surveySent(k, 0);
    handle(k.c, reportAll('B', id, [], 'the view before'));
    k.c.surveyedBy('B', 'view'); // B's view caught up; A has not answered yet
    const before = k.sent.length;
    handle(k.c, reportAll('A', id, []));
    answerAll(k, surveySent(k, before)); // the survey ran again
    handle(k.c, acquireOf('A', 'z', 'a1'));
    expect(k.grants()).toEqual([['A', 'a1']]);
    expect(k.inquiries()).toEqual([]);
  });

  it('more locks named than it keeps names for: no authority from that survey, every new lock takes a round', () => {
    const k = coordinator('C', ['A', 'B']);
    k.c.survey();
    const id = surveySent(k, 0);
    handle(k.c, reportAll('A', id, Array.from({ length: MAX_IDLE + 1 }, (_, i) => `held-${i}`)));
    handle(k.c, reportAll('B', id, []));
    handle(k.c, acquireOf('B', 'never-named', 'b1'));
    expect(k.inquiries().map(([n]) => n).sort()).toEqual(['A', 'B']);
    expect(k.grants()).toEqual([]);
    expect(k.c.memory().named).toBe(0); // the names were dropped, not kept beyond the bound
  });

  it('a view change ends the authority: a new lock takes a round until the next survey has ended', () => {
    const k = coordinator('C', ['A', 'B']);
    surveyed(k);
    k.up.delete('B');
    k.c.viewChanged(undefined, 'B');
    handle(k.c, acquireOf('A', 'after-change', 'a1'));
    expect(k.inquiries().map(([n]) => n)).toEqual(['A']);
    expect(k.grants()).toEqual([]);
  });

  it('a lock whose record this node surrendered to another round takes a round here again', () => {
    const k = coordinator('C', ['A', 'B']);
    surveyed(k);
    k.c.surrender('given-up');
    handle(k.c, acquireOf('A', 'given-up', 'a1'));
    expect(k.inquiries()).toHaveLength(2);
    expect(k.grants()).toEqual([]);
  });

  it('a lock taken on from the survey is granted a token above every token a node reported', () => {
    const k = coordinator('C', ['A', 'B']);
    const high = clockToken() + 5_000_000;
    k.c.survey();
    const id = surveySent(k, 0);
    handle(k.c, reportAll('A', id, [], 'view', high, true)); // in two parts
    handle(k.c, acquireOf('B', 'fresh', 'b0'));
    expect(k.grants()).toEqual([]); // A's last part has not come
    handle(k.c, reportAll('A', id, []));
    handle(k.c, reportAll('B', id, []));
    handle(k.c, acquireOf('B', 'fresh2', 'b1'));
    const granted = k.sent.filter(([, m]) => m.t === 'granted').map(([, m]) => m as { req: string; token: number });
    expect(granted.find((g) => g.req === 'b1')!.token).toBeGreaterThan(high);
  });
});

describe('coordinator recovery round', () => {
  it('grants nothing until every connected node has reported, then honours the surviving holder', () => {
    const k = coordinator('C', ['B', 'D']);
    handle(k.c, acquire('D', 'd1', { since: 5 }));
    const rounds = k.inquiries();
    expect(rounds.map(([n]) => n).sort()).toEqual(['B', 'D']);
    expect(k.grants()).toEqual([]);
    const id = rounds[0]![1];
    handle(k.c, report('D', id, [], [['d1', 'D', 5]]));
    expect(k.grants()).toEqual([]); // B has not answered
    handle(k.c, report('B', id, [['b1', 'B', 777, 1]], [], 700));
    expect(k.grants()).toEqual([]); // b1 holds: nobody else may
    handle(k.c, release('B', 'b1'));
    expect(k.grants()).toEqual([['D', 'd1']]);
    const granted = k.sent.find(([, m]) => m.t === 'granted')![1] as { token: number };
    expect(granted.token).toBeGreaterThan(777);
  });

  it('a release that overtakes the report listing its holder does not bring the holder back', () => {
    const k = coordinator('C', ['B']);
    handle(k.c, acquire('C', 'c1'));
    const id = k.inquiries()[0]![1];
    handle(k.c, release('B', 'b1')); // came first, by another path
    handle(k.c, report('B', id, [['b1', 'B', 50, 1]], []));
    expect(k.grants()).toEqual([['C', 'c1']]);
  });

  it('a declined grant reported later as holding counts as waiting', () => {
    const k = coordinator('C', ['A', 'B']);
    handle(k.c, acquire('C', 'c1', { since: 9 }));
    const id = k.inquiries()[0]![1];
    // B refused a late grant of b1 (token 40) from the old coordinator A...
    handle(k.c, { t: 'decline', from: 'B', lk: 'L', req: 'b1', token: 40, set: null, hops: 0 });
    handle(k.c, report('B', id, [], [['b1', 'B', 3]]));
    // ... which A's report still lists as its holder.
    handle(k.c, report('A', id, [['b1', 'B', 40, 3]], [], 40));
    // b1 waits (it asked first), and is granted, not counted as a second holder.
    expect(k.grants()).toEqual([['B', 'b1']]);
    expect(k.c.queues()).toEqual([{ lock: 'L', holders: 1, leased: 0, waiting: 1 }]);
  });

  it('a decline for the current holder puts it back at the head of the queue', () => {
    const k = coordinator('C', []);
    handle(k.c, acquire('C', 'c1'));
    k.up.add('B'); // connected after the round: not asked
    handle(k.c, acquire('B', 'b1'));
    const first = k.sent.find(([, m]) => m.t === 'granted')![1] as { token: number };
    handle(k.c, { t: 'decline', from: 'C', lk: 'L', req: 'c1', token: first.token, set: null, hops: 0 });
    // c1 again (it was next), with a new token; b1 still waits.
    expect(k.grants()).toEqual([['C', 'c1'], ['C', 'c1']]);
    expect(k.c.queues()).toEqual([{ lock: 'L', holders: 1, leased: 0, waiting: 1 }]);
  });

  it('a node that goes down during the round is not waited for, and its holders and waiters go', () => {
    const k = coordinator('C', ['B', 'D']);
    handle(k.c, acquire('C', 'c1'));
    const id = k.inquiries()[0]![1];
    handle(k.c, report('D', id, [['d1', 'D', 10, 1]], []));
    expect(k.grants()).toEqual([]);
    k.up.delete('D');
    k.c.viewChanged(undefined, 'D');
    expect(k.grants()).toEqual([]); // B still pending
    k.up.delete('B');
    k.c.viewChanged(undefined, 'B');
    expect(k.grants()).toEqual([['C', 'c1']]);
  });

  it('a node that comes up during the round is asked too', () => {
    const k = coordinator('C', ['B']);
    handle(k.c, acquire('C', 'c1'));
    const id = k.inquiries()[0]![1];
    k.up.add('E');
    k.c.viewChanged('E', undefined);
    handle(k.c, report('B', id, [], []));
    expect(k.grants()).toEqual([]);
    expect(k.inquiries().map(([n]) => n)).toEqual(['B', 'E']);
    handle(k.c, report('E', id, [], []));
    expect(k.grants()).toEqual([['C', 'c1']]);
  });

  it('retries are decided at the end of the round for requests that arrived during it', () => {
    const k = coordinator('C', ['B']);
    handle(k.c, acquire('C', 'c1', { retries: 0, since: 10 }));
    const id = k.inquiries()[0]![1];
    handle(k.c, report('B', id, [['b1', 'B', 5, 1]], []));
    expect(k.sent.filter(([, m]) => m.t === 'refused').map(([n]) => n)).toEqual(['C']);
    expect(k.grants()).toEqual([]);
  });

  it('a reported holder on a node never connected here blocks the lock until the grace ends', () => {
    vi.useFakeTimers();
    try {
      const k = coordinator('C', ['A']);
      handle(k.c, acquire('C', 'c1'));
      handle(k.c, report('A', k.inquiries()[0]![1], [['x1', 'X', 5, 1]], []));
      expect(k.grants()).toEqual([]);
      vi.advanceTimersByTime(UNSEEN_HOLDER_GRACE_MS - 100);
      expect(k.grants()).toEqual([]);
      vi.advanceTimersByTime(200);
      expect(k.grants()).toEqual([['C', 'c1']]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('an unseen holder whose node then connects is kept past the grace', () => {
    vi.useFakeTimers();
    try {
      const k = coordinator('C', ['A']);
      handle(k.c, acquire('C', 'c1'));
      handle(k.c, report('A', k.inquiries()[0]![1], [['x1', 'X', 5, 1]], []));
      k.up.add('X');
      k.c.viewChanged('X', undefined);
      vi.advanceTimersByTime(UNSEEN_HOLDER_GRACE_MS * 2);
      expect(k.grants()).toEqual([]);
      handle(k.c, release('X', 'x1'));
      expect(k.grants()).toEqual([['C', 'c1']]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a reported holder on a node seen down here is gone', () => {
    const k = coordinator('C', ['A', 'D']);
    k.up.delete('D'); // seen before, down now
    handle(k.c, acquire('C', 'c1'));
    handle(k.c, report('A', k.inquiries()[0]![1], [['d1', 'D', 5, 1]], []));
    expect(k.grants()).toEqual([['C', 'c1']]);
  });

  it('a record whose lock another node now wins is pushed there and forgotten', () => {
    let w = 'C';
    const k = coordinator('C', [], () => w);
    handle(k.c, acquire('C', 'c1', { since: 1 }));
    k.up.add('B');
    handle(k.c, acquire('B', 'b1', { since: 2 }));
    expect(k.grants()).toEqual([['C', 'c1']]);
    w = 'N';
    k.up.add('N');
    k.c.viewChanged('N', undefined);
    const pushed = k.sent.filter(([, m]) => m.t === 'handoff');
    expect(pushed.map(([n]) => n)).toEqual(['N']);
    expect(pushed[0]![1]).toMatchObject({ holders: [['c1', 'C', expect.any(Number), 1]], waiters: [['b1', 'B', 2]] });
    expect(k.c.queues()).toEqual([]);
    handle(k.c, release('C', 'c1')); // no record here any more: forwarded to N
    expect(k.grants()).toEqual([['C', 'c1']]);
    expect(k.sent.at(-1)).toEqual(['N', expect.objectContaining({ t: 'release', req: 'c1', hops: 1 })]);
  });

  it('a holder learned second-hand is verified with its node; a stale one is released there', () => {
    const k = coordinator('C', ['A', 'X']);
    handle(k.c, acquire('C', 'c1'));
    const id = k.inquiries()[0]![1];
    handle(k.c, report('A', id, [], []));
    handle(k.c, report('X', id, [], []));
    handle(k.c, release('C', 'c1'));
    // A pushes a record that still lists x1 (X released it meanwhile, to us) and a waiter.
    handle(k.c, { t: 'handoff', from: 'A', lk: 'L', set: null, holders: [['x1', 'X', 5, 1]], waiters: [['a1', 'A', 2]], last: 5, hops: 0 });
    expect(k.sent.filter(([, m]) => m.t === 'verify').map(([n, m]) => [n, (m as { req: string }).req])).toEqual([['X', 'x1']]);
    expect(k.grants()).toEqual([['C', 'c1']]); // x1 blocks until X answers
    handle(k.c, release('X', 'x1')); // X's answer: it does not hold x1
    expect(k.grants()).toEqual([['C', 'c1'], ['A', 'a1']]);
  });

  it('grants consecutive waiters of one node as a run, each after the one before, and nobody else until all released', () => {
    const k = coordinator('C', []);
    handle(k.c, acquire('C', 'c1'));
    for (const n of ['B', 'D']) k.up.add(n);
    handle(k.c, acquire('B', 'b1'));
    handle(k.c, acquire('B', 'b2'));
    handle(k.c, acquire('D', 'd1'));
    handle(k.c, acquire('B', 'b3'));
    const granted = () =>
      k.sent.filter(([, m]) => m.t === 'granted').map(([n, m]) => {
        const g = m as { req: string; after: string | null; token: number };
        return [n, g.req, g.after, g.token] as const;
      });
    handle(k.c, release('C', 'c1'));
    // b1 and b2 are next and both on B: one run. d1 is not on B, so b3 (behind it) is not in it.
    expect(granted().slice(1).map(([n, req, after]) => [n, req, after])).toEqual([['B', 'b1', null], ['B', 'b2', 'b1']]);
    expect(k.c.queues()).toEqual([{ lock: 'L', holders: 2, leased: 0, waiting: 2 }]);
    handle(k.c, release('B', 'b1'));
    expect(granted()).toHaveLength(3); // b2 still counts as holder
    handle(k.c, release('B', 'b2'));
    handle(k.c, release('D', 'd1'));
    expect(granted().slice(3).map(([n, req, after]) => [n, req, after])).toEqual([['D', 'd1', null], ['B', 'b3', null]]);
    const tokens = granted().map(([, , , t]) => t);
    tokens.forEach((t, i) => i > 0 && expect(t).toBeGreaterThan(tokens[i - 1]!));
    expect(k.c.stats()).toMatchObject({ grants: 5, runs: 1 });
  });

  it('the declined grants of a run go back to the head of the queue in their order', () => {
    const k = coordinator('C', []);
    handle(k.c, acquire('C', 'c1'));
    for (const n of ['B', 'D']) k.up.add(n);
    for (const req of ['b1', 'b2', 'b3']) handle(k.c, acquire('B', req));
    handle(k.c, acquire('D', 'd1'));
    handle(k.c, release('C', 'c1'));
    const run = k.sent.filter(([, m]) => m.t === 'granted').slice(1).map(([, m]) => m as { req: string; token: number });
    expect(run.map((g) => g.req)).toEqual(['b1', 'b2', 'b3']);
    // B answers to another coordinator now and declines all three, in order.
    for (const g of run) handle(k.c, { t: 'decline', from: 'B', lk: 'L', req: g.req, token: g.token, set: null, hops: 0 });
    // Granted again as a run, in the same order, before d1.
    expect(k.grants().slice(4)).toEqual([['B', 'b1'], ['B', 'b2'], ['B', 'b3']]);
    for (const req of ['b1', 'b2', 'b3']) handle(k.c, release('B', req));
    expect(k.grants().at(-1)).toEqual(['D', 'd1']);
  });

  it('a request counted as holder that its node re-registers as waiting is verified, not ignored', () => {
    const k = coordinator('C', []);
    handle(k.c, acquire('C', 'c1'));
    k.up.add('B');
    handle(k.c, acquire('B', 'b1'));
    handle(k.c, release('C', 'c1'));
    const grant = k.sent.filter(([, m]) => m.t === 'granted').at(-1)![1] as { req: string; token: number };
    expect(grant.req).toBe('b1');
    // B declined that grant to a coordinator that is gone, and now asks again as a waiter.
    handle(k.c, acquire('B', 'b1'));
    expect(k.sent.at(-1)).toEqual(['B', { t: 'verify', from: 'C', lk: 'L', req: 'b1', token: grant.token }]);
    // B's answer (it waits): b1 goes back to the head and is granted again.
    handle(k.c, { t: 'decline', from: 'B', lk: 'L', req: 'b1', token: grant.token, set: null, hops: 0 });
    expect(k.grants().filter(([, req]) => req === 'b1')).toHaveLength(2);
  });

  it('after a round, calls made in the same millisecond are served in call order', () => {
    const k = coordinator('C', ['B']);
    handle(k.c, acquire('C', 'c1', { since: 1 }));
    const waiters: WireWaiter[] = Array.from({ length: 12 }, (_, i) => [`B#aa.${12 - i}`, 'B', 5]);
    handle(k.c, report('B', k.inquiries()[0]![1], [], waiters));
    handle(k.c, release('C', 'c1'));
    expect(k.grants().slice(1).map(([, req]) => req)).toEqual(Array.from({ length: 12 }, (_, i) => `B#aa.${i + 1}`));
  });

  it('a report in parts: the round waits for the last part, and long records are cut in parts', () => {
    const k = coordinator('C', ['B']);
    handle(k.c, acquire('C', 'c1', { since: 100 }));
    const id = k.inquiries()[0]![1];
    handle(k.c, report('B', id, [], [['b1', 'B', 1]], 0, true));
    expect(k.grants()).toEqual([]); // more to come
    handle(k.c, report('B', id, [], [['b2', 'B', 2]], 0, false));
    expect(k.grants()).toEqual([['B', 'b1'], ['B', 'b2']]); // one run, in call order, before c1
    const holders: WireHolder[] = [['h1', 'B', 5, 1], ['h2', 'B', 6, 1]];
    const waiters: WireWaiter[] = Array.from({ length: 300 }, (_, i) => [`w${i}`, 'B', i]);
    const parts = recordParts(holders, waiters);
    expect(parts.map((p) => [p.holders.length, p.waiters.length])).toEqual([[2, RECORDS_PER_PART - 2], [0, RECORDS_PER_PART], [0, 300 - 2 * RECORDS_PER_PART + 2]]);
    expect(parts.flatMap((p) => p.waiters)).toEqual(waiters);
    expect(recordParts([], [])).toEqual([{ holders: [], waiters: [] }]);
  });

  it('surrender hands over the record and forgets it', () => {
    const k = coordinator('C', []);
    handle(k.c, acquire('C', 'c1', { since: 1 }));
    handle(k.c, acquire('C', 'c2', { since: 2 }));
    const handed = k.c.surrender('L')!;
    expect(handed.holders.map((h) => h[0])).toEqual(['c1']);
    expect(handed.waiters.map((w) => w[0])).toEqual(['c2']);
    expect(handed.last).toBeGreaterThan(0);
    expect(k.c.queues()).toEqual([]);
  });
});

describe('fencing tokens and coordinator choice', () => {
  it('nextToken is strictly increasing and above the clock term', () => {
    let t = 0;
    for (let i = 0; i < 5000; i++) {
      const n = nextToken(t);
      expect(n).toBeGreaterThan(t);
      t = n;
    }
    const ahead = clockToken() + 10_000_000;
    expect(nextToken(ahead)).toBe(ahead + 1);
    expect(Number.isSafeInteger(nextToken(0))).toBe(true);
  });

  it('token memory keeps the highest token seen for any lock, with no record per lock', () => {
    const m = new TokenMemory();
    expect(m.highest).toBe(0);
    m.bump(5);
    m.bump(3);
    expect(m.highest).toBe(5);
    for (let i = 0; i < 20_000; i++) m.bump(i % 4);
    expect(m.highest).toBe(5);
  });

  it('rendezvous: every node agrees, and a leaving node moves only its own locks', () => {
    const nodes = ['n1', 'n2', 'n3', 'n4'];
    const keys = Array.from({ length: 400 }, (_, i) => `k${i}`);
    const before = keys.map((k) => rendezvous(k, nodes));
    expect(keys.map((k) => rendezvous(k, [...nodes].reverse()))).toEqual(before);
    const after = keys.map((k) => rendezvous(k, ['n1', 'n2', 'n4']));
    keys.forEach((_, i) => {
      if (before[i] !== 'n3') expect(after[i]).toBe(before[i]);
    });
    const share = before.filter((w) => w === 'n3').length / keys.length;
    expect(share).toBeGreaterThan(0.15);
    expect(share).toBeLessThan(0.35);
    expect(rendezvous('k', [])).toBeUndefined();
  });

  it('wire tuples decode to the same messages; malformed ones are refused', () => {
    const msgs: LockMsg[] = [
      acquire('A', 'r1', { held: 7, retries: 2 }),
      release('A', 'r1'),
      { t: 'decline', from: 'A', lk: 'L', req: 'r', token: 3, set: ['A', 'B'], hops: 1 },
      { t: 'probe', from: 'A', lk: 'L', set: null, hops: 0 },
      { t: 'granted', from: 'A', lk: 'L', req: 'r', token: 9, waited: true, after: null, lease: 0 },
      { t: 'granted', from: 'A', lk: 'L', req: 's', token: 10, waited: true, after: 'r', lease: 256 },
      { t: 'revoke', from: 'A', lk: 'L', req: 'r' },
      { t: 'busy', from: 'B', lk: 'L', req: 'r' },
      { t: 'disown', from: 'B', lk: 'L', req: 'r', token: 12 },
      { t: 'moved', from: 'A', lk: 'L' },
      { t: 'refused', from: 'A', lk: 'L', req: 'r', ahead: 2 },
      { t: 'inquire', from: 'A', lk: 'L', round: 4 },
      report('A', 4, [['r', 'A', 5, 1]], [['w', 'B', 2]], 5),
      { t: 'handoff', from: 'A', lk: 'L', set: ['A'], holders: [['r', 'A', 5, 1]], waiters: [], last: 5, hops: 0 },
      { t: 'verify', from: 'A', lk: 'L', req: 'r', token: 5 },
    ];
    for (const m of msgs) expect(decodeLockMsg(encodeLockMsg(m))).toEqual(m);
    const batch = lockBatchOf(encodeLockBatch(msgs.map(encodeLockMsg)));
    expect(batch?.map(decodeLockMsg)).toEqual(msgs);
    expect(lockBatchOf(encodeLockMsg(msgs[0]!))).toBeUndefined();
    for (const bad of [null, 'x', [], [99, 'A', 'L'], [1, 'A', 'L'], [5, 'A', 'L', 'r', '9', true], [5, 'A', 'L', 'r', 9, true, 7], [8, 'A', 'L', 1, [[1]], [], 0], [5, 'A', 'L', 'r', 9, true, null, -1], [5, 'A', 'L', 'r', 9, true, null, 0.5], [11, 'A', 'L'], [12, 'A', 'L', 3], [13, 'B', 'L', 'r'], [14, 'A'], [1, 'A', 'L', 'r', 'A', 1, null, null, null, 0]]) {
      expect(decodeLockMsg(bad)).toBeUndefined();
    }
  });
});

// ---------------------------------------------------------------------------------------
// Whole services on real actor systems, over a network whose deliveries the test orders
// (./helpers/lock-net.ts).

const msgType = (p: { msg: unknown }) => decodeLockMsg(p.msg)?.t;

/**
 * A, B, C connected (X not yet) and a resource A coordinates, C once A is gone, and A again
 * once X has joined: a node that sees X before it sees A die points its requests back at A.
 */
function coordinatorFlipCluster(tag: string): { net: LockNet; r: string } {
  const net = new LockNet();
  const r = resourceFor(tag, { 'A,B,C': 'A', 'B,C': 'C', 'A,B,C,X': 'A', 'B,C,X': 'C' });
  for (const n of ['A', 'B', 'C', 'X']) net.add(n);
  for (const a of ['A', 'B', 'C']) for (const b of ['A', 'B', 'C']) if (a !== b) net.up(a, b);
  return { net, r };
}

describe('lock services under forced message orders', () => {
  it("an old coordinator's grant that arrives after the requester answered the new one is declined: no double grant", async () => {
    const net = new LockNet();
    const names = ['A', 'B', 'C', 'D'];
    // A resource A wins among all four, and D wins once A is gone.
    const r = resourceFor('race', { 'A,B,C,D': 'A', 'B,C,D': 'D' });
    for (const n of names) net.add(n);
    for (const a of names) for (const b of names) if (a !== b) net.up(a, b);
    let inside = 0;
    let violations = 0;
    const order: string[] = [];
    const critical = (tag: string, gate?: Promise<void>) => async (_l: Lock) => {
      if (++inside > 1) violations++;
      order.push(tag);
      await (gate ?? settle());
      inside--;
    };
    const [A, B, C, D] = names.map((n) => net.locks.get(n)!) as [GlobalLocks, GlobalLocks, GlobalLocks, GlobalLocks];
    void A;
    // B holds (granted by A).
    const gateB = deferred<void>();
    const b = B.trans(r, critical('b', gateB.promise));
    await net.deliver();
    expect(order).toEqual(['b']);
    // D asks first (earlier call time) but its message to A is held back; C's reaches A.
    const gateD = deferred<void>();
    const d = D.trans(r, critical('d', gateD.promise));
    await settle();
    await new Promise((res) => setTimeout(res, 5));
    const c = C.trans(r, critical('c'));
    await net.deliver((p) => !(p.from === 'D' && p.to === 'A'));
    // B lets go: A grants C, and that grant stays on the wire.
    gateB.resolve();
    await net.deliver((p) => !(p.from === 'D' && p.to === 'A') && !(p.from === 'A' && p.to === 'C' && msgType(p) === 'granted'));
    // D sees A down first and takes over; C answers D's round and now answers to D.
    net.down('D', 'A');
    await net.deliver((p) => p.from !== 'A' && p.to !== 'A');
    // D asked first, so D runs; only now does A's late grant reach C.
    expect(order).toEqual(['b', 'd']);
    await net.deliver((p) => p.from === 'A' && p.to === 'C');
    await net.deliver((p) => p.to !== 'A' && p.from !== 'A');
    expect(order).toEqual(['b', 'd']); // C still waits: it declined A's grant
    gateD.resolve();
    await net.deliver((p) => p.to !== 'A' && p.from !== 'A');
    net.down('B', 'A');
    net.down('C', 'A');
    await net.deliver((p) => p.to !== 'A' && p.from !== 'A');
    await Promise.all([b, c, d]);
    expect(violations).toBe(0);
    expect(order).toEqual(['b', 'd', 'c']);
    await net.close();
  });

  it('a grant declined to a coordinator that is gone is not lost: the new one asks the requester again', async () => {
    // B answers C's round (A died), but a node joining moves B's view back to A, which B
    // still sees up: B declines C's grant to A, where it is lost. B's later re-registration
    // with C must not be taken for a request C already counts as holder.
    const { net, r } = coordinatorFlipCluster('lost-decline');
    const [A, B, C] = ['A', 'B', 'C'].map((n) => net.locks.get(n)!) as [GlobalLocks, GlobalLocks, GlobalLocks];
    const gateA = deferred<void>();
    void A.trans(r, () => gateA.promise);
    await net.deliver();
    let bRan = false;
    let cRan = false;
    const b = B.trans(r, () => { bRan = true; });
    await net.deliver();
    // A dies; C sees it first and takes over (its own call starts the round); B answers it.
    net.pending = net.pending.filter((p) => p.from !== 'A' && p.to !== 'A');
    net.down('C', 'A');
    await new Promise((res) => setTimeout(res, 5));
    const c = C.trans(r, () => { cRan = true; });
    await net.deliver((p) => p.to !== 'A' && !(p.from === 'C' && p.to === 'B' && msgType(p) === 'granted'));
    // C's grant to B is on the wire; before it arrives, X connects to B (B still sees A up).
    const i = net.pending.findIndex((p) => p.from === 'C' && p.to === 'B' && msgType(p) === 'granted');
    expect(i).toBeGreaterThanOrEqual(0);
    const grant = net.pending.splice(i, 1)[0]!;
    net.up('B', 'X');
    net.up('X', 'B');
    await settle();
    net.pending.unshift(grant);
    await net.deliver((p) => p.to !== 'A'); // B declines it to A: lost
    net.pending = net.pending.filter((p) => p.to !== 'A');
    net.down('B', 'A');
    net.down('X', 'A');
    await net.deliver((p) => p.to !== 'A');
    await Promise.all([b, c]);
    expect([bRan, cRan]).toEqual([true, true]);
    await net.deliver((p) => p.to !== 'A');
    expect(C.stats().queues).toEqual([]);
    gateA.resolve();
    await net.close();
  });

  it('a release sent to a coordinator that is gone is not lost: the node where the holder also registered hears it (disown)', async () => {
    // B holds; A (the coordinator) dies; C takes over and B answers C's round. A node joining
    // then moves B's view back to A, which B still sees up: B re-registers with A and, when
    // its fn ends, releases to A, where it is lost. C, which B answered, is told too.
    const { net, r } = coordinatorFlipCluster('lost-release');
    const [B, C] = ['B', 'C'].map((n) => net.locks.get(n)!) as [GlobalLocks, GlobalLocks];
    const gateB = deferred<void>();
    const b = B.trans(r, () => gateB.promise);
    await net.deliver();
    net.pending = net.pending.filter((p) => p.from !== 'A' && p.to !== 'A');
    net.down('C', 'A');
    let cRan = false;
    const c = C.trans(r, () => { cRan = true; });
    await net.deliver((p) => p.to !== 'A');
    expect(C.stats().queues).toEqual([{ lock: resourceKey(r), holders: 1, leased: 0, waiting: 1 }]);
    net.up('B', 'X');
    net.up('X', 'B');
    gateB.resolve();
    await b;
    await net.deliver((p) => p.to !== 'A');
    net.pending = net.pending.filter((p) => p.to !== 'A'); // what B sent to A is lost
    await c;
    expect(cRan).toBe(true);
    net.down('B', 'A');
    net.down('X', 'A');
    await net.deliver((p) => p.to !== 'A');
    expect(C.stats().queues).toEqual([]);
    await net.close();
  });

  it('a message forwarded to a coordinator that then goes down is not lost: the lock is rebuilt', async () => {
    const net = new LockNet();
    const names = ['A', 'B', 'C'];
    const r = resourceFor('forward', { 'A,B,C': 'A', 'B,C': 'C' });
    for (const n of names) net.add(n);
    for (const a of names) for (const b of names) if (a !== b) net.up(a, b);
    const [, B, C] = names.map((n) => net.locks.get(n)!) as [GlobalLocks, GlobalLocks, GlobalLocks];
    const gate = deferred<void>();
    const held = B.trans(r, () => gate.promise);
    await net.deliver();
    const got = deferred<number>();
    // B sees A down and re-registers its holder with C, which still sees A up: C forwards to A.
    net.down('B', 'A');
    await net.deliver((p) => p.to !== 'A');
    expect(net.pending.some((p) => p.from === 'C' && p.to === 'A')).toBe(true);
    // Then C sees A down: it probes the lock and rebuilds it from B's report.
    net.down('C', 'A');
    await net.deliver((p) => p.to !== 'A');
    expect(C.stats().queues).toEqual([{ lock: resourceKey(r), holders: 1, leased: 0, waiting: 0 }]);
    const waiter = C.trans(r, (l) => got.resolve(l.token));
    await net.deliver((p) => p.to !== 'A');
    expect(C.stats().queues).toEqual([{ lock: resourceKey(r), holders: 1, leased: 0, waiting: 1 }]);
    gate.resolve();
    await held;
    await net.deliver((p) => p.to !== 'A');
    await waiter;
    expect(await got.promise).toBeGreaterThan(0);
    await net.close();
  });

  it('a joining node connected to the old coordinator but not yet to the holder learns the holder from the old coordinator', async () => {
    const net = new LockNet();
    const names = ['A', 'B', 'C'];
    const r = resourceFor('join', { 'A,B,C': 'A', 'A,B,C,N': 'N' });
    for (const n of [...names, 'N']) net.add(n);
    for (const a of names) for (const b of names) if (a !== b) net.up(a, b);
    const [, B, C] = names.map((n) => net.locks.get(n)!) as [GlobalLocks, GlobalLocks, GlobalLocks];
    let inside = 0;
    let violations = 0;
    const gate = deferred<void>();
    const held = B.trans(r, async () => {
      if (++inside > 1) violations++;
      await gate.promise;
      inside--;
    });
    await net.deliver();
    expect(inside).toBe(1);
    // N joins: linked to A and C, not yet to B (the mesh is still dialling).
    for (const x of ['A', 'C']) {
      net.up('N', x);
      net.up(x, 'N');
    }
    await net.deliver();
    const waiter = C.trans(r, async () => {
      if (++inside > 1) violations++;
      inside--;
      return 'c';
    });
    await net.deliver();
    expect(violations).toBe(0);
    expect(inside).toBe(1);
    // B and N connect; B lets go; C gets the lock.
    net.up('N', 'B');
    net.up('B', 'N');
    await net.deliver();
    gate.resolve();
    await held;
    await net.deliver();
    await expect(waiter).resolves.toBe('c');
    expect(violations).toBe(0);
    await net.close();
  });
});

// ---------------------------------------------------------------------------------------
// Runs: consecutive waiters of one node granted together and passed down on that node.

describe('runs of grants to one node', () => {
  /** A resource coordinated by A in a cluster of A and B, with A holding it behind `gate`. */
  async function setup(tag: string) {
    const net = new LockNet();
    const r = resourceFor(tag, { 'A,B': 'A' });
    const A = net.add('A');
    const B = net.add('B');
    net.up('A', 'B');
    net.up('B', 'A');
    const gateA = deferred<void>();
    const a = A.trans(r, () => gateA.promise);
    await net.deliver();
    let inside = 0;
    let violations = 0;
    const order: string[] = [];
    const tokens: number[] = [];
    const critical = (name: string, gate?: Promise<void>) => async (l: Lock) => {
      if (++inside > 1) violations++;
      order.push(name);
      tokens.push(l.token);
      await (gate ?? settle());
      inside--;
      return name;
    };
    /** B's requests reach A, then A lets go: B's run of grants is on its way (pending). */
    const releaseA = async (): Promise<void> => {
      await net.deliver((p) => p.to === 'A');
      gateA.resolve();
      await a;
    };
    return { net, r, A, B, a, gateA, releaseA, order, tokens, critical, violations: () => violations };
  }
  const grantsTo = (net: LockNet, to: string) => net.pending.filter((p) => p.to === to && msgType(p) === 'granted');

  it('waiters of one node queued together are granted in one go and hold one at a time, in order', async () => {
    const t = await setup('run');
    const gate1 = deferred<void>();
    const bs = [t.B.trans(t.r, t.critical('b1', gate1.promise)), t.B.trans(t.r, t.critical('b2')), t.B.trans(t.r, t.critical('b3'))];
    await t.net.deliver((p) => p.to === 'A');
    expect(t.A.stats().queues).toEqual([{ lock: resourceKey(t.r), holders: 1, leased: 0, waiting: 3 }]);
    t.gateA.resolve();
    await t.a;
    await settle();
    // One release, one run: the three grants leave A together, b2 after b1, b3 after b2.
    const grants = grantsTo(t.net, 'B').map((p) => decodeLockMsg(p.msg) as { req: string; after: string | null });
    expect(grants).toHaveLength(3);
    expect(grants[0]!.after).toBeNull();
    expect(grants[1]!.after).toBe(grants[0]!.req);
    expect(grants[2]!.after).toBe(grants[1]!.req);
    await t.net.deliver((p) => p.to === 'B');
    // b1 holds; b2 and b3 were granted but wait on B for it.
    expect(t.order).toEqual(['b1']);
    expect(t.B.stats()).toMatchObject({ holding: 1, waiting: 2 });
    gate1.resolve();
    expect(await Promise.all(bs)).toEqual(['b1', 'b2', 'b3']);
    expect(t.order).toEqual(['b1', 'b2', 'b3']);
    expect(t.violations()).toBe(0);
    t.tokens.forEach((tok, i) => i > 0 && expect(tok).toBeGreaterThan(t.tokens[i - 1]!));
    await t.net.deliver();
    expect(t.A.stats().coordinator).toMatchObject({ runs: 1 });
    expect(t.A.stats().queues).toEqual([]);
    // A waits behind nobody now: the three releases reached it.
    expect(await t.A.trans(t.r, () => 'free', { retries: 0 })).toBe('free');
    await t.net.close();
  });

  it('a request of a run that gives up before its turn is skipped; the lock passes to the one after it', async () => {
    const t = await setup('run-timeout');
    const gate1 = deferred<void>();
    let ranB2 = false;
    const b1 = t.B.trans(t.r, t.critical('b1', gate1.promise));
    const b2 = t.B.trans(t.r, () => { ranB2 = true; }, { timeout: 30 });
    const b3 = t.B.trans(t.r, t.critical('b3'));
    await t.releaseA();
    await t.net.deliver((p) => p.to === 'B');
    expect(t.order).toEqual(['b1']);
    // b2's grant came in the run, but its turn has not: its timeout still applies.
    await expect(b2).rejects.toMatchObject({ name: 'LockNotAcquiredError', reason: 'timeout' });
    expect(t.order).toEqual(['b1']);
    gate1.resolve();
    expect(await Promise.all([b1, b3])).toEqual(['b1', 'b3']);
    expect(ranB2).toBe(false);
    expect(t.violations()).toBe(0);
    await t.net.deliver();
    expect(t.A.stats().queues).toEqual([]);
    await t.net.close();
  });

  it("a run's grant that arrives after the request before it gave up still waits for the holder", async () => {
    const t = await setup('run-split');
    const gate1 = deferred<void>();
    const b1 = t.B.trans(t.r, t.critical('b1', gate1.promise));
    const b2 = t.B.trans(t.r, () => 'b2', { timeout: 30 });
    const b3 = t.B.trans(t.r, t.critical('b3'));
    await t.releaseA();
    await settle();
    const [g1, g2, g3] = grantsTo(t.net, 'B');
    // b1's and b2's grants arrive; b3's is held back until b2 has given up (and is forgotten).
    await t.net.deliver((p) => p === g1 || p === g2);
    await expect(b2).rejects.toMatchObject({ reason: 'timeout' });
    await t.net.deliver((p) => p === g3);
    await settle();
    expect(t.order).toEqual(['b1']); // b3 waits: b1 still holds
    gate1.resolve();
    expect(await Promise.all([b1, b3])).toEqual(['b1', 'b3']);
    expect(t.violations()).toBe(0);
    await t.net.close();
  });

  it('close gives up the requests granted in a run behind a holder: their fn never runs', async () => {
    const t = await setup('run-close');
    const gate1 = deferred<void>();
    let ranB2 = false;
    const b1 = t.B.trans(t.r, t.critical('b1', gate1.promise));
    const b2 = t.B.trans(t.r, () => { ranB2 = true; });
    const b2Failed = b2.then(() => undefined, (e: unknown) => e);
    await t.releaseA();
    await t.net.deliver((p) => p.to === 'B');
    expect(t.B.stats()).toMatchObject({ holding: 1, waiting: 1 });
    await t.B.close();
    expect(await b2Failed).toMatchObject({ name: 'LockNotAcquiredError', reason: 'closed' });
    gate1.resolve();
    expect(await b1).toBe('b1');
    await settle();
    expect(ranB2).toBe(false);
    await t.net.deliver();
    expect(t.A.stats().queues).toEqual([]);
    await t.net.close();
  });

  it('a coordinator that takes over mid-run counts the granted requests as holders', async () => {
    const net = new LockNet();
    const r = resourceFor('run-takeover', { 'A,B,C': 'A', 'B,C': 'C' });
    const A = net.add('A');
    const B = net.add('B');
    const C = net.add('C');
    for (const x of ['A', 'B', 'C']) for (const y of ['A', 'B', 'C']) if (x !== y) net.up(x, y);
    const gateA = deferred<void>();
    const a = A.trans(r, () => gateA.promise);
    await net.deliver();
    let inside = 0;
    let violations = 0;
    const order: string[] = [];
    const critical = (name: string, gate?: Promise<void>) => async () => {
      if (++inside > 1) violations++;
      order.push(name);
      await (gate ?? settle());
      inside--;
    };
    const gate1 = deferred<void>();
    const bs = [B.trans(r, critical('b1', gate1.promise)), B.trans(r, critical('b2'))];
    await net.deliver();
    gateA.resolve();
    await a;
    await net.deliver();
    expect(order).toEqual(['b1']);
    // A goes away; C coordinates now and learns from B that b1 and b2 both hold (b2 in the run).
    const c1 = C.trans(r, critical('c1'));
    net.down('B', 'A');
    net.down('C', 'A');
    await net.deliver((p) => p.to !== 'A' && p.from !== 'A');
    expect(C.stats().queues).toEqual([{ lock: resourceKey(r), holders: 2, leased: 0, waiting: 1 }]);
    gate1.resolve();
    await Promise.all(bs);
    await net.deliver((p) => p.to !== 'A' && p.from !== 'A');
    await c1;
    expect(order).toEqual(['b1', 'b2', 'c1']);
    expect(violations).toBe(0);
    await net.close();
  });
});

describe('views that disagree for a while', () => {
  it('a round given up when the view heals sends the nodes it asked back to the winner (moved), so their requests are served', async () => {
    const { net, r, A, B, C } = threeNodes('moved');
    const gateA = deferred<void>();
    const a = A.trans(r, () => gateA.promise);
    await net.deliver();
    const ran: string[] = [];
    const b = B.trans(r, () => void ran.push('b'));
    await net.deliver(); // b waits at A
    // A and C lose each other (B still sees both): C wins in its view and asks B.
    net.down('A', 'C');
    net.down('C', 'A');
    const c = C.trans(r, () => void ran.push('c'));
    await net.deliver((p) => p.from === 'C' && p.to === 'B' && msgType(p) === 'inquire');
    // B answers (b answers to C now), but the link heals before the answer arrives: C gives
    // its round up and hands the lock back to A.
    expect(net.pending.some((p) => p.from === 'B' && p.to === 'C' && msgType(p) === 'report')).toBe(true);
    net.up('A', 'C');
    net.up('C', 'A');
    expect(await net.deliverLogged()).toContain('C>B moved');
    gateA.resolve();
    await a;
    await net.deliver();
    await Promise.all([b, c]);
    expect(ran.sort()).toEqual(['b', 'c']);
    expect(A.stats().queues).toEqual([]);
    await net.close();
  });

  it('a grant a holding request refuses is not disowned before the request is done: after the heal nobody else runs beside it', async () => {
    // N's request r waits at X (the winner once all see each other); W, which X does not
    // see yet, takes over in its view, asks N, and grants r. X then grants r too (its grant
    // is refused: r answers to W). When W and X meet, W hands X its record (r holds), and X
    // must keep counting r until r is done.
    const r = resourceFor('refused', { 'N,W': 'W', 'N,X': 'X', 'N,W,X': 'X' });
    const net = new LockNet();
    for (const n of ['N', 'W', 'X']) net.add(n);
    net.link('N', 'X');
    net.link('N', 'W');
    const [N, W, X] = ['N', 'W', 'X'].map((n) => net.locks.get(n)!) as [GlobalLocks, GlobalLocks, GlobalLocks];
    let running = 0;
    let most = 0;
    const critical = (gate: Promise<void>) => async (): Promise<void> => {
      most = Math.max(most, ++running);
      await gate;
      running--;
    };
    const gateX = deferred<void>();
    const x = X.trans(r, critical(gateX.promise));
    await net.deliver();
    const gateR = deferred<void>();
    const rr = N.trans(r, critical(gateR.promise));
    await net.deliver((p) => p.from === 'N' && p.to === 'X'); // r waits at X
    const w = W.trans(r, () => undefined); // W's round asks N: r answers to W, and W grants it
    await net.deliver((p) => p.from !== 'X' && p.to !== 'X');
    expect(running).toBe(2); // x and r: the views disagree (a documented non-guarantee)
    const gateY = deferred<void>();
    const y = X.trans(r, critical(gateY.promise));
    gateX.resolve();
    await x;
    await net.deliver((p) => p.from === 'X' && p.to === 'X'); // X grants r; the grant waits on the wire
    expect(net.pending.some((p) => p.from === 'X' && p.to === 'N' && msgType(p) === 'granted')).toBe(true);
    // W and X meet: from now on every view agrees, and r still runs.
    net.link('W', 'X');
    most = running;
    await net.deliver((p) => p.from === 'W' && p.to === 'X' && msgType(p) === 'handoff');
    await net.deliver();
    expect(most).toBe(1); // y waits for r
    gateR.resolve();
    gateY.resolve();
    await net.deliver();
    await Promise.all([rr, y, w]);
    await net.deliver();
    expect(X.stats().queues).toEqual([]);
    await net.close();
  });

  it('a request sent on (moved) answers to the winner of its own view, not to the node the old coordinator names', async () => {
    const r = resourceFor('moved-own', { 'A,N': 'A', 'A,N,W': 'W', 'A,N,W,X': 'X', 'N,W,X': 'X' });
    const net = new LockNet();
    for (const n of ['A', 'N', 'W', 'X']) net.add(n);
    net.link('X', 'W');
    net.link('X', 'N');
    net.link('W', 'N');
    net.link('A', 'N');
    net.up('W', 'A'); // W sees A; A does not see W yet
    const [A, N, X] = ['A', 'N', 'X'].map((n) => net.locks.get(n)!) as [GlobalLocks, GlobalLocks, GlobalLocks];
    const ran: string[] = [];
    const gateX = deferred<void>();
    const x = X.trans(r, async () => {
      ran.push('x');
      await gateX.promise;
    });
    await net.deliver();
    net.up('X', 'A');
    const gateA = deferred<void>();
    const a = A.trans(r, async () => {
      ran.push('a');
      await gateA.promise;
    });
    await net.deliver((p) => !(p.from === 'A' && p.to === 'N'));
    const n = N.trans(r, () => void ran.push('n'));
    await net.deliver((p) => p.from === 'N' && p.to === 'X'); // n waits at X, behind x
    await net.deliver(); // A's round asks N: n answers to A, which grants a
    net.up('A', 'W'); // A hands its record to W, and tells N (moved)
    await net.deliver();
    gateX.resolve();
    await x;
    await net.deliver();
    gateA.resolve();
    await a;
    await net.deliver();
    net.up('A', 'X'); // every view agrees
    await net.deliver();
    await n;
    expect(ran).toEqual(['x', 'a', 'n']);
    await net.close();
  });

  it('a holder that is done tells every node it registered with (disown): a coordinator whose view disagreed keeps no ghost holder', async () => {
    const { net, r, A, B, C } = threeNodes('disown');
    const gateB = deferred<void>();
    const ran: string[] = [];
    const b = B.trans(r, async () => {
      ran.push('b');
      await gateB.promise;
    });
    await net.deliver(); // b holds, granted by A
    // A and C lose each other: C takes over in its view; B answers C's round (b now answers
    // to C, and C counts it as holder), while A still counts b as its own holder.
    net.down('A', 'C');
    net.down('C', 'A');
    const c = C.trans(r, () => void ran.push('c'));
    await net.deliver((p) => p.to !== 'A' && p.from !== 'A');
    expect(C.stats().queues).toEqual([{ lock: resourceKey(r), holders: 1, leased: 0, waiting: 1 }]);
    // b is done: its release goes to C (its coordinator now), and A is told too.
    gateB.resolve();
    await b;
    const seen = await net.deliverLogged();
    await c;
    expect(seen).toContain('B>A disown');
    expect(A.stats().queues).toEqual([]);
    // The link heals: nobody is left counting a holder, and a later call is served.
    net.up('A', 'C');
    net.up('C', 'A');
    await net.deliver();
    const again = B.trans(r, () => void ran.push('b again'));
    await net.deliver();
    await again;
    expect(ran).toEqual(['b', 'c', 'b again']);
    await net.close();
  });
});
