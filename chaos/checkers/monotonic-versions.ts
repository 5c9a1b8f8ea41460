// Checker: per reader (one node process), versions never go backwards. A read that began
// after another read of the same value (expirable and key) had ended must not return a
// lower version; overlapping reads are not ordered and are not compared.
import type { Entry, ReadOp, CheckResult, Violation } from '../history.js';

export function checkMonotonicVersions(entries: readonly Entry[]): CheckResult {
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
      if (best !== undefined && r.version! < best.version!) {
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
