// Checker: lock exclusion among connected nodes. Two holds of one resource (the time each
// holder's `fn` ran) must not overlap, unless their nodes were separated at some time
// during the overlap (each side of a cut grants on its own,
// and a frozen holder wakes up still inside `fn`: exclusion across a cut is not promised,
// fencing is; see fencing.ts). Holds of one process never overlap (no other requester).
import type { Entry, TransOp, CheckConfig, CheckResult, Violation } from '../history.js';
import { Topology } from './topology.js';

export function checkLockExclusion(entries: readonly Entry[], config: Pick<CheckConfig, 'settleMs'>): CheckResult {
  const topo = new Topology(entries, config.settleMs);
  const byResource = new Map<string, TransOp[]>();
  for (const e of entries) {
    if (e.type !== 'op' || e.op !== 'trans' || e.acquiredAt === undefined) continue;
    let list = byResource.get(e.resource);
    if (!list) byResource.set(e.resource, (list = []));
    list.push(e);
  }
  const violations: Violation[] = [];
  for (const holds of byResource.values()) {
    holds.sort((a, b) => a.acquiredAt! - b.acquiredAt!);
    for (let j = 1; j < holds.length; j++) {
      const h2 = holds[j]!;
      for (let i = j - 1; i >= 0; i--) {
        const h1 = holds[i]!;
        const end1 = h1.releasedAt ?? h1.end ?? Infinity;
        if (end1 <= h2.acquiredAt!) continue;
        // Overlap [h2.acquiredAt, min(end1, end2)].
        const sameProcess = h1.node === h2.node && h1.pid === h2.pid;
        if (!sameProcess && topo.separated(h1.node, h2.node, h2.acquiredAt!, Math.min(end1, h2.releasedAt ?? Infinity))) continue;
        violations.push({
          t: h2.acquiredAt!,
          node: h2.node,
          message: `${h2.resource}: ${h2.node} (pid ${h2.pid}, token ${h2.token}) took the lock at ${h2.acquiredAt} while ${h1.node} (pid ${h1.pid}, token ${h1.token}) held it from ${h1.acquiredAt} to ${end1}, both connected`,
        });
        break;
      }
    }
  }
  return { name: 'lock-exclusion', violations };
}
