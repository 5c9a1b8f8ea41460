// The lock protocol under random schedules: whole GlobalLocks services on real ActorSystems,
// over a network that delivers one pending cast at a time on a link chosen at random (each
// link stays FIFO, as TCP is), while calls arrive alone or in bursts (so runs form), fns end
// in random order, waiters abort, a fn re-enters, a node crashes (its peers see it down one
// by one, in random order, after a failure-detection time) or closes and leaves, a new node
// joins, and one node takes the locks most of the time (leases, revokes). After every
// schedule, and after every live node has taken every lock once more: never two fns at once
// on a lock among live nodes, tokens strictly increasing in the order fns start, no fn after
// its node closed, every call settled, and no holder, waiter or queue left anywhere but the
// idle leases, each counted by its coordinator. fast-check draws the schedules (the seed of
// each).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deferred, type Deferred } from '../src/util/deferred.js';
import { LockNet, settle } from './helpers/lock-net.js';

/** xorshift32: the schedule's own random numbers, from its seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

interface Call {
  node: string;
  lock: string;
  id: number;
  state: 'pending' | 'inside' | 'done' | 'failed';
  gate?: Deferred<void>;
  abort?: AbortController;
}

interface Mode {
  nodes: number;
  crash?: boolean;
  close?: boolean;
  join?: boolean;
  split?: boolean;
  /** Most calls come from one node (so it gets leases, and others make it give them back). */
  favor?: boolean;
  /**
   * Links between two nodes drop (both sides see the other down, what was in flight is
   * lost) and come back, while both still see the others. Views then disagree: as with a
   * partition, two holders may run at once (a documented non-guarantee), so mutual exclusion
   * and token order are not checked from the first drop on, until the end: once every link
   * is back and every earlier call has settled, the last calls are checked for mutual
   * exclusion again. That every call is served and nothing is left over is checked as always.
   */
  flap?: boolean;
}

const STEPS = 250;

/**
 * Failure detection takes time: peers learn of a death (or a leave) at least this long after
 * it. The fencing tokens' clock term relies on it (src/mesh/global/fencing.ts: a new
 * coordinator's clock must be past the tokens the dead could have handed out, which run at
 * most 1 ms ahead of the clock); the mesh's detection takes seconds.
 */
