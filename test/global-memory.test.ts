// What the lock service keeps per lock once nobody holds it or waits for it (issue 17): past
// the WARM_IDLE most recently idle, a compact idle record at its coordinator with no object
// of its own, and no token record at all,
// with every invariant of the full entry it replaces: its authority (no recovery round on
// the next request), its end (view change, another node's round, the MAX_IDLE bound), and
// fencing tokens that never go back, also after the record was dropped. The first tests
// drive the Coordinator state machine with messages fed by hand (as global-protocol does);
// the last runs two nodes over real TCP and counts what each keeps (lockMemory).
import { afterEach, describe, expect, it } from 'vitest';
import { Coordinator, MAX_IDLE, WARM_IDLE, type CoordinatorContext } from '../src/mesh/global/coordinator.js';
import { TokenMemory, clockToken } from '../src/mesh/global/fencing.js';
import type { LockMsg } from '../src/mesh/global/messages.js';
import { lockMemory } from '../src/mesh/global/diagnostics.js';
import { rendezvous } from '../src/mesh/global/rendezvous.js';
import { resourceKey } from '../src/mesh/global/service.js';
import { startNode, type Node } from '../src/node.js';

/** Other locks taken after the one watched: twice MAX_IDLE, so its idle record is dropped. */
const OTHERS = 2 * MAX_IDLE;

function coordinator(self: string, peers: string[]) {
  const sent: [string, LockMsg][] = [];
  const up = new Set(peers);
  let winner = self;
  const ctx: CoordinatorContext = {
    self,
    send: (node, msg) => sent.push([node, msg]),
    winner: () => winner,
    peers: () => up,
    isUp: (n) => n === self || up.has(n),
    seen: (n) => n === self || peers.includes(n),
    tokens: new TokenMemory(),
    localReport: () => ({ holders: [], waiters: [] }),
    localLocks: () => [],
    view: () => 'view',
  };
  const c = new Coordinator(ctx);
  let seq = 0;
  const handle = (m: LockMsg) => c.handle(m as Parameters<Coordinator['handle']>[0]);
  /** Inquiries sent so far (one per recovery round and peer). */
  const inquiries = () => sent.filter(([, m]) => m.t === 'inquire').length;
  /** Answers every inquiry not answered yet with an empty report, as a peer that knows nothing of the lock. */
  const reportAll = (from = 0) => {
    for (const [node, m] of sent.slice(from)) {
      if (m.t === 'inquire') handle({ t: 'report', from: node, lk: m.lk, round: m.round, holders: [], waiters: [], last: 0, more: false });
    }
  };
  /** One `trans` of `node` on `lk`: acquire, the grant (answering the round, if one starts), release; the token. */
  const take = (lk: string, node = self): number => {
    const req = `${node}#t.${++seq}`;
    const mark = sent.length;
    handle({ t: 'acquire', from: node, lk, req, node, since: Date.now(), set: null, retries: null, held: null, hops: 0, lease: false });
    reportAll(mark);
    const grant = sent.slice(mark).find(([, m]) => m.t === 'granted' && m.req === req);
    if (grant === undefined) throw new Error(`no grant for ${lk}`);
    handle({ t: 'release', from: node, lk, req, set: null, hops: 0 });
    return (grant[1] as { token: number }).token;
  };
  return { c, sent, handle, take, inquiries, setWinner: (w: string) => (winner = w) };
}

