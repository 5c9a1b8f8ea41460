// The nemesis schedule: a list of faults drawn from the seed, run one after the other, each
// followed by a quiet gap long enough for membership to converge. The same seed, node
// count, duration and fault kinds give the same list (the wall-clock times shift a little
// with how long each action takes).
import type { FaultKind } from './history.js';
import { between, mulberry32, pick, shuffle, type Rng } from './prng.js';

export type PartitionShape = 'isolate' | 'split' | 'bridge';

export interface PlannedFault {
  kind: FaultKind;
  /** Nodes hit (kill, stop, restart, slow); for a partition, every node involved. */
  nodes: string[];
  /** Links cut by a partition. */
  cut?: [string, string][];
  shape?: PartitionShape;
  /** How long the fault lasts before its heal (ms); a restart takes what it takes. */
  holdMs: number;
  /** Slow link delay (ms). */
  delayMs?: number;
  /** Quiet time after the heal, before the next fault (ms). */
  gapMs: number;
}

export interface ScheduleOptions {
  seed: number;
  nodes: string[];
  /** Milliseconds of faults (the schedule stops adding faults that would end past it). */
  durationMs: number;
  kinds: FaultKind[];
  /** Quiet time after each heal is at least this (ms). */
  minGapMs: number;
}

export const FAULT_KINDS: readonly FaultKind[] = ['kill', 'stop', 'partition', 'restart', 'slow'];

export function makeSchedule(o: ScheduleOptions): PlannedFault[] {
  const rnd = mulberry32(o.seed);
  const out: PlannedFault[] = [];
  let t = 0;
  // Every kind once, in a seeded order, then kinds at random.
  let firsts = shuffle(rnd, o.kinds);
  for (;;) {
    const kind = firsts.shift() ?? pick(rnd, o.kinds);
    const f = plan(rnd, kind, o.nodes, o.minGapMs);
    // A restart lasts about a liveness probe plus a process start: count 3 s.
    const cost = (kind === 'restart' ? 3000 : f.holdMs) + f.gapMs;
    if (t + cost > o.durationMs && out.length > 0) break;
    out.push(f);
    t += cost;
    if (firsts.length === 0) firsts = [];
  }
  return out;
}

function plan(rnd: Rng, kind: FaultKind, nodes: string[], minGap: number): PlannedFault {
  const gapMs = minGap + between(rnd, 0, 1500);
  switch (kind) {
    case 'kill':
      return { kind, nodes: [pick(rnd, nodes)], holdMs: between(rnd, 1000, 4000), gapMs };
    case 'stop':
      return { kind, nodes: [pick(rnd, nodes)], holdMs: between(rnd, 1000, 5000), gapMs };
    case 'restart':
      return { kind, nodes: [pick(rnd, nodes)], holdMs: 0, gapMs };
    case 'slow':
      return { kind, nodes: [pick(rnd, nodes)], holdMs: between(rnd, 2000, 5000), delayMs: between(rnd, 30, 150), gapMs };
    case 'partition': {
      const shapes: PartitionShape[] = nodes.length >= 3 ? ['isolate', 'split', 'bridge'] : ['isolate'];
      const shape = pick(rnd, shapes);
      const order = shuffle(rnd, nodes);
      let sides: [string[], string[]];
      if (shape === 'isolate') sides = [[order[0]!], order.slice(1)];
      else if (shape === 'split') {
        const minority = Math.max(1, Math.floor((nodes.length - 1) / 2));
        sides = [order.slice(0, minority), order.slice(minority)];
      } else {
        // order[0] is the bridge: it sees both sides, which do not see each other.
        const rest = order.slice(1);
        const k = between(rnd, 1, rest.length - 1);
        sides = [rest.slice(0, k), rest.slice(k)];
      }
      const cut: [string, string][] = sides[0].flatMap((a) => sides[1].map((b): [string, string] => [a, b]));
      const detail = shape === 'bridge' ? [order[0]!] : sides[0];
      return { kind, nodes: detail, cut, shape, holdMs: between(rnd, 2000, 6000), gapMs };
    }
  }
}