const DETECT_MS = 3;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One random schedule; returns what went wrong (nothing, if all is well). */
async function schedule(seed: number, mode: Mode): Promise<string[]> {
  const R = rng(seed);
  const pick = <T>(a: T[]): T => a[Math.floor(R() * a.length)]!;
  const net = new LockNet({ splitBatches: mode.split ?? false });
  const names = Array.from({ length: mode.nodes }, (_, i) => `N${i}`);
  const joiner = 'J';
  for (const n of names) net.add(n);
  if (mode.join) net.add(joiner);
  for (const a of names) for (const b of names) if (a !== b) net.up(a, b);
  const LOCKS = ['L0', 'L1'];
  const calls: Call[] = [];
  const inside = new Map<string, Call[]>();
  const lastToken = new Map<string, number>();
  const errors: string[] = [];
  const closing = new Set<string>();
  const toNotify: [string, string][] = [];
  const joinPending: [string, string][] = [];
  let seq = 0;
  let crashed: string | undefined;
  /** Views have disagreed: mutual exclusion and token order are not promised. */
  let flapped = false;
  let tokensUnordered = false;
  /** A link dropped now (both sides see each other down), if any. */
  let cut: [string, string] | undefined;
  /** When each gone node went (performance.now()). */
  const goneAt = new Map<string, number>();
  const detectable = ([, gone]: [string, string]): boolean => performance.now() - goneAt.get(gone)! >= DETECT_MS;
  let closed: string | undefined;
  const live = (): string[] => [...names, ...(mode.join ? [joiner] : [])].filter((n) => !net.dead.has(n));
  const fullMesh = (): boolean => live().every((a) => live().every((b) => a === b || net.views.get(a)!.has(b)));

  const start = (node: string, lock: string, step: number): void => {
    const c: Call = { node, lock, id: ++seq, state: 'pending' };
    if (R() < 0.3) c.abort = new AbortController();
    // A gated fn (it ends when the schedule says), else a synchronous one; the favoured node
    // mostly runs quick ones, as a node that keeps re-taking a lock does.
    if (R() >= (mode.favor && node === 'N0' ? 0.7 : 0.3)) c.gate = deferred<void>();
    calls.push(c);
    const fn = (l: { token: number }): number | Promise<number> => {
      if (c.state !== 'pending') errors.push(`call ${c.id}: fn ran in state ${c.state}`);
      if (closing.has(node)) errors.push(`call ${c.id}: fn ran on ${node} after close`);
      c.state = 'inside';
      if (net.dead.has(node)) {
        c.state = 'done';
        return c.id;
      }
      const others = (inside.get(lock) ?? []).filter((o) => !net.dead.has(o.node) && !closing.has(o.node));
      if (others.length > 0 && !flapped) errors.push(`step ${step}: two holders of ${lock}: ${c.id}@${node} and ${others.map((o) => `${o.id}@${o.node}`).join(',')}`);
      const last = lastToken.get(lock) ?? 0;
      if (l.token <= last && !tokensUnordered) errors.push(`step ${step}: token ${l.token} of ${lock} not above ${last}`);
      lastToken.set(lock, Math.max(last, l.token));
      inside.set(lock, [...(inside.get(lock) ?? []), c]);
      const leave = (): number => {
        inside.set(lock, (inside.get(lock) ?? []).filter((o) => o !== c));
        c.state = 'done';
        return c.id;
      };
      if (!c.gate) return leave();
      if (R() < 0.2) {
        // Re-entrance: runs at once, under the same lock and token.
        let ran = false;
        net.locks.get(node)!.trans(lock, (l2) => {
          ran = true;
          if (l2.token !== l.token) errors.push(`call ${c.id}: re-entrant token differs`);
        }).then(
          () => ran || errors.push(`call ${c.id}: re-entrant fn did not run`),
          (e: unknown) => closing.has(node) || net.dead.has(node) || errors.push(`call ${c.id}: re-entrant trans failed: ${String(e)}`),
        );
      }
      return c.gate.promise.then(leave);
    };
    net.locks.get(node)!.trans(lock, fn, c.abort ? { signal: c.abort.signal } : {}).then(
      () => {},
      (e: unknown) => {
        if (c.state === 'pending') c.state = 'failed';
        else if (c.state !== 'done') errors.push(`call ${c.id}: rejected in state ${c.state}: ${String(e)}`);
      },
    );
  };

  for (let step = 0; step < STEPS; step++) {
    const x = R();
    if (x < 0.2 && step < STEPS * 0.7) {
      // A call, or a burst of calls from one node (they queue together: a run).
      const callers = live().filter((n) => n !== joiner || fullMesh());
      const node = mode.favor && callers.includes('N0') && R() < 0.75 ? 'N0' : pick(callers);
      const lock = pick(LOCKS);
      const burst = R() < (mode.favor && node === 'N0' ? 0.1 : 0.4) ? 2 + Math.floor(R() * 3) : 1;
      for (let b = 0; b < burst; b++) start(node, lock, step);
    } else if (x < 0.3) {
      const ins = calls.filter((c) => c.state === 'inside' && c.gate);
      if (ins.length) pick(ins).gate!.resolve();
    } else if (x < 0.35) {
      const waiting = calls.filter((c) => c.state === 'pending' && c.abort && !c.abort.signal.aborted);
      if (waiting.length) pick(waiting).abort!.abort();
    } else if (x < 0.37 && mode.close && closed === undefined && step > STEPS * 0.2) {
      closed = pick(names);
      closing.add(closed);
      void net.locks.get(closed)!.close();
    } else if (x < 0.4 && closed !== undefined && !net.dead.has(closed) && !net.pending.some((p) => p.from === closed)) {
      // It leaves once all it sent has arrived; the others see it down one by one.
      const gone = closed;
      net.dead.add(gone);
      goneAt.set(gone, performance.now());
      net.pending = net.pending.filter((p) => p.to !== gone);
      for (const n of live()) if (net.views.get(n)!.has(gone)) toNotify.push([n, gone]);
    } else if (x < 0.37 && mode.crash && crashed === undefined && step > STEPS * 0.2) {
      crashed = pick(names);
      const gone = crashed;
      net.dead.add(gone);
      goneAt.set(gone, performance.now());
      net.pending = net.pending.filter((p) => p.from !== gone && p.to !== gone);
      for (const n of live()) if (net.views.get(n)!.has(gone)) toNotify.push([n, gone]);
    } else if (x < 0.42 && toNotify.some(detectable)) {
      const ready = toNotify.filter(detectable);
      const [n, gone] = ready[Math.floor(R() * ready.length)]!;
      toNotify.splice(toNotify.indexOf(ready.find(([a, b]) => a === n && b === gone)!), 1);
      net.down(n, gone);
    } else if (x < 0.45 && x >= 0.42 && mode.flap && cut === undefined) {
      const ns = live().filter((n) => n !== joiner);
      const a = pick(ns);
      const b = pick(ns.filter((n) => n !== a));
      if (net.views.get(a)!.has(b) && net.views.get(b)!.has(a)) {
        flapped = true;
        tokensUnordered = true;
        cut = [a, b];
        net.down(a, b);
        net.down(b, a);
      }
    } else if (x < 0.48 && x >= 0.45 && cut !== undefined) {
      const [a, b] = cut;
      cut = undefined;
      if (!net.dead.has(a) && !net.dead.has(b)) {
        net.up(a, b);
        net.up(b, a);
      }
    } else if (x < 0.44 && mode.join && joinPending.length === 0 && net.views.get(joiner)!.nodes().length === 0 && step > STEPS * 0.1) {
      for (const n of live()) if (n !== joiner) joinPending.push([joiner, n], [n, joiner]);
    } else if (x < 0.5 && joinPending.length) {
      const [a, b] = joinPending.splice(Math.floor(R() * joinPending.length), 1)[0]!;
      if (!net.dead.has(a) && !net.dead.has(b)) net.up(a, b);
    } else {
      const ls = net.links();
      if (ls.length) net.deliverOne(...pick(ls));
    }
    await settle(3);
  }

  // The end: every node sees every death and every join, every fn ends, everything arrives.
  if (toNotify.length) await sleep(DETECT_MS);
  for (const [n, gone] of toNotify.splice(0)) net.down(n, gone);
  if (cut !== undefined && !net.dead.has(cut[0]) && !net.dead.has(cut[1])) {
    net.up(cut[0], cut[1]);
    net.up(cut[1], cut[0]);
  }
  for (const [a, b] of joinPending.splice(0)) if (!net.dead.has(a) && !net.dead.has(b)) net.up(a, b);
  const settled = (): boolean => calls.every((c) => c.state === 'done' || c.state === 'failed' || net.dead.has(c.node));
  const drain = async (): Promise<void> => {
    for (let round = 0; round < 3000; round++) {
    // A closed node leaves once what it sent has arrived, as node.close() does.
    if (closed !== undefined && !net.dead.has(closed) && !net.pending.some((p) => p.from === closed)) {
      const gone = closed;
      net.dead.add(gone);
      net.pending = net.pending.filter((p) => p.to !== gone);
      await sleep(DETECT_MS);
      for (const n of live()) if (net.views.get(n)!.has(gone)) net.down(n, gone);
    }
    for (const c of calls) if (c.state === 'inside' && c.gate) c.gate.resolve();
    const ls = net.links();
    if (ls.length) net.deliverOne(...pick(ls));
    await settle(3);
    if (ls.length === 0 && net.links().length === 0 && settled()) break;
    }
  };
  await drain();
  // Then every live node takes every lock once more: a lock leased to one node must be
  // revoked for the others. Views agree now, and nothing runs: exclusion holds again.
  flapped = false;
  for (const n of live()) if (!closing.has(n)) for (const lock of LOCKS) start(n, lock, STEPS);
  await drain();
  const stuck = calls.filter((c) => !net.dead.has(c.node) && !closing.has(c.node) && (c.state === 'pending' || c.state === 'inside'));
  if (stuck.length) errors.push(`never served: ${stuck.map((c) => `${c.id}@${c.node}/${c.lock}`).join(' ')}`);
  // What may be left: leases, each held idle by its node (as many as coordinators count).
  let leasedIdle = 0;
  let leasedCounted = 0;
  for (const n of live()) {
    const s = net.locks.get(n)!.stats();
    if (s.holding || s.waiting) errors.push(`${n}: requests left: holding ${s.holding}, waiting ${s.waiting}`);
    const left = s.queues.filter((q) => q.waiting > 0 || q.holders !== q.leased);
    if (left.length) errors.push(`${n}: queues left: ${JSON.stringify(left)}`);
    leasedIdle += s.leased;
    for (const q of s.queues) leasedCounted += q.leased;
  }
  if (leasedIdle !== leasedCounted) errors.push(`leases: ${leasedIdle} held idle, ${leasedCounted} counted by coordinators`);
  await net.close();
  return errors;
}

