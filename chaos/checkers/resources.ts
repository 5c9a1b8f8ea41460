// Checker: after the run, every process's heap and open handles are back to baseline. Each
// process measured both with its workload paused and after a GC: `baseline` once warmed up,
// `final` after the last heal. A handle kind (sockets, servers, pipes; timers aside, which
// come and go with the schedule of refreshes) with more open than at baseline is a leak;
// heap growth above `heapLimitBytes` is one too. Also reports the heap growth per fault.
import type { Entry, HealthEntry, CheckConfig, CheckResult, Violation } from '../history.js';

/** Handle kinds whose count is not a leak signal (they follow the workload's schedule). */
const TRANSIENT = new Set(['Timeout', 'Immediate', 'TTYWrap', 'FSReqCallback', 'FSReqPromise']);

export interface ResourcesResult extends CheckResult {
  /** Sum of (final - baseline) heap over the processes measured both times. */
  heapGrowthBytes: number;
}

export function checkResources(entries: readonly Entry[], config: Pick<CheckConfig, 'heapLimitBytes'>): ResourcesResult {
  const baseline = new Map<number, HealthEntry>();
  const final = new Map<number, HealthEntry>();
  for (const e of entries) {
    if (e.type !== 'health') continue;
    if (e.phase === 'baseline') baseline.set(e.pid, e);
    if (e.phase === 'final') final.set(e.pid, e);
  }
  const violations: Violation[] = [];
  let heapGrowthBytes = 0;
  for (const [pid, end] of final) {
    const start = baseline.get(pid);
    if (!start) continue;
    const growth = end.heapUsed - start.heapUsed;
    heapGrowthBytes += growth;
    if (growth > config.heapLimitBytes) {
      violations.push({ t: end.t, node: end.node, message: `${end.node} (pid ${pid}) heap grew by ${growth} bytes from baseline (limit ${config.heapLimitBytes})` });
    }
    for (const [kind, n] of Object.entries(end.handles)) {
      if (TRANSIENT.has(kind)) continue;
      const was = start.handles[kind] ?? 0;
      if (n > was) violations.push({ t: end.t, node: end.node, message: `${end.node} (pid ${pid}) has ${n} open ${kind} handles, ${was} at baseline` });
    }
  }
  return { name: 'resources', violations, heapGrowthBytes };
}
