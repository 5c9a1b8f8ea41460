// Who agreed with whom on the membership, and when, computed from the nemesis log. The
// library promises lock exclusion and one fetch per cycle among connected nodes that agree
// on the membership; across a cut, and for "a node connected to some peers but not all",
// it does not. So two nodes count as separated from a fault's start until `settleMs` after
// its heal when:
// - a partition left them with different views: the set of nodes each is cut from differs
//   (the two sides of a split or of an isolation; in a bridge topology, where A sees B and C
//   but B and C do not see each other, A and B disagree although linked, while two nodes
//   on B's side agree);
// - the fault hit either of them (kill, stop, restart: a dead or frozen node talks to
//   nobody, and the others see it down).
// A slow link separates nobody: its delay stays well below failureTimeout.
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
    case 'partition': {
      const cutFrom = (n: string): string => (f.cut ?? []).flatMap(([x, y]) => (x === n ? [y] : y === n ? [x] : [])).sort().join(',');
      return cutFrom(a) !== cutFrom(b);
    }
    default:
      return f.nodes.includes(a) || f.nodes.includes(b);
  }
}
