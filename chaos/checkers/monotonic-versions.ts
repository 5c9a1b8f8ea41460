// Checker: per reader (one node process), versions never go backwards. A read that began
// after another read of the same value (expirable and key) had ended must not return a
// lower version; overlapping reads are not ordered and are not compared.
//
// Allowance: versions are the upstream's fetch counter, but the library orders values by
// its own version (the lock's fencing token of the fetch). Two fetches made on the two
// sides of a cut are concurrent: when the sides meet, the one with the higher library
// version wins everywhere (README: "the newest version wins, nothing merges"), which may be
// the lower upstream version. So going back is allowed when the nodes that fetched the two
// versions were separated between the two fetches; anything else is a violation.
import type { Entry, FetchEntry, ReadOp, CheckConfig, CheckResult, Violation } from '../history.js';
import { Topology } from './topology.js';

export function checkMonotonicVersions(entries: readonly Entry[], config: Pick<CheckConfig, 'settleMs'> = { settleMs: 0 }): CheckResult {
  const topo = new Topology(entries, config.settleMs);
  const fetches = new Map<string, FetchEntry>();
  for (const e of entries) if (e.type === 'fetch') fetches.set(`${e.name}\u0000${e.key ?? ''}\u0000${e.version}`, e);
  const fetchOf = (r: ReadOp): FetchEntry | undefined => fetches.get(`${r.name}\u0000${r.key ?? ''}\u0000${r.version}`);
  const concurrent = (a: ReadOp, b: ReadOp): boolean => {
    const fa = fetchOf(a);
    const fb = fetchOf(b);
    return fa !== undefined && fb !== undefined && topo.separated(fa.node, fb.node, Math.min(fa.t, fb.t), Math.max(fa.t, fb.t));
  };
  const byReader = new Map<string, ReadOp[]>();
  for (const e of entries) {
    if (e.type !== 'op' || e.op !== 'read' || !e.ok || e.version === undefined || e.end === null) continue;
    const k = `${e.node}\u0000${e.pid}\u0000${e.name}\u0000${e.key ?? ''}`;
    let list = byReader.get(k);
    if (!list) byReader.set(k, (list = []));
    list.push(e);
  }
  const violations: Violation[] = [];
  for (const reads of byReader.values()) {
    const byStart = [...reads].sort((a, b) => a.start - b.start);
    const byEnd = [...reads].sort((a, b) => a.end! - b.end!);
    // The highest version among reads ended before the current one began, and which read it was.
    let best: ReadOp | undefined;
    let j = 0;
    for (const r of byStart) {
      while (j < byEnd.length && byEnd[j]!.end! < r.start) {
        const done = byEnd[j++]!;
        if (best === undefined || done.version! > best.version!) best = done;
      }
      if (best !== undefined && r.version! < best.version! && !concurrent(r, best)) {
        violations.push({
          t: r.start,
          node: r.node,
          message: `${r.node} (pid ${r.pid}) read ${r.key === undefined ? r.name : `${r.name}[${r.key}]`} version ${r.version} at ${r.start} after reading version ${best.version} (ended ${best.end})`,
        });
      }
    }
  }
  return { name: 'monotonic-versions', violations };
}
