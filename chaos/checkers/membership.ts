// Checker: after every heal, membership converges within `failureTimeout` plus a few
// heartbeats. A heal is the end of a fault that separated nodes (links restored, SIGCONT,
// the new process of a killed or restarted node up). Converged means every live process's
// view (`node.nodes()`) lists exactly the other live nodes. The time from the heal to the
// first converged instant is that heal's convergence time; when the next fault (or the end
// of the run) comes first, the heal is counted as not converged only if the bound had
// already passed by then.
import type { Entry, FaultEntry, ProcEntry, ViewEntry, CheckConfig, CheckResult, Violation } from '../history.js';

export interface MembershipResult extends CheckResult {
  /** Convergence time of each heal that converged, in ms. */
  convergeMs: number[];
}

export function checkMembership(entries: readonly Entry[], config: Pick<CheckConfig, 'failureTimeout' | 'heartbeatInterval' | 'convergeHeartbeats' | 'restartConvergeMs'>): MembershipResult {
  const healBound = config.failureTimeout + config.convergeHeartbeats * config.heartbeatInterval;
  const faults = entries.filter((e): e is FaultEntry => e.type === 'fault' && e.kind !== 'slow').sort((a, b) => a.start - b.start);
  const procs = entries.filter((e): e is ProcEntry => e.type === 'proc');
  const views = entries.filter((e): e is ViewEntry => e.type === 'view').sort((a, b) => a.t - b.t);
  // A loop, not Math.max(...): a soak history has too many entries to spread as arguments.
  let lastTime = 0;
  for (const e of entries) lastTime = Math.max(lastTime, timeOf(e));
  const violations: Violation[] = [];
  const convergeMs: number[] = [];
  for (let i = 0; i < faults.length; i++) {
    const f = faults[i]!;
    const h = f.end;
    const bound = f.kind === 'restart' ? (config.restartConvergeMs ?? healBound) : healBound;
    const until = Math.min(faults[i + 1]?.start ?? Infinity, lastTime);
    const instants = [h, ...views.filter((v) => v.t > h && v.t <= until).map((v) => v.t), ...procs.flatMap((p) => [p.up, p.down ?? -1]).filter((t) => t > h && t <= until)]
      .sort((a, b) => a - b);
    const at = instants.find((t) => converged(t, procs, views));
    if (at !== undefined) {
      convergeMs.push(at - h);
      if (at - h > bound) violations.push({ t: h, node: f.nodes[0], message: `after the heal of ${describe(f)} at ${h}, membership took ${at - h} ms to converge (bound ${bound} ms)` });
    } else if (until - h > bound) {
      violations.push({ t: h, node: f.nodes[0], message: `after the heal of ${describe(f)} at ${h}, membership had not converged ${until - h} ms later (bound ${bound} ms): ${viewsAt(until, procs, views)}` });
    }
  }
  return { name: 'membership', violations, convergeMs };
}

const timeOf = (e: Entry): number => ('t' in e ? e.t : e.type === 'fault' ? e.end : e.type === 'proc' ? (e.down ?? e.up) : (e.end ?? e.start));

function live(t: number, procs: readonly ProcEntry[]): ProcEntry[] {
  return procs.filter((p) => p.up <= t && (p.down === null || p.down > t));
}

function viewOf(p: ProcEntry, t: number, views: readonly ViewEntry[]): string[] | undefined {
  let last: ViewEntry | undefined;
  for (const v of views) {
    if (v.t > t) break;
    if (v.pid === p.pid && v.node === p.node) last = v;
  }
  return last?.nodes;
}

function converged(t: number, procs: readonly ProcEntry[], views: readonly ViewEntry[]): boolean {
  const alive = live(t, procs);
  const names = new Set(alive.map((p) => p.node));
  // Two processes under one name (a restart in progress) is not a converged state.
  if (names.size !== alive.length) return false;
  for (const p of alive) {
    const v = viewOf(p, t, views);
    if (v === undefined) return false;
    const want = [...names].filter((n) => n !== p.node).sort().join(',');
    if ([...v].sort().join(',') !== want) return false;
  }
  return true;
}

function viewsAt(t: number, procs: readonly ProcEntry[], views: readonly ViewEntry[]): string {
  return live(t, procs).map((p) => `${p.node} sees [${(viewOf(p, t, views) ?? []).join(',')}]`).join('; ');
}

function describe(f: FaultEntry): string {
  return f.kind === 'partition' ? `partition ${f.detail ?? ''} (${(f.cut ?? []).map((c) => c.join('|')).join(' ')})` : `${f.kind} ${f.nodes.join(',')}`;
}
