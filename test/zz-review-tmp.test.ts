import { describe, expect, it } from 'vitest';
import { LEASE_STREAK } from '../src/mesh/global/coordinator.js';
import { rendezvous } from '../src/mesh/global/rendezvous.js';
import { resourceKey } from '../src/mesh/global/resource-key.js';
import { decodeLockMsg } from '../src/mesh/global/messages.js';
import type { GlobalLocks } from '../src/mesh/global/index.js';
import { LockNet, settle, type PendingCast } from './helpers/lock-net.js';
const msgType = (p: PendingCast): string | undefined => decodeLockMsg(p.msg)?.t;

function cluster(tag: string) {
  const net = new LockNet();
  let r = '';
  for (let i = 0; ; i++) { r = `${tag}-${i}`; const lk = resourceKey(r); if (rendezvous(lk, ['A', 'B', 'C']) === 'A' && rendezvous(lk, ['B', 'C']) === 'C') break; }
  for (const n of ['A', 'B', 'C']) net.add(n);
  for (const a of ['A', 'B', 'C']) for (const b of ['A', 'B', 'C']) if (a !== b) net.up(a, b);
  const [A, B, C] = ['A', 'B', 'C'].map((n) => net.locks.get(n)!) as [GlobalLocks, GlobalLocks, GlobalLocks];
  return { net, r, A, B, C };
}
async function leaseTo(net: LockNet, node: GlobalLocks, r: string) {
  for (let i = 0; i < 2 * LEASE_STREAK && node.stats().leased === 0; i++) { const c = node.trans(r, () => undefined); await net.deliver(); await c; }
  expect(node.stats().leased).toBe(1);
}

describe('review', () => {
  it('inquire ends an idle lease silently; the old coordinator keeps counting it after the views agree again', async () => {
    const { net, r, A, B, C } = cluster('rv-inq');
    await leaseTo(net, B, r);
    // The A-C link drops (both sides); B still sees both.
    net.down('A', 'C'); net.down('C', 'A');
    const c1 = C.trans(r, () => undefined);
    const seen: string[] = [];
    await net.deliver((p) => { seen.push(`${p.from}>${p.to} ${msgType(p)}`); return true; });
    await c1;
    console.log('partition phase', seen, 'B leased', B.stats().leased, 'A queues', JSON.stringify(A.stats().queues));
    // Link heals: every node sees every other again.
    net.up('A', 'C'); net.up('C', 'A');
    await net.deliver();
    const log: string[] = [];
    const b = B.trans(r, () => void log.push('B ran'));
    const c2 = C.trans(r, () => void log.push('C ran'));
    const seen2: string[] = [];
    await net.deliver((p) => { seen2.push(`${p.from}>${p.to} ${msgType(p)}`); return true; });
    await settle(20);
    console.log('after heal', seen2, 'log', log, 'A queues', JSON.stringify(A.stats().queues), 'B stats', JSON.stringify({ h: B.stats().holding, w: B.stats().waiting, l: B.stats().leased }));
    void b; void c2;
  });
});
