// Who could talk to whom, and when, computed from the nemesis log. Two nodes count as
// separated from a fault's start until `settleMs` after its heal when the fault cut their
// link (partition), or hit either of them (kill, stop, restart: a dead or frozen node talks
// to nobody). A slow link separates nobody: its delay stays well below failureTimeout.
// Separation is per pair, not per connected component: in a bridge topology B and C are
// separated although both see A, which is the allowance the library documents ("a node
// connected to some peers but not all can take the same lock").
import type { Entry, FaultEntry } from '../history.js';

export class Topology {
  readonly #faults: FaultEntry[];
  readonly #settle: number;

  constructor(entries: readonly Entry[], settleMs: number) {
    this.#faults = entries.filter((e): e is FaultEntry => e.type === 'fault');
    this.#settle = settleMs;
  }

  /** True if `a` and `b` were separated at any time in [from, to]. `a === b` asks whether `a` itself was hit. */
  separated(a: string, b: string, from: number, to: number): boolean {
    for (const f of this.#faults) {
      if (f.start > to || f.end + this.#settle < from) continue;
      if (hits(f, a, b)) return true;
    }
    return false;
  }

  /** True if `node` was killed, frozen or restarted at any time in [from, to] (settle included). */
  disturbed(node: string, from: number, to: number): boolean {
    for (const f of this.#faults) {
      if (f.start > to || f.end + this.#settle < from) continue;
      if (f.kind !== 'partition' && f.kind !== 'slow' && f.nodes.includes(node)) return true;
    }
    return false;
  }
}

function hits(f: FaultEntry, a: string, b: string): boolean {
  switch (f.kind) {
    case 'slow':
      return false;
    case 'partition':
      return (f.cut ?? []).some(([x, y]) => (x === a && y === b) || (x === b && y === a));
    default:
      return f.nodes.includes(a) || f.nodes.includes(b);
  }
}
