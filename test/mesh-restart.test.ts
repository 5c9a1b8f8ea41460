// A node that comes back as a new process under its old name, with real processes: after a
// kill -9, and while its old process is frozen (SIGSTOP) with its sockets open. And two live
// processes claiming one name: the second is refused on both sides.
import { afterEach, describe, expect, test } from 'vitest';
import { disposeAllPeers, spawnPeer, startCluster, type Peer } from './helpers/peers.js';
import { GLOBAL_PEER } from './fixtures/global-peer.js';

afterEach(disposeAllPeers);

const cookie = 'restart-cookie';
// A failure timeout far longer than the waits below: only the liveness probe can explain a
// readmission in time.
const timing = { heartbeatInterval: 200, failureTimeout: 30_000 };
const WITHIN = 10_000;
/** Where each peer's events stood when the test began to watch. */
const marks = new Map<Peer, number>();
const mark = (...peers: Peer[]): void => {
  for (const p of peers) marks.set(p, p.events.length);
};
/** Resolves once `p` has seen `name` go down and come up again since its mark. */
const readmitted = (p: Peer, name: string): Promise<unknown> =>
  p.waitEvent('nodeup', (n) => n === name && transitions(p, name).length >= 2, WITHIN);

/** The order of `nodedown`/`nodeup` events of `name` seen by `p` (from event number `from`). */
const transitions = (p: Peer, name: string, from = marks.get(p) ?? 0): string[] =>
  p.events.slice(from).filter((e) => (e.type === 'nodeup' || e.type === 'nodedown') && e.args[0] === name).map((e) => `${e.type}:${String(e.args[1] ?? '')}`);

async function restart(name: string, seed: Peer): Promise<Peer> {
  const p = await spawnPeer();
  await p.start({ name, port: 0, seeds: [seed.address!], cookie, ...timing });
  return p;
}

describe('restart under the same name', () => {
  test('kill -9, then a new process with the same name on another port: nodedown then nodeup, its locks released, later tokens greater', async () => {
    await using c = await startCluster(3, { cookie, ...timing });
    const [a, b, old] = c.peers as [Peer, Peer, Peer];
    const resource = `restart-lock-${Date.now()}`;
    await old.run(GLOBAL_PEER, 'transInBackground', resource, 'held');
    const [, heldToken] = (await old.waitEvent('entered', (tag) => tag === 'held')) as [string, number];
    const oldAddress = old.address;
    mark(a, b);
    old.kill();
    await old.exited();
    const fresh = await restart(old.name, a);
    expect(fresh.address).not.toBe(oldAddress);
    for (const p of [a, b]) {
      await readmitted(p, old.name);
      expect(transitions(p, old.name)).toEqual([expect.stringMatching(/^nodedown:/), 'nodeup:']);
    }
    await fresh.waitNodes([a.name, b.name], WITHIN);
    // The lock the old incarnation held is free: the new one takes it, with a greater token.
    await fresh.run(GLOBAL_PEER, 'transInBackground', resource, 'again', { timeout: WITHIN }, null, 0);
    const [, outcome] = (await fresh.waitEvent('settled', (tag) => tag === 'again', WITHIN)) as [string, { ok: boolean; token: number }];
    expect(outcome.ok).toBe(true);
    expect(outcome.token).toBeGreaterThan(heldToken);
    await a.run(GLOBAL_PEER, 'transInBackground', resource, 'by-a', { timeout: WITHIN }, null, 0);
    const [, byA] = (await a.waitEvent('settled', (tag) => tag === 'by-a', WITHIN)) as [string, { ok: boolean; token: number }];
    expect(byA.ok).toBe(true);
    expect(byA.token).toBeGreaterThan(outcome.token);
  });

  test('the old process frozen with its sockets open: the new one is admitted after a failed probe, long before failureTimeout', async () => {
    await using c = await startCluster(3, { cookie, ...timing });
    const [a, b, old] = c.peers as [Peer, Peer, Peer];
    const resource = `frozen-lock-${Date.now()}`;
    await old.run(GLOBAL_PEER, 'transInBackground', resource, 'held');
    const [, heldToken] = (await old.waitEvent('entered', (tag) => tag === 'held')) as [string, number];
    mark(a, b);
    old.pause();
    const started = Date.now();
    const fresh = await restart(old.name, a);
    // startNode resolved after its first round: a let it in (after probing the frozen one).
    expect(fresh.initialNodes).toContain(a.name);
    for (const p of [a, b]) {
      await readmitted(p, old.name);
      expect(transitions(p, old.name)).toEqual(['nodedown:restarted', 'nodeup:']);
    }
    await fresh.waitNodes([a.name, b.name], WITHIN);
    // Far less than failureTimeout: the probe decided, not the silence.
    expect(Date.now() - started).toBeLessThan(timing.failureTimeout);
    await fresh.run(GLOBAL_PEER, 'transInBackground', resource, 'again', { timeout: WITHIN }, null, 0);
    const [, outcome] = (await fresh.waitEvent('settled', (tag) => tag === 'again', WITHIN)) as [string, { ok: boolean; token: number }];
    expect(outcome).toMatchObject({ ok: true });
    expect(outcome.token).toBeGreaterThan(heldToken);
    // The old process wakes up: its links are gone, and its name is taken by a live process.
    old.resume();
    await old.waitEvent('refused', (info: { reason: string }) => info.reason === 'name_in_use', WITHIN);
    expect(await a.nodes()).toEqual([b.name, old.name].sort());
    expect(transitions(a, old.name)).toEqual(['nodedown:restarted', 'nodeup:']);
  });

  test('two live processes with one name: the second is refused (name_in_use) on both sides, the first stays', async () => {
    await using c = await startCluster(2, { cookie, ...timing });
    const [a, b] = c.peers as [Peer, Peer];
    const twin = await spawnPeer();
    const r = await twin.start({ name: b.name, port: 0, seeds: [a.address!], cookie, ...timing });
    expect(r.nodes).toEqual([]);
    const [info] = (await a.waitEvent('refused', (i: { reason: string }) => i.reason === 'name_in_use', WITHIN)) as [{ by: string; peer: string; message: string }];
    expect(info).toMatchObject({ by: 'local', peer: b.name });
    expect(info.message).toMatch(/in use/);
    // The twin refused during startNode, before any listener: a process warning names it.
    await waitOutput(twin, /EXPIRABLE_STORE_REFUSED/);
    expect(twin.output).toMatch(/reason: name_in_use/);
    expect(twin.output).toContain(a.address!);
    expect(await a.nodes()).toEqual([b.name]);
    expect(a.events.some((e) => e.type === 'nodedown')).toBe(false);
  });
});

async function waitOutput(p: Peer, re: RegExp): Promise<void> {
  const until = Date.now() + WITHIN;
  while (!re.test(p.output)) {
    if (Date.now() > until) throw new Error(`no ${re} in the output of ${p.name}: ${p.output.slice(-1000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
