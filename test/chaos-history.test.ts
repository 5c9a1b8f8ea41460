// The chaos history of a node process killed with -9 (docs/chaos.md, finding 5): a real
// node process of the harness (chaos/node-main.ts through chaos/procs.ts), alone, running
// the workload with one reader loop; the test plays the upstream and kills the process
// from inside its second fetch, so the read behind that fetch is in flight at the kill, and
// the read behind the first one settled moments before it. Both must be in the history:
// an operation lost with a killed process once made the fetch-once checker report a double
// fetch after a `clear` it never saw.
import { describe, expect, it } from 'vitest';
import type { Entry, FetchEntry, Op, ReadOp } from '../chaos/history.js';
import { NodeProc } from '../chaos/procs.js';
import { TIMING, WORKLOAD } from '../chaos/run.js';

describe('chaos history of a killed node process', () => {
  it('keeps the operations it settled just before the kill, and the one in flight, unsettled', async () => {
    const entries: Entry[] = [];
    const fetches: FetchEntry[] = [];
    let proc: NodeProc | undefined;
    let version = 0;
    const p = new NodeProc('n0', (argv) => argv, {}, {
      onEntries: (batch) => entries.push(...batch),
      onFetch: (node, name, key) => {
        const t = Date.now();
        const f: FetchEntry = { type: 'fetch', t, node, name, ...(key === undefined ? {} : { key }), version: ++version, expiresAt: t + 60_000 };
        fetches.push(f);
        // Killed before it gets this answer: the read that asked for it never settles.
        if (fetches.length === 2) proc!.signal('SIGKILL');
        return { version: f.version, expiresAt: f.expiresAt };
      },
      onWrite: () => true,
    });
    proc = p;
    try {
      await p.ready;
      await p.request('start', {
        options: { name: 'n0', host: '127.0.0.1', port: 0, seeds: [], cookie: 'chaos-history', ...TIMING },
        // One reader, no clears; values live a minute, so every fetch is a read's miss (no
        // eager refresh runs in the test's time).
        workload: { ...WORKLOAD, readers: 1, clearRate: 0, ttl: { lazy: 60_000, eager: 60_000, keyed: 60_000 }, seed: 5 },
      });
      await p.exited;
    } finally {
      await p.kill();
    }
    expect(fetches).toHaveLength(2);
    const reads = entries.filter((e): e is ReadOp => e.type === 'op' && e.op === 'read');
    const of = (f: FetchEntry): ReadOp[] => reads.filter((r) => r.name === f.name && r.key === f.key && r.start <= f.t);
    const [first, second] = fetches as [FetchEntry, FetchEntry];
    // The read the first fetch answered settled with its value.
    expect(of(first).some((r) => r.ok && r.end !== null && r.version === first.version), JSON.stringify(reads)).toBe(true);
    // The read waiting for the second fetch is recorded, unsettled.
    const inFlight = of(second).filter((r) => r.end === null);
    expect(inFlight, JSON.stringify(reads)).toHaveLength(1);
    expect(inFlight[0]).toMatchObject({ ok: false, pid: p.pid, node: 'n0' });
    // Every operation the process began is in the history once (none settled twice, none lost).
    const ops = entries.filter((e): e is Op => e.type === 'op');
    expect(new Set(ops.map((o) => `${o.op}:${o.start}:${o.op === 'trans' ? o.resource : `${o.name}:${o.op === 'read' ? o.key : ''}`}`)).size).toBe(ops.length);
  }, 60_000);
});
