// Checker: no read returns a value whose expiry is before the read's start (by more than
// `lateReadMs`, 0 unless a run relaxes it).
import type { Entry, ReadOp, CheckConfig, CheckResult } from '../history.js';

export function checkExpiredReads(entries: readonly Entry[], config: Pick<CheckConfig, 'lateReadMs'> = {}): CheckResult {
  const slack = config.lateReadMs ?? 0;
  const violations = [];
  for (const e of entries) {
    if (e.type !== 'op' || e.op !== 'read' || !e.ok) continue;
    const r = e as ReadOp;
    if (r.expiresAt !== undefined && r.expiresAt !== null && r.expiresAt + slack < r.start) {
      violations.push({
        t: r.start,
        node: r.node,
        message: `${r.node} read ${label(r)} version ${r.version} expiring at ${r.expiresAt}, ${r.start - r.expiresAt} ms before the read began (${r.start})`,
      });
    }
  }
  return { name: 'expired-read', violations };
}

const label = (r: ReadOp): string => (r.key === undefined ? r.name : `${r.name}[${r.key}]`);