describe('idle lock records at the coordinator', () => {
  it('keep no entry object beyond the warm ones: every idle lock shares one value, and they stop at MAX_IDLE', () => {
    const k = coordinator('C', []);
    for (let i = 0; i < OTHERS; i++) k.take(`k${i}`);
    const mem = k.c.memory();
    expect(mem.active).toBe(0);
    expect(mem.warm).toBe(WARM_IDLE);
    expect(mem.idle).toBe(MAX_IDLE - WARM_IDLE);
    // All granted once to C: one shared value (grantee C, streak 1) behind all the records.
    expect(mem.idleValues).toBe(1);
    expect(k.c.stats().locks).toBe(MAX_IDLE);
    expect(k.c.queues()).toEqual([]);
  });

  it('a lock idle here is granted again at once, with no recovery round, until its record is dropped', () => {
    const k = coordinator('C', ['B']);
    k.take('L', 'B');
    const rounds = k.inquiries();
    expect(rounds).toBe(1);
    k.take('L', 'B');
    expect(k.inquiries()).toBe(rounds); // authority kept while idle
    // MAX_IDLE other locks go idle after it: its record is the oldest, dropped.
    for (let i = 0; i < MAX_IDLE; i++) k.take(`k${i}`, 'B');
    const before = k.inquiries();
    k.take('L', 'B');
    expect(k.inquiries()).toBe(before + 1); // a round again: nothing is known of it any more
  });

  it("another node's recovery round ends an idle lock's authority here, warm or compact", () => {
    const k = coordinator('C', ['B']);
    k.take('L', 'B');
    expect(k.c.surrender('L')).toMatchObject({ holders: [], waiters: [] }); // warm: its entry
    let before = k.inquiries();
    k.take('L', 'B');
    expect(k.inquiries()).toBe(before + 1);
    for (let i = 0; i < WARM_IDLE; i++) k.take(`k${i}`, 'B');
    expect(k.c.surrender('L')).toBeUndefined(); // compact: nothing held or waited for to hand over
    before = k.inquiries();
    k.take('L', 'B');
    expect(k.inquiries()).toBe(before + 1);
  });

  it('an idle lock that another node wins after a view change is dropped; won back, it runs a round', () => {
    const k = coordinator('C', ['B']);
    k.take('L', 'B');
    for (let i = 0; i < WARM_IDLE; i++) k.take(`k${i}`, 'B'); // L keeps a compact record, they their entries
    expect(k.c.memory()).toMatchObject({ warm: WARM_IDLE, idle: 1 });
    k.setWinner('B');
    k.c.viewChanged(undefined, undefined);
    expect(k.c.memory()).toMatchObject({ active: 0, warm: 0, idle: 0 });
    expect(k.sent.filter(([, m]) => m.t === 'handoff')).toEqual([]); // nothing to push
    k.setWinner('C');
    const before = k.inquiries();
    k.take('L', 'B');
    expect(k.inquiries()).toBe(before + 1);
  });

  it('keeps the grant streak while idle: the third grant in a row to one node is a lease', () => {
    const k = coordinator('C', ['B', 'D']);
    const leases = () => k.c.stats().leases;
    const takeLeasing = (lk: string) => {
      const req = `B#l.${k.sent.length}`;
      const mark = k.sent.length;
      k.handle({ t: 'acquire', from: 'B', lk, req, node: 'B', since: Date.now(), set: null, retries: null, held: null, hops: 0, lease: true });
      for (const [node, m] of k.sent.slice(mark)) {
        if (m.t === 'inquire') k.handle({ t: 'report', from: node, lk, round: m.round, holders: [], waiters: [], last: 0, more: false });
      }
      const grant = k.sent.slice(mark).find(([, m]) => m.t === 'granted' && m.req === req)![1] as { lease: number };
      if (grant.lease === 0) k.handle({ t: 'release', from: 'B', lk, req, set: null, hops: 0 });
      return grant.lease;
    };
    // Between two calls, enough other locks go idle that L keeps only its compact record.
    const coolDown = (from: number) => {
      for (let i = 0; i < WARM_IDLE; i++) k.take(`k${from + i}`, 'D');
      // The WARM_IDLE just taken are warm; L and those before them are compact records.
      expect(k.c.memory()).toMatchObject({ active: 0, warm: WARM_IDLE, idle: from + 1 });
    };
    expect(takeLeasing('L')).toBe(0);
    coolDown(0);
    expect(takeLeasing('L')).toBe(0);
    coolDown(WARM_IDLE);
    expect(takeLeasing('L')).toBeGreaterThan(0);
    expect(leases()).toBe(1);
  });
});

describe('fencing tokens of a lock whose record was dropped', () => {
  it('stay above a token learned from a node whose clock runs ahead, after 20k other locks went idle', () => {
    const k = coordinator('C', []);
    // An old coordinator on a host whose clock runs about 16 minutes ahead handed the lock
    // over: its tokens are far above this node's clock term.
    const ahead = clockToken() + 1_000_000_000;
    k.handle({ t: 'handoff', from: 'B', lk: 'L', set: null, holders: [], waiters: [], last: ahead, hops: 0 });
    const first = k.take('L');
    expect(first).toBeGreaterThan(ahead);
    for (let i = 0; i < OTHERS; i++) k.take(`k${i}`);
    expect(k.c.stats().locks).toBe(MAX_IDLE); // L's record is gone
    const again = k.take('L');
    expect(again).toBeGreaterThan(first);
    expect(k.take('L')).toBeGreaterThan(again);
  });
});

describe('two nodes over TCP', () => {
  const live: Node[] = [];
  afterEach(async () => {
    await Promise.all(live.splice(0).map((n) => n.close()));
  });

  it('a node that took 20k locks, one after another, keeps no record per lock; the coordinator only bounded idle records', async () => {
    const tag = `gm${process.pid}`;
    const cookie = `cookie-${tag}`;
    const b = await startNode({ name: `${tag}-b`, port: 0, cookie });
    live.push(b);
    const a = await startNode({ name: `${tag}-a`, port: 0, cookie, seeds: [b.address!] });
    live.push(a);
    await Promise.all([a.onNodeUp(b.name), b.onNodeUp(a.name)]);
    // Resources that B coordinates: A is only their requester.
    const names = [a.name, b.name];
    const atB: string[] = [];
    for (let i = 0; atB.length <= OTHERS; i++) {
      const r = `tenant-${i}:token`;
      if (rendezvous(resourceKey(r), names) === b.name) atB.push(r);
    }
    const [watched, ...others] = atB;
    const first = await a.global.trans(watched, (l) => l.token);
    for (const r of others) await a.global.trans(r, () => undefined);
    const again = await a.global.trans(watched, (l) => l.token);
    expect(again).toBeGreaterThan(first);

    // The last release is on its way to B: once there, B holds no entry at all.
    await expect.poll(() => lockMemory(b.global).active, { timeout: 10_000, interval: 5 }).toBe(0);
    const atCoordinator = lockMemory(b.global);
    expect(atCoordinator.warm).toBe(WARM_IDLE);
    expect(atCoordinator.idle).toBe(MAX_IDLE - WARM_IDLE);
    expect(atCoordinator.idleValues).toBe(1); // all granted once to A: one value shared by every record
    expect(atCoordinator.named).toBe(0); // the survey named nothing, and taking locks adds no name
    const atRequester = lockMemory(a.global);
    expect(atRequester).toMatchObject({ active: 0, warm: 0, idle: 0, idleValues: 0, requests: 0, leases: 0 });
    expect(atRequester.winners).toBeLessThanOrEqual(1024);
    expect(atRequester.resends).toBeLessThanOrEqual(2 * 1024);
    expect(a.global.stats().coordinator.locks).toBe(0);
  }, 120_000);
});
