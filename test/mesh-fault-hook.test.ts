// The test-only fault hook of the mesh (src/mesh/fault-hook.ts), as the chaos harness uses
// it where network namespaces are not available: a blocked peer goes silent with its
// socket open (down by heartbeat timeout, not by a closed connection), comes back when
// unblocked, and a slowed peer's frames arrive late; without the variable it is off.
import { afterEach, describe, expect, it } from 'vitest';
import { disposeAllPeers, startCluster } from './helpers/peers.js';
import { FIXTURES } from './helpers/fixtures.js';
import { FAULT_HOOK_FIXTURES } from './fixtures/fault-hook.js';

const timing = { cookie: 'hook', heartbeatInterval: 100, failureTimeout: 800 };

afterEach(disposeAllPeers);

describe('mesh fault hook', () => {
  it('a cut through the hook is silence: both sides see heartbeat_timeout, then nodeup after the heal', async () => {
    await using c = await startCluster(3, { ...timing, peer: { env: { EXPIRABLE_STORE_FAULT_HOOK: '1' } } });
    const [a, b, x] = c.peers as [typeof c.peers[0], typeof c.peers[0], typeof c.peers[0]];
    const downAtA = a.waitEvent('nodedown', (n) => n === b.name);
    const downAtB = b.waitEvent('nodedown', (n) => n === a.name);
    await a.run(FAULT_HOOK_FIXTURES, 'block', [b.name]);
    await b.run(FAULT_HOOK_FIXTURES, 'block', [a.name]);
    expect((await downAtA)[1]).toBe('heartbeat_timeout');
    expect((await downAtB)[1]).toBe('heartbeat_timeout');
    // The third node is not cut from either.
    expect(await x.nodes()).toEqual([a.name, b.name].sort());
    // While blocked, redials fail too (the handshake is silent): still apart after a while.
    await a.waitNodes([x.name]);
    const upAtA = a.waitEvent('nodeup', (n) => n === b.name && a.events.some((e) => e.type === 'nodedown'));
    await a.run(FAULT_HOOK_FIXTURES, 'block', []);
    await b.run(FAULT_HOOK_FIXTURES, 'block', []);
    await upAtA;
    await a.waitNodes([b.name, x.name]);
    await b.waitNodes([a.name, x.name]);
  });

  it('a slowed peer answers calls late', async () => {
    await using c = await startCluster(2, { ...timing, peer: { env: { EXPIRABLE_STORE_FAULT_HOOK: '1' } } });
    const [a, b] = c.peers as [typeof c.peers[0], typeof c.peers[0]];
    const ref = await b.run(FIXTURES, 'spawnCounter');
    await a.run(FAULT_HOOK_FIXTURES, 'slow', [b.name], 300);
    expect(await a.run<number>(FAULT_HOOK_FIXTURES, 'echoTime', ref)).toBeGreaterThanOrEqual(290);
    await a.run(FAULT_HOOK_FIXTURES, 'slow', [], 0);
    expect(await a.run<number>(FAULT_HOOK_FIXTURES, 'echoTime', ref)).toBeLessThan(290);
  });

  it('is off without EXPIRABLE_STORE_FAULT_HOOK=1', async () => {
    await using c = await startCluster(2, timing);
    expect(await c.peers[0]!.run(FAULT_HOOK_FIXTURES, 'hookEnabled')).toBe(false);
  });
});
