// Every checker over one history, in report order.
import type { Entry, CheckConfig, CheckResult } from '../history.js';
import { checkExpiredReads } from './expired-read.js';
import { checkMonotonicVersions } from './monotonic-versions.js';
import { checkFetchOnce } from './fetch-once.js';
import { checkNoHang } from './no-hang.js';
import { checkLockExclusion } from './lock-exclusion.js';
import { checkFencing } from './fencing.js';
import { checkMembership } from './membership.js';
import { checkResources } from './resources.js';

export { checkExpiredReads, checkMonotonicVersions, checkFetchOnce, checkNoHang, checkLockExclusion, checkFencing, checkMembership, checkResources };

export interface CheckAll {
  results: CheckResult[];
  convergeMs: number[];
  heapGrowthBytes: number;
}

export function checkAll(entries: readonly Entry[], config: CheckConfig): CheckAll {
  const membership = checkMembership(entries, config);
  const resources = checkResources(entries, config);
  return {
    results: [
      checkExpiredReads(entries, config),
      checkMonotonicVersions(entries, config),
      checkFetchOnce(entries, config),
      checkNoHang(entries, config),
      checkLockExclusion(entries, config),
      checkFencing(entries, config),
      { name: membership.name, violations: membership.violations },
      { name: resources.name, violations: resources.violations },
    ],
    convergeMs: membership.convergeMs,
    heapGrowthBytes: resources.heapGrowthBytes,
  };
}
