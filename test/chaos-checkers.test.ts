// The chaos checkers on hand-made histories: each test plants one violation and shows it
// caught, shows the clean history passing, and where the library documents an allowance
// (a cut, a frozen node) shows that allowance not flagged.
import { describe, expect, it } from 'vitest';
import type { CheckConfig, Entry, FaultEntry, FetchEntry, ProcEntry, ReadOp, TransOp, ViewEntry, WriteEntry, HealthEntry } from '../chaos/history.js';
import {
  checkExpiredReads,
  checkFencing,
  checkFetchOnce,
  checkLockExclusion,
  checkMembership,
  checkMonotonicVersions,
  checkNoHang,
  checkResources,
} from '../chaos/checkers/index.js';
import { EDGE_MS } from '../chaos/checkers/fetch-once.js';

const config: CheckConfig = {
  heartbeatInterval: 100,
  failureTimeout: 1000,
  settleMs: 2000,
  bounds: { read: 5000, clear: 5000, trans: 5000 },
  eager: { eagerToken: 1000 },
  heapLimitBytes: 1 << 20,
  convergeHeartbeats: 5,
};

const read = (node: string, start: number, end: number, version: number, expiresAt: number, extra: Partial<ReadOp> = {}): ReadOp => ({
  type: 'op', op: 'read', node, pid: 1, name: 'token', start, end, ok: true, version, expiresAt, ...extra,
});
const fetch = (node: string, t: number, version: number, expiresAt: number, name = 'token'): FetchEntry => ({ type: 'fetch', t, node, name, version, expiresAt });
const cut = (start: number, end: number, ...pairs: [string, string][]): FaultEntry => ({ type: 'fault', kind: 'partition', start, end, nodes: [], cut: pairs });
const fault = (kind: FaultEntry['kind'], node: string, start: number, end: number): FaultEntry => ({ type: 'fault', kind, start, end, nodes: [node] });
const hold = (node: string, acquiredAt: number, releasedAt: number, token: number, pid = 1): TransOp => ({
  type: 'op', op: 'trans', node, pid, resource: 'r', start: acquiredAt - 5, end: releasedAt + 1, ok: true, token, acquiredAt, releasedAt,
});
const write = (node: string, t: number, token: number, grantedAt: number, pid = 1): WriteEntry => ({
  type: 'write', t, node, pid, resource: 'r', token, grantedAt, accepted: true,
});

describe('checkExpiredReads', () => {
  it('flags a read whose value expired before the read began, passes a valid one', () => {
    expect(checkExpiredReads([read('a', 1000, 1010, 1, 1500)]).violations).toEqual([]);
    const v = checkExpiredReads([read('a', 1000, 1010, 1, 1500), read('b', 1600, 1610, 1, 1500)]).violations;
    expect(v).toHaveLength(1);
    expect(v[0]!.node).toBe('b');
  });

  it('with lateReadMs, allows that much past expiry and no more', () => {
    expect(checkExpiredReads([read('a', 1600, 1610, 1, 1500)], { lateReadMs: 100 }).violations).toEqual([]);
    expect(checkExpiredReads([read('a', 1601, 1610, 1, 1500)], { lateReadMs: 100 }).violations).toHaveLength(1);
  });

  it('ignores failed reads (they carry no value)', () => {
    expect(checkExpiredReads([{ ...read('a', 1600, 1610, 1, 1500), ok: false }]).violations).toEqual([]);
  });
});

describe('checkMonotonicVersions', () => {
  it('flags a reader going back to an older version, passes a rising one', () => {
    const clean = [read('a', 0, 10, 1, 9e9), read('a', 20, 30, 2, 9e9), read('a', 40, 50, 2, 9e9)];
    expect(checkMonotonicVersions(clean).violations).toEqual([]);
    const v = checkMonotonicVersions([...clean, read('a', 60, 70, 1, 9e9)]).violations;
    expect(v).toHaveLength(1);
    expect(v[0]!.message).toContain('version 1');
  });

  it('allows going back to a version fetched concurrently across a cut (the other side won), not otherwise', () => {
    const reads = [read('a', 3000, 3010, 2, 9e9), read('a', 3100, 3110, 1, 9e9)];
    const across = [cut(0, 2500, ['b', 'c']), fetch('b', 1000, 1, 9e9), fetch('c', 1200, 2, 9e9), ...reads];
    expect(checkMonotonicVersions(across, config).violations).toEqual([]);
    const together = [fetch('b', 1000, 1, 9e9), fetch('c', 1200, 2, 9e9), ...reads];
    expect(checkMonotonicVersions(together, config).violations).toHaveLength(1);
  });

  it('does not compare overlapping reads, other processes or other keys', () => {
    const h = [
      read('a', 0, 100, 2, 9e9),
      read('a', 50, 60, 1, 9e9), // began before the first ended
      read('a', 200, 210, 1, 9e9, { pid: 2 }), // a restarted process is another reader
      read('a', 200, 210, 1, 9e9, { key: 'k' }),
    ];
    expect(checkMonotonicVersions(h).violations).toEqual([]);
  });
});