// The same schedules on every run (so the suite is repeatable); set LOCK_SCHEDULES_SEED to
// another number, or to 'random', to explore others.
const SEEDS = process.env.LOCK_SCHEDULES_SEED;
const fcSeed = SEEDS === 'random' ? undefined : Number(SEEDS ?? 20261126);

const property = (mode: Mode, numRuns: number) => async (): Promise<void> => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 - 1 }), async (seed) => {
      const errors = await schedule(seed, mode);
      expect(errors, `schedule seed ${seed}`).toEqual([]);
    }),
    { numRuns, ...(fcSeed === undefined ? {} : { seed: fcSeed }) },
  );
};

describe('global locks under random schedules', () => {
  it('3 nodes: bursts, runs, aborts, re-entrance', property({ nodes: 3 }, 200), 60_000);
  it('3 nodes, one crashes (its peers see it down in random order)', property({ nodes: 3, crash: true }, 300), 60_000);
  it('4 nodes, one closes and leaves, one crashes', property({ nodes: 4, crash: true, close: true }, 400), 60_000);
  it('4 nodes and a crash while a fifth joins, batches cut across frames', property({ nodes: 4, crash: true, join: true, split: true }, 200), 60_000);
  it('3 nodes, one takes the locks most of the time (leases and revokes), one crashes, one closes', property({ nodes: 3, favor: true, crash: true, close: true }, 300), 60_000);
  it('3 nodes whose links drop and come back, one taking the locks most of the time: every call served after the heal', property({ nodes: 3, favor: true, flap: true }, 300), 60_000);
  it('4 nodes, links drop and come back, and one crashes', property({ nodes: 4, flap: true, crash: true }, 200), 60_000);
});
