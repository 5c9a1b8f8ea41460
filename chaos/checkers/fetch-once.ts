// Checker: at most one fetch per expiry cycle per connected component. The upstream saw
// every fetch (time, node, version, expiresAt). A later fetch F2 of the same expirable and
// key inside the cycle of an earlier F1 is a double fetch unless something allowed it:
// - the cycle of F1 was over: lazy at `expiresAt`, eager from `expiresAt - 1.1 *
//   beforeExpiry` (the refresh point with its largest jitter);
// - a `clear` of that expirable overlapped [F1 - clearSlackMs, F2] (the cleared value, or
//   a fetch in flight when clear ran, must not serve later callers);
// - the nodes of F1 and F2 were separated at some time in [F1, F2] (a cut between them,
//   or either killed, frozen or restarted: its value may be gone with it). This is the
//   documented price of a partition: one fetch per side.
import type { Entry, FetchEntry, ClearOp, CheckConfig, CheckResult, FaultEntry, Violation } from '../history.js';
import { Topology } from './topology.js';

/** How long before F1 a clear still counts (a fetch takes at most this long to reach the upstream). */
const CLEAR_SLACK_MS = 1_000;
/**
 * The end of a cycle, as replicas see it, comes up to this many ms early. A replica counts a
 * value's time left from when it sent its question to the peer that holds it (and bounds it by
 * `expiresAt`), so it is never served late; a value with less than one ask's round trip left is
 * spent by the time it arrives, and the node fetches a new one. That refetch in the last
 * moments of a cycle is the price of never serving an expired value (seen once in a 10-minute
 * soak: 6 ms before expiry). 50 ms covers an ask's round trip under the harness's load; a second
 * fetch any earlier in the cycle is still a violation.
 */
export const EDGE_MS = 50;

/**
 * The same edge when a link of F1's or F2's node was slowed by `slow` (d ms each way) in the
 * second before F2: the ask's round trip is longer by 2d, and so is the time left that is
 * spent on the way (finding 6). Only that node pair and that window get the longer edge.
 */
function slowEdgeMs(slows: readonly FaultEntry[], f1: FetchEntry, f2: FetchEntry): number {
  let extra = 0;
  for (const s of slows) {
    if (s.start > f2.t || s.end < f2.t - CLEAR_SLACK_MS) continue;
    if (!s.nodes.includes(f1.node) && !s.nodes.includes(f2.node)) continue;
    const d = Number.parseFloat(s.detail ?? '');
    if (Number.isFinite(d) && d > 0) extra = Math.max(extra, 2 * d);
  }
  return EDGE_MS + extra;
}

export function checkFetchOnce(entries: readonly Entry[], config: Pick<CheckConfig, 'eager' | 'settleMs'>): CheckResult {
  const topo = new Topology(entries, config.settleMs);
  const clears = entries.filter((e): e is ClearOp => e.type === 'op' && e.op === 'clear');
  const slows = entries.filter((e): e is FaultEntry => e.type === 'fault' && e.kind === 'slow');
  const groups = new Map<string, FetchEntry[]>();
  for (const e of entries) {
    if (e.type !== 'fetch') continue;
    const k = `${e.name}\u0000${e.key ?? ''}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(e);
  }
  const violations: Violation[] = [];
  for (const fetches of groups.values()) {
    fetches.sort((a, b) => a.t - b.t);
    for (let j = 1; j < fetches.length; j++) {
      const f2 = fetches[j]!;
      for (let i = j - 1; i >= 0; i--) {
        const f1 = fetches[i]!;
        if (f2.t >= cycleEnd(f1, config.eager, slowEdgeMs(slows, f1, f2))) continue;
        const cleared = clears.some((c) => c.name === f2.name && c.start <= f2.t && (c.end ?? Infinity) >= f1.t - CLEAR_SLACK_MS);
        if (cleared || topo.separated(f1.node, f2.node, f1.t, f2.t)) continue;
        const what = f2.key === undefined ? f2.name : `${f2.name}[${f2.key}]`;
        violations.push({
          t: f2.t,
          node: f2.node,
          message: `${what} fetched by ${f2.node} at ${f2.t} (version ${f2.version}) while version ${f1.version} fetched by ${f1.node} at ${f1.t} was valid until ${f1.expiresAt}, with no clear and no fault between them`,
        });
        break;
      }
    }
  }
  return { name: 'fetch-once', violations };
}

function cycleEnd(f: FetchEntry, eager: Record<string, number>, edgeMs: number): number {
  const before = eager[f.name];
  return (before === undefined ? f.expiresAt : f.expiresAt - 1.1 * before) - edgeMs;
}