describe('checkFetchOnce', () => {
  it('flags a second fetch inside a valid cycle among connected nodes', () => {
    const v = checkFetchOnce([fetch('a', 1000, 1, 3000), fetch('b', 2000, 2, 4000)], config).violations;
    expect(v).toHaveLength(1);
    expect(v[0]!.node).toBe('b');
  });

  it('passes fetches one per cycle, after a clear, and one per side of a cut', () => {
    expect(checkFetchOnce([fetch('a', 1000, 1, 3000), fetch('b', 3000, 2, 5000)], config).violations).toEqual([]);
    const clear: Entry = { type: 'op', op: 'clear', node: 'c', pid: 1, name: 'token', start: 1500, end: 1510, ok: true };
    expect(checkFetchOnce([fetch('a', 1000, 1, 3000), clear, fetch('b', 2000, 2, 4000)], config).violations).toEqual([]);
    expect(checkFetchOnce([cut(900, 5000, ['a', 'b']), fetch('a', 1000, 1, 3000), fetch('b', 2000, 2, 4000)], config).violations).toEqual([]);
  });

  it('a clear its killed process never settled (end null) counts from its start: a fetch after it passes, one before it does not', () => {
    const unsettled = (start: number): Entry => ({ type: 'op', op: 'clear', node: 'c', pid: 1, name: 'token', start, end: null, ok: false, error: 'the process was gone before it settled' });
    expect(checkFetchOnce([fetch('a', 1000, 1, 30_000), unsettled(1500), fetch('a', 2000, 2, 40_000)], config).violations).toEqual([]);
    expect(checkFetchOnce([fetch('a', 1000, 1, 30_000), unsettled(2500), fetch('a', 2000, 2, 40_000)], config).violations).toHaveLength(1);
  });

  it('a cut elsewhere, or one long healed, does not excuse a double fetch', () => {
    const elsewhere = [cut(900, 5000, ['c', 'd']), fetch('a', 1000, 1, 30_000), fetch('b', 2000, 2, 40_000)];
    expect(checkFetchOnce(elsewhere, config).violations).toHaveLength(1);
    const healed = [cut(100, 200, ['a', 'b']), fetch('a', 10_000, 1, 30_000), fetch('b', 12_000, 2, 40_000)];
    expect(checkFetchOnce(healed, config).violations).toHaveLength(1);
  });

  it('a refetch in the last EDGE_MS of a cycle (a peer\'s value spent in transit) passes; one earlier does not', () => {
    expect(checkFetchOnce([fetch('a', 1000, 1, 3000), fetch('b', 3000 - EDGE_MS + 1, 2, 5000)], config).violations).toEqual([]);
    expect(checkFetchOnce([fetch('a', 1000, 1, 3000), fetch('b', 3000 - EDGE_MS - 1, 2, 5000)], config).violations).toHaveLength(1);
  });

  it('a slowed link of either node widens that edge by its round trip, only for that pair and while it lasts (finding 6)', () => {
    const slow = (node: string, start: number, end: number, ms: number): FaultEntry => ({ ...fault('slow', node, start, end), detail: `${ms} ms` });
    // n2 held the value; its links were slowed 91 ms each way: a refetch 182 + 50 ms before expiry passes.
    const within = 3000 - EDGE_MS - 182 + 1;
    expect(checkFetchOnce([fetch('n2', 1000, 1, 3000), slow('n2', 2000, 4000, 91), fetch('n0', within, 2, 5000)], config).violations).toEqual([]);
    // One earlier than that is still a double fetch.
    expect(checkFetchOnce([fetch('n2', 1000, 1, 3000), slow('n2', 2000, 4000, 91), fetch('n0', within - 2, 2, 5000)], config).violations).toHaveLength(1);
    // A slow link of a third node, or one healed more than a second before, widens nothing.
    expect(checkFetchOnce([fetch('n2', 1000, 1, 3000), slow('n1', 2000, 4000, 91), fetch('n0', within, 2, 5000)], config).violations).toHaveLength(1);
    expect(checkFetchOnce([fetch('n2', 1000, 1, 3000), slow('n2', 100, 1500, 91), fetch('n0', within, 2, 5000)], config).violations).toHaveLength(1);
  });

  it('an eager cycle ends beforeExpiry (plus jitter) before expiry', () => {
    const h = [fetch('a', 1000, 1, 10_000, 'eagerToken'), fetch('b', 8950, 2, 18_000, 'eagerToken')];
    expect(checkFetchOnce(h, config).violations).toEqual([]);
    const early = [fetch('a', 1000, 1, 10_000, 'eagerToken'), fetch('b', 8000, 2, 18_000, 'eagerToken')];
    expect(checkFetchOnce(early, config).violations).toHaveLength(1);
  });
});

