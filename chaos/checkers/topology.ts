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
// - or their recorded views (`node.nodes()` plus itself) differed at some time in the
//   window, or up to VIEW_MARGIN_MS before it: around a heal or a restart each node sees
//   the others come back at its own moment, and until the views agree two nodes may pick
//   different lock coordinators (the README: exclusion "among connected nodes that agree
//   on the membership").
// A slow link separates nobody: its delay stays well below failureTimeout.
import type { Entry, FaultEntry, ViewEntry } from '../history.js';

/** Messages decided under an older view may still be in flight this long after it changed. */
const VIEW_MARGIN_MS = 500;

export class Topology {
  readonly #faults: FaultEntry[];
  readonly #settle: number;
  /** Each node's recorded views, by time (any process of that name). */
  readonly #views = new Map<string, ViewEntry[]>();

  constructor(entries: readonly Entry[], settleMs: number) {
    this.#faults = entries.filter((e): e is FaultEntry => e.type === 'fault');
    this.#settle = settleMs;
    for (const e of entries) {
      if (e.type !== 'view') continue;
      let list = this.#views.get(e.node);
      if (!list) this.#views.set(e.node, (list = []));
      list.push(e);
    }
    for (const list of this.#views.values()) list.sort((x, y) => x.t - y.t);
  }

  /** True if `a` and `b` were separated at any time in [from, to]. `a === b` asks whether `a` itself was hit. */
  separated(a: string, b: string, from: number, to: number): boolean {
    for (const f of this.#faults) {
      if (f.start > to || f.end + this.#settle < from) continue;
      if (hits(f, a, b)) return true;
    }
    return a !== b && this.#viewsDiffer(a, b, from - VIEW_MARGIN_MS, to);
  }

  // Whether the recorded views of a and b differed at some instant in [from, to].
  #viewsDiffer(a: string, b: string, from: number, to: number): boolean {
    const va = this.#views.get(a) ?? [];
    const vb = this.#views.get(b) ?? [];
    if (va.length === 0 || vb.length === 0) return false;
    const instants = [from, ...va.filter((v) => v.t > from && v.t <= to).map((v) => v.t), ...vb.filter((v) => v.t > from && v.t <= to).map((v) => v.t)];
    return instants.some((t) => {
      const x = viewAt(va, t);
      const y = viewAt(vb, t);
      return x !== undefined && y !== undefined && setKey([...x.nodes, a]) !== setKey([...y.nodes, b]);
    });
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

function viewAt(list: readonly ViewEntry[], t: number): ViewEntry | undefined {
  let last: ViewEntry | undefined;
  for (const v of list) {
    if (v.t > t) break;
    last = v;
  }
  return last;
}

const setKey = (xs: string[]): string => [...new Set(xs)].sort().join(',');
