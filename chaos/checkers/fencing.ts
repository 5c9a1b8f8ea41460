// Checker: fencing. The external store accepts a write when its token is at least the
// highest it took for that resource (an equal token only from the same grant). Replaying
// the writes in the order the store saw them, a write with a lower token (or an equal token
// of another grant) is a violation unless the cut explains it:
// - the lower token was granted first: its holder was still writing after a newer grant,
//   two holders at once, allowed only if the two nodes were separated at some time between
//   the older grant and the late write (each side of a cut grants on its own, a frozen
//   holder wakes up inside fn). The store refusing that write is fencing doing its job.
// - the lower token was granted later: allowed only if the two nodes were separated when
//   it was granted. After the heal (plus settling) every grant must carry a token greater
//   than every token granted on either side before it.
import type { Entry, WriteEntry, CheckConfig, CheckResult, Violation } from '../history.js';
import { Topology } from './topology.js';

export function checkFencing(entries: readonly Entry[], config: Pick<CheckConfig, 'settleMs'>): CheckResult {
  const topo = new Topology(entries, config.settleMs);
  const top = new Map<string, WriteEntry>();
  const violations: Violation[] = [];
  const writes = entries.filter((e): e is WriteEntry => e.type === 'write');
  for (const w of writes) {
    const best = top.get(w.resource);
    const sameGrant = best !== undefined && best.node === w.node && best.pid === w.pid && best.grantedAt === w.grantedAt;
    if (best === undefined || w.token > best.token || (w.token === best.token && sameGrant)) {
      top.set(w.resource, w);
      continue;
    }
    const excused = w.grantedAt < best.grantedAt
      ? topo.separated(w.node, best.node, w.grantedAt, w.t)
      : topo.separated(w.node, best.node, w.grantedAt, w.grantedAt);
    if (excused) continue;
    violations.push({
      t: w.t,
      node: w.node,
      message: `${w.resource}: write of ${w.node} (pid ${w.pid}) with token ${w.token} granted at ${w.grantedAt} came at ${w.t} after token ${best.token} of ${best.node} (pid ${best.pid}) granted at ${best.grantedAt}, both connected${w.accepted ? '; the store accepted it' : ''}`,
    });
  }
  return { name: 'fencing', violations };
}
