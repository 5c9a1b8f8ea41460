// Checker: no operation pending longer than its timeout bound. An operation still pending
// when its process was drained (end null), or one that took longer than the bound of its
// kind, is a hang, unless its own node was frozen, killed or restarted meanwhile (a frozen
// process's clock runs on while it cannot answer).
import type { Entry, Op, CheckConfig, CheckResult, Violation } from '../history.js';
import { Topology } from './topology.js';

export function checkNoHang(entries: readonly Entry[], config: Pick<CheckConfig, 'bounds' | 'settleMs'>): CheckResult {
  const topo = new Topology(entries, config.settleMs);
  const violations: Violation[] = [];
  for (const e of entries) {
    if (e.type !== 'op') continue;
    const op = e as Op;
    const bound = config.bounds[op.op];
    const took = op.end === null ? Infinity : op.end - op.start;
    if (took <= bound) continue;
    if (topo.disturbed(op.node, op.start, op.end ?? op.start + bound)) continue;
    const what = op.op === 'trans' ? `trans ${op.resource}` : `${op.op} ${op.name}${op.op === 'read' && op.key !== undefined ? `[${op.key}]` : ''}`;
    violations.push({
      t: op.start,
      node: op.node,
      message: op.end === null
        ? `${what} on ${op.node} (pid ${op.pid}) began at ${op.start} and never settled (bound ${bound} ms)`
        : `${what} on ${op.node} (pid ${op.pid}) took ${took} ms (bound ${bound} ms)${op.ok ? '' : `, then failed: ${op.error}`}`,
    });
  }
  return { name: 'no-hang', violations };
}