describe('checkNoHang', () => {
  it('flags an operation that never settled or overran its bound', () => {
    const h: Entry[] = [read('a', 0, 100, 1, 9e9), { ...read('a', 0, 0, 1, 9e9), end: null, ok: false }, read('b', 0, 6000, 1, 9e9)];
    const v = checkNoHang(h, config).violations;
    expect(v.map((x) => x.node)).toEqual(['a', 'b']);
  });

  it('excuses an operation of a node frozen while it ran', () => {
    expect(checkNoHang([fault('stop', 'b', 1000, 4000), read('b', 0, 6000, 1, 9e9)], config).violations).toEqual([]);
    expect(checkNoHang([fault('stop', 'c', 1000, 4000), read('b', 0, 6000, 1, 9e9)], config).violations).toHaveLength(1);
  });
});

describe('checkLockExclusion', () => {
  it('flags two connected holders at once, passes holds one after the other', () => {
    expect(checkLockExclusion([hold('a', 0, 100, 1), hold('b', 100, 200, 2)], config).violations).toEqual([]);
    const v = checkLockExclusion([hold('a', 0, 100, 1), hold('b', 50, 200, 2)], config).violations;
    expect(v).toHaveLength(1);
    expect(v[0]!.message).toContain('both connected');
  });

  it('in a bridge topology, allows the bridge and a side two holders, not two nodes of one side', () => {
    // a is the bridge; b and b2 on one side, c on the other: b|c and b2|c cut.
    const bridge = cut(0, 1000, ['b', 'c'], ['b2', 'c']);
    expect(checkLockExclusion([bridge, hold('a', 10, 500, 1), hold('b', 50, 200, 2)], config).violations).toEqual([]);
    expect(checkLockExclusion([bridge, hold('b2', 10, 500, 1), hold('b', 50, 200, 2)], config).violations).toHaveLength(1);
  });

  it('allows two holders while their recorded views disagree (a heal seen at different moments)', () => {
    const views: ViewEntry[] = [
      { type: 'view', t: 0, node: 'a', pid: 1, nodes: ['b'] },
      { type: 'view', t: 0, node: 'b', pid: 1, nodes: ['a'] },
      { type: 'view', t: 1000, node: 'a', pid: 1, nodes: ['b', 'c'] },
      { type: 'view', t: 1010, node: 'b', pid: 1, nodes: ['a', 'c'] },
    ];
    expect(checkLockExclusion([...views, hold('a', 1000, 1100, 1), hold('b', 1050, 1200, 2)], config).violations).toEqual([]);
    expect(checkLockExclusion([...views, hold('a', 3000, 3100, 1), hold('b', 3050, 3200, 2)], config).violations).toHaveLength(1);
  });

  it('allows two holders across a cut or with a frozen holder, as documented', () => {
    expect(checkLockExclusion([cut(0, 1000, ['a', 'b']), hold('a', 10, 500, 1), hold('b', 50, 200, 2)], config).violations).toEqual([]);
    expect(checkLockExclusion([fault('stop', 'a', 20, 3000), hold('a', 10, 4000, 1), hold('b', 1500, 1600, 2)], config).violations).toEqual([]);
  });
});

