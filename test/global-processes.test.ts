// Global locks across real node processes: contention, FIFO, kill -9 of the holder and of
// the coordinator, giving up, node-local locks, re-entrance and close.
import { afterEach, describe, expect, it } from 'vitest';
import { disposeAllPeers, startCluster, type Cluster, type Peer } from './helpers/peers.js';
import { GLOBAL_PEER } from './fixtures/global-peer.js';
import { rendezvous } from '../src/mesh/global/rendezvous.js';
import { resourceKey } from '../src/mesh/global/service.js';
import type { ActorRefData } from '../src/actors/ref.js';
import type { LockStats } from '../src/mesh/global/index.js';

const FAILURE_TIMEOUT = 1000;
const OPTS = { cookie: 'global-processes', heartbeatInterval: 100, failureTimeout: FAILURE_TIMEOUT };

afterEach(async () => {
  await disposeAllPeers();
});

interface Report {
  entries: string[];
  violations: string[];
}
type Settled = { ok: boolean; token?: number; reason?: string; name?: string; ms: number };

const stats = (p: Peer) => p.run<LockStats>(GLOBAL_PEER, 'lockStats');
/** Waiters queued for `lock` at its coordinator, over every live peer. */
async function queued(peers: Peer[], lock: string): Promise<number> {
  const all = await Promise.all(peers.map(stats));
  return all.reduce((sum, s) => sum + (s.queues.find((q) => q.lock === lock)?.waiting ?? 0), 0);
}
async function eventually(cond: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
/** A resource (with prefix) whose coordinator among the peers' names is `want`. */
function wonBy(c: Cluster, want: Peer, prefix: string): string {
  const names = c.peers.map((p) => p.name);
  for (let i = 0; ; i++) if (rendezvous(resourceKey(`${prefix}-${i}`), names) === want.name) return `${prefix}-${i}`;
}
const settled = async (p: Peer, tag: string): Promise<Settled> => (await p.waitEvent('settled', (t) => t === tag))[1] as Settled;
const entered = async (p: Peer, tag: string): Promise<{ token: number; at: number }> => {
  const [, token, at] = await p.waitEvent('entered', (t) => t === tag);
  return { token: token as number, at: at as number };
};

describe('global.trans across processes', () => {
  it('3 processes x 10 concurrent trans with an await inside: one holder at a time, tokens strictly increasing', async () => {
    await using c = await startCluster(3, OPTS);
    const guard = await c.peers[0]!.run<ActorRefData>(GLOBAL_PEER, 'spawnGuard');
    const tokens = await Promise.all(c.peers.map((p) => p.run<number[]>(GLOBAL_PEER, 'contend', guard, 'contended', 10, 2)));
    const report = await c.peers[1]!.run<Report>(GLOBAL_PEER, 'guardReport', guard);
    expect(report.violations).toEqual([]);
    expect(report.entries).toHaveLength(30);
    expect(new Set(tokens.flat()).size).toBe(30);
    // Each process asked 10 times at once: its requests reached the coordinator together and
    // were granted as runs, passed down in that process (the path checked above).
    const all = await Promise.all(c.peers.map(stats));
    expect(all.reduce((n, s) => n + s.coordinator.runs, 0)).toBeGreaterThan(0);
  });

  it('serves staggered waiters from three processes in arrival order', async () => {
    await using c = await startCluster(3, OPTS);
    const [a, b, d] = c.peers as [Peer, Peer, Peer];
    const guard = await a.run<ActorRefData>(GLOBAL_PEER, 'spawnGuard');
    await a.run(GLOBAL_PEER, 'transInBackground', 'fifo', 'holder', {}, guard);
    await entered(a, 'holder');
    const order = [b, d, a, d, b];
    for (const [i, p] of order.entries()) {
      await p.run(GLOBAL_PEER, 'transInBackground', 'fifo', `w${i}`, {}, guard, 1);
      await eventually(async () => (await queued(c.peers, 'fifo')) === i + 1);
    }
    await a.run(GLOBAL_PEER, 'letGo', 'holder');
    for (const [i, p] of order.entries()) expect((await settled(p, `w${i}`)).ok).toBe(true);
    const report = await a.run<Report>(GLOBAL_PEER, 'guardReport', guard);
    expect(report.violations).toEqual([]);
    expect(report.entries).toEqual(['holder', 'w0', 'w1', 'w2', 'w3', 'w4']);
  });

  it('kill -9 of the holder: a waiter on another node runs within the failure-detection time', async () => {
    await using c = await startCluster(3, OPTS);
    const [holder, waiter, coordinator] = c.peers as [Peer, Peer, Peer];
    const r = wonBy(c, coordinator, 'killed-holder');
    await holder.run(GLOBAL_PEER, 'transInBackground', r, 'h', {});
    const held = await entered(holder, 'h');
    await waiter.run(GLOBAL_PEER, 'transInBackground', r, 'w', {}, null, 1);
    await eventually(async () => (await queued([waiter, coordinator], resourceKey(r))) === 1);
    const killedAt = Date.now();
    holder.kill();
    const got = await entered(waiter, 'w');
    expect(got.at - killedAt).toBeLessThan(FAILURE_TIMEOUT + 2000);
    expect(got.token).toBeGreaterThan(held.token);
    expect((await settled(waiter, 'w')).ok).toBe(true);
  });

  it('a lease across processes: a node that keeps taking a lock retakes it alone; a call elsewhere revokes it; kill -9 of a node holding an idle lease frees it within the failure-detection time', async () => {
    await using c = await startCluster(3, OPTS);
    const [holder, waiter, coordinator] = c.peers as [Peer, Peer, Peer];
    const r = wonBy(c, coordinator, 'leased');
    const takeOnce = async (p: Peer, tag: string): Promise<number> => {
      await p.run(GLOBAL_PEER, 'transInBackground', r, tag, {}, null, 0);
      const { token } = await entered(p, tag);
      expect((await settled(p, tag)).ok).toBe(true);
      return token;
    };
    const tokens: number[] = [];
    for (let i = 0; i < 8; i++) tokens.push(await takeOnce(holder, `h${i}`));
    expect(await stats(holder)).toMatchObject({ leased: 1, retakes: 5 });
    expect((await stats(coordinator)).coordinator).toMatchObject({ grants: 3, leases: 1 });
    // Another process asks: the lease is revoked, and its token is above every reserved one.
    const wToken = await takeOnce(waiter, 'w');
    expect(wToken).toBeGreaterThan(Math.max(...tokens));
    expect((await stats(coordinator)).coordinator.revokes).toBe(1);
    expect((await stats(holder)).leased).toBe(0);
    // The holder takes it back to a lease, then dies with the lease idle.
    for (let i = 8; i < 14; i++) tokens.push(await takeOnce(holder, `h${i}`));
    expect((await stats(holder)).leased).toBe(1);
    holder.kill();
    const killedAt = Date.now();
    await waiter.run(GLOBAL_PEER, 'transInBackground', r, 'w2', {}, null, 0);
    const got = await entered(waiter, 'w2');
    expect(got.at - killedAt).toBeLessThan(FAILURE_TIMEOUT + 2000);
    expect(got.token).toBeGreaterThan(Math.max(...tokens));
  });

  it('kill -9 of the coordinator with the holder and waiters elsewhere: no double grant, everyone served', async () => {
    await using c = await startCluster(4, OPTS);
    const [holder, w1, w2, coordinator] = c.peers as [Peer, Peer, Peer, Peer];
    const r = wonBy(c, coordinator, 'killed-coordinator');
    const guard = await holder.run<ActorRefData>(GLOBAL_PEER, 'spawnGuard');
    await holder.run(GLOBAL_PEER, 'transInBackground', r, 'h', {}, guard);
    const held = await entered(holder, 'h');
    const waiters: [Peer, string][] = [[w1, 'a1'], [w2, 'b1'], [w1, 'a2'], [holder, 'h2'], [w2, 'b2']];
    for (const [i, [p, tag]] of waiters.entries()) {
      await p.run(GLOBAL_PEER, 'transInBackground', r, tag, {}, guard, 5);
      await eventually(async () => (await queued(c.peers, resourceKey(r))) === i + 1);
    }
    coordinator.kill();
    const survivors = [holder, w1, w2];
    // A new coordinator rebuilds the lock: the surviving holder and every waiter.
    await eventually(async () => {
      const all = await Promise.all(survivors.map(stats));
      return all.some((s) => s.queues.some((q) => q.lock === resourceKey(r) && q.holders === 1 && q.waiting === 5));
    });
    // Nobody was let in next to the holder meanwhile.
    expect((await holder.run<Report>(GLOBAL_PEER, 'guardReport', guard)).entries).toEqual(['h']);
    await holder.run(GLOBAL_PEER, 'letGo', 'h');
    for (const [p, tag] of waiters) expect((await settled(p, tag)).ok).toBe(true);
    const report = await holder.run<Report>(GLOBAL_PEER, 'guardReport', guard);
    expect(report.violations).toEqual([]);
    expect(report.entries).toHaveLength(6);
    expect(report.entries[0]).toBe('h');
    const tokens = await Promise.all(waiters.map(async ([p, tag]) => (await settled(p, tag)).token!));
    for (const t of tokens) expect(t).toBeGreaterThan(held.token);
  });

  it('kill -9 of a node that was both holder and coordinator: waiters elsewhere are served, tokens still increase', async () => {
    await using c = await startCluster(3, OPTS);
    const [victim, b, d] = c.peers as [Peer, Peer, Peer];
    const r = wonBy(c, victim, 'holder-and-coordinator');
    await victim.run(GLOBAL_PEER, 'transInBackground', r, 'v', {});
    // Nobody else has seen this token: only the clock term of the next one can be above it.
    const tv = await entered(victim, 'v');
    const guard = await b.run<ActorRefData>(GLOBAL_PEER, 'spawnGuard');
    for (const [i, [p, tag]] of ([[b, 'b1'], [d, 'd1'], [b, 'b2']] as const).entries()) {
      await p.run(GLOBAL_PEER, 'transInBackground', r, tag, {}, guard, 5);
      await eventually(async () => (await queued([victim], resourceKey(r))) === i + 1);
    }
    victim.kill();
    for (const [p, tag] of [[b, 'b1'], [d, 'd1'], [b, 'b2']] as const) {
      const s = await settled(p, tag);
      expect(s.ok).toBe(true);
      expect(s.token!).toBeGreaterThan(tv.token);
    }
    const report = await b.run<Report>(GLOBAL_PEER, 'guardReport', guard);
    expect(report.violations).toEqual([]);
    expect(report.entries).toEqual(['b1', 'd1', 'b2']);
  });

  it('retries, timeout and signal from another process give LockNotAcquiredError and fn never runs', async () => {
    await using c = await startCluster(2, OPTS);
    const [a, b] = c.peers as [Peer, Peer];
    await a.run(GLOBAL_PEER, 'transInBackground', 'giving-up', 'h', {});
    await entered(a, 'h');
    await b.run(GLOBAL_PEER, 'transInBackground', 'giving-up', 'try', { retries: 0 });
    await b.run(GLOBAL_PEER, 'transInBackground', 'giving-up', 'timeout', { timeout: 200 });
    await b.run(GLOBAL_PEER, 'transInBackground', 'giving-up', 'signal', { abortAfter: 200 });
    for (const [tag, reason] of [['try', 'retries'], ['timeout', 'timeout'], ['signal', 'aborted']] as const) {
      expect(await settled(b, tag)).toMatchObject({ ok: false, name: 'LockNotAcquiredError', reason });
    }
    expect(b.events.some((e) => e.type === 'entered')).toBe(false);
    // Their places are gone: nobody queues behind the holder.
    await eventually(async () => (await queued(c.peers, 'giving-up')) === 0);
    expect((await stats(b)).failures).toMatchObject({ retries: 1, timeout: 1, aborted: 1 });
    await a.run(GLOBAL_PEER, 'letGo', 'h');
    expect((await settled(a, 'h')).ok).toBe(true);
  });

  it('a node-local lock does not block another node; re-entrance holds in a child process', async () => {
    await using c = await startCluster(2, OPTS);
    const [a, b] = c.peers as [Peer, Peer];
    await a.run(GLOBAL_PEER, 'transInBackground', 'local', 'ha', { nodes: [a.name] });
    await entered(a, 'ha');
    await b.run(GLOBAL_PEER, 'transInBackground', 'local', 'hb', { nodes: [b.name], retries: 0 }, null, 1);
    expect(await settled(b, 'hb')).toMatchObject({ ok: true });
    const nested = await b.run<{ outer: number; inner: number; other: number }>(GLOBAL_PEER, 'reentrant', 'nested');
    expect(nested.inner).toBe(nested.outer);
    expect(nested.other).not.toBe(nested.outer);
    await a.run(GLOBAL_PEER, 'letGo', 'ha');
  });

  it('close of the holder process releases its lock to a waiter elsewhere', async () => {
    await using c = await startCluster(3, OPTS);
    const [a, b, coordinator] = c.peers as [Peer, Peer, Peer];
    const r = wonBy(c, coordinator, 'closing');
    await a.run(GLOBAL_PEER, 'transInBackground', r, 'h', {});
    const held = await entered(a, 'h');
    await b.run(GLOBAL_PEER, 'transInBackground', r, 'w', {}, null, 1);
    await eventually(async () => (await queued([b, coordinator], resourceKey(r))) === 1);
    await a.close();
    const got = await entered(b, 'w');
    expect(got.token).toBeGreaterThan(held.token);
  });

  it('partition: each side may grant; on heal the holders re-register and nobody else gets in until both released', async () => {
    await using c = await startCluster(3, OPTS);
    const [a, b, d] = c.peers as [Peer, Peer, Peer];
    const r = wonBy(c, b, 'partition');
    await a.run(GLOBAL_PEER, 'transInBackground', r, 'a', {});
    const ta = await entered(a, 'a');
    await d.run(GLOBAL_PEER, 'transInBackground', r, 'd', {});
    await eventually(async () => (await queued([b, d], resourceKey(r))) === 1);
    // a goes silent: the others declare it down and the lock moves on (a's fn still runs).
    a.pause();
    const td = await entered(d, 'd');
    expect(td.token).toBeGreaterThan(ta.token); // the fence: a's writes would be refused now
    await b.run(GLOBAL_PEER, 'transInBackground', r, 'b', {}, null, 1);
    await eventually(async () => (await queued([b, d], resourceKey(r))) === 1);
    // Heal: a is back and its holder re-registers; the coordinator counts two holders.
    a.resume();
    await Promise.all(c.peers.map((p) => p.waitNodes(c.peers.filter((q) => q !== p).map((q) => q.name))));
    const lockOf = async (): Promise<{ holders: number; waiting: number } | undefined> => {
      for (const p of c.peers) {
        const q = (await stats(p)).queues.find((x) => x.lock === resourceKey(r));
        if (q) return q;
      }
      return undefined;
    };
    await eventually(async () => (await lockOf())?.holders === 2);
    await d.run(GLOBAL_PEER, 'letGo', 'd');
    await eventually(async () => {
      const q = await lockOf();
      return q?.holders === 1 && q.waiting === 1;
    });
    expect(b.events.some((e) => e.type === 'entered')).toBe(false);
    await a.run(GLOBAL_PEER, 'letGo', 'a');
    const tb = await entered(b, 'b');
    expect(tb.token).toBeGreaterThan(td.token);
  });
});
