// Failure detection across real processes: kill -9, a stopped (silent) peer, goodbye on close.
import { describe, expect, test } from 'vitest';
import { startCluster } from './helpers/peers.js';
import { FIXTURES } from './helpers/fixtures.js';

type Ref = { node: string; id: string };
const FAILURE_TIMEOUT = 1000;
const OPTS = { cookie: 'mesh-failure-cookie', heartbeatInterval: 100, failureTimeout: FAILURE_TIMEOUT };

describe('failure detection', () => {
  test('kill -9 of a peer: nodedown and NodeDownError for a pending 30 s call in under 2 s', async () => {
    await using c = await startCluster(3, OPTS);
    const [a, b, d] = c.peers as [typeof c.seed, typeof c.seed, typeof c.seed];
    const slow = await b.run<Ref>(FIXTURES, 'spawnCounter');
    await a.run(FIXTURES, 'callInBackground', slow, { sleep: 60_000 }, 'pending', 30_000);
    await a.run(FIXTURES, 'monitor', slow, 'slow-actor');
    const killedAt = Date.now();
    b.kill();
    const [, outcome] = (await a.waitEvent('settled', (tag) => tag === 'pending')) as [string, { ok: boolean; name: string }];
    const elapsed = Date.now() - killedAt;
    expect(outcome).toMatchObject({ ok: false, name: 'NodeDownError' });
    expect(elapsed).toBeLessThan(2000);
    // nodedown is reported before the pending call fails, and the monitor hears noconnection.
    const types = a.events.map((e) => `${e.type}:${String(e.args[0])}`);
    expect(types.indexOf(`nodedown:${b.name}`)).toBeGreaterThanOrEqual(0);
    expect(types.indexOf(`nodedown:${b.name}`)).toBeLessThan(types.indexOf('settled:pending'));
    const [, reason] = await a.waitEvent('nodedown', (n) => n === b.name);
    expect(['connection_closed', 'ECONNRESET']).toContain(reason); // not 'closed': no goodbye was said
    expect(await a.waitEvent('down', (tag) => tag === 'slow-actor')).toEqual(['slow-actor', 'noconnection']);
    await d.waitEvent('nodedown', (n) => n === b.name);
    // The rest of the cluster is undisturbed.
    expect(await a.nodes()).toEqual([d.name]);
    expect(await d.nodes()).toEqual([a.name]);
  });

  test('a stopped peer (SIGSTOP) is down after the failure timeout, and rejoins when it resumes', async () => {
    await using c = await startCluster(2, OPTS);
    const [a, b] = c.peers as [typeof c.seed, typeof c.seed];
    const pausedAt = Date.now();
    b.pause();
    const [, reason] = await a.waitEvent('nodedown', (n) => n === b.name);
    const elapsed = Date.now() - pausedAt;
    expect(reason).toBe('heartbeat_timeout');
    // Not before the peer was silent for about the failure timeout (one heartbeat of slack).
    expect(elapsed).toBeGreaterThanOrEqual(FAILURE_TIMEOUT - 150);
    b.resume();
    // Both sides redial: the link comes back.
    await a.waitEvent('nodeup', (n) => n === b.name, 15_000);
    await a.waitNodes([b.name]);
    await b.waitNodes([a.name]);
  });

  test('close says goodbye: peers see nodedown with reason closed at once', async () => {
    await using c = await startCluster(3, { ...OPTS, failureTimeout: 20_000, heartbeatInterval: 1000 });
    const [a, b, d] = c.peers as [typeof c.seed, typeof c.seed, typeof c.seed];
    const closedAt = Date.now();
    await b.run(FIXTURES, 'closeNode');
    const [, reasonA] = await a.waitEvent('nodedown', (n) => n === b.name);
    const [, reasonD] = await d.waitEvent('nodedown', (n) => n === b.name);
    expect([reasonA, reasonD]).toEqual(['closed', 'closed']);
    // Far sooner than the 20 s failure timeout would allow.
    expect(Date.now() - closedAt).toBeLessThan(5000);
    expect(await a.nodes()).toEqual([d.name]);
    // The closing node reported its peers down too.
    expect(b.events.filter((e) => e.type === 'nodedown').map((e) => e.args[1])).toEqual(['closed', 'closed']);
  });
});