describe('checkFencing', () => {
  it('flags a lower token taken after a higher one among connected nodes', () => {
    expect(checkFencing([write('a', 10, 1, 5), write('b', 20, 2, 15), write('b', 25, 2, 15)], config).violations).toEqual([]);
    const late = checkFencing([write('a', 10, 5, 5), write('b', 20, 4, 15)], config).violations;
    expect(late).toHaveLength(1);
    expect(late[0]!.message).toContain('token 4');
  });

  it('flags an equal token from another grant', () => {
    expect(checkFencing([write('a', 10, 5, 5), write('b', 20, 5, 15)], config).violations).toHaveLength(1);
  });

  it('allows a stale holder refused across a cut, not a lower grant after the heal', () => {
    // a was granted token 1, got frozen, b was granted 2; a wakes up and writes 1: refused, allowed.
    const frozen = [fault('stop', 'a', 20, 3000), write('b', 1500, 2, 1400), write('a', 3100, 1, 10)];
    expect(checkFencing(frozen, config).violations).toEqual([]);
    // b granted 9 during a cut; a granted 8 long after the heal: the guarantee is broken.
    const afterHeal = [cut(0, 1000, ['a', 'b']), write('b', 500, 9, 400), write('a', 10_100, 8, 10_000)];
    expect(checkFencing(afterHeal, config).violations).toHaveLength(1);
    // The same, but a's grant was during the cut: each side grants on its own.
    const during = [cut(0, 1000, ['a', 'b']), write('b', 500, 9, 400), write('a', 900, 8, 600)];
    expect(checkFencing(during, config).violations).toEqual([]);
  });
});

describe('checkMembership', () => {
  const procs: ProcEntry[] = [
    { type: 'proc', node: 'a', pid: 1, up: 0, down: null },
    { type: 'proc', node: 'b', pid: 2, up: 0, down: null },
  ];
  const view = (node: string, pid: number, t: number, nodes: string[]): ViewEntry => ({ type: 'view', t, node, pid, nodes });
  const base = [...procs, view('a', 1, 0, ['b']), view('b', 2, 0, ['a']), view('a', 1, 1100, []), view('b', 2, 1100, [])];

  it('measures convergence after a heal and flags a slow one', () => {
    const fast = checkMembership([...base, cut(0, 2000, ['a', 'b']), view('a', 1, 2300, ['b']), view('b', 2, 2400, ['a'])], config);
    expect(fast.violations).toEqual([]);
    expect(fast.convergeMs).toEqual([400]);
    const slow = checkMembership([...base, cut(0, 2000, ['a', 'b']), view('a', 1, 2300, ['b']), view('b', 2, 4000, ['a'])], config);
    expect(slow.violations).toHaveLength(1);
    expect(slow.convergeMs).toEqual([2000]);
  });

  it('restartConvergeMs sets the bound after a restart only', () => {
    const restart: FaultEntry = { type: 'fault', kind: 'restart', start: 0, end: 2000, nodes: ['b'] };
    const h = [...base, restart, view('a', 1, 2300, ['b']), view('b', 2, 4500, ['a'])];
    expect(checkMembership(h, config).violations).toHaveLength(1);
    expect(checkMembership(h, { ...config, restartConvergeMs: 3000 }).violations).toEqual([]);
    const partition = [...base, cut(0, 2000, ['a', 'b']), view('a', 1, 2300, ['b']), view('b', 2, 4500, ['a'])];
    expect(checkMembership(partition, { ...config, restartConvergeMs: 3000 }).violations).toHaveLength(1);
  });

  it('flags a heal that never converged before the end of the run', () => {
    const never = checkMembership([...base, cut(0, 2000, ['a', 'b']), view('a', 1, 2300, ['b']), read('a', 9000, 9001, 1, 9e9)], config);
    expect(never.violations).toHaveLength(1);
    expect(never.violations[0]!.message).toContain('b sees []');
  });
});

describe('checkResources', () => {
  const health = (pid: number, phase: HealthEntry['phase'], heapUsed: number, handles: Record<string, number>): HealthEntry => ({
    type: 'health', t: 0, node: `n${pid}`, pid, phase, heapUsed, handles,
  });

  it('flags a leaked socket and a heap past the limit, passes a process back to baseline', () => {
    const clean = [health(1, 'baseline', 1000, { TCPSocketWrap: 3, Timeout: 2 }), health(1, 'final', 2000, { TCPSocketWrap: 3, Timeout: 9 })];
    expect(checkResources(clean, config).violations).toEqual([]);
    expect(checkResources(clean, config).heapGrowthBytes).toBe(1000);
    const leak = [health(1, 'baseline', 1000, { TCPSocketWrap: 3 }), health(1, 'final', 1000 + (2 << 20), { TCPSocketWrap: 4 })];
    expect(checkResources(leak, config).violations).toHaveLength(2);
  });
});
