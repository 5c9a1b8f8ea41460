// actor-call: round trips of a local `call` to an actor on a standalone node, measured side
// by side in the same run with the floor (`await` of an async function returning a value)
// and a p-queue of concurrency 1 doing the same work (one state update, one reply).
// Goal (issue 3): a local call within 3x of the floor.
import PQueue from 'p-queue';
import { startNode } from '../src/index.js';
import { fmt, ratio } from './lib/format.js';
import { interleaveAsync } from './lib/loop.js';
import { panel } from './lib/chart.js';
import type { BenchModule, BenchResult, TableSection } from './lib/types.js';

type Msg = { add: number };

const actorCall: BenchModule = {
  name: 'actor-call',
  summary: 'local actor call round trip vs `await` floor vs p-queue(concurrency 1)',
  defaultDurationS: 3,
  latency: false,
  options: {},
  params: () => ({}),
  async run(_params, ctx) {
    const node = await startNode();
    try {
      const counter = node.spawn<number, Msg, number>({
        init: () => 0,
        handleCall: (msg, state) => ({ reply: state + msg.add, state: state + msg.add }),
      });
      let floorState = 0;
      const floor = async (msg: Msg): Promise<number> => (floorState += msg.add);
      let queueState = 0;
      const queue = new PQueue({ concurrency: 1 });
      const msg: Msg = { add: 1 };
      const ns = await interleaveAsync(
        [
          { name: 'awaitFloorNs', op: () => floor(msg) },
          { name: 'localCallNs', op: () => counter.call(msg) },
          { name: 'localCallNoTimeoutNs', op: () => counter.call(msg, { timeout: Infinity }) },
          { name: 'pQueueNs', op: () => queue.add(() => (queueState += msg.add)) },
        ],
        { durationMs: ctx.common.durationS * 1000, batch: 500, onProgress: (f) => ctx.progress(f, 'measuring') },
      );
      return {
        metrics: {
          localCallNs: ns.localCallNs!,
          awaitFloorNs: ns.awaitFloorNs!,
          pQueueNs: ns.pQueueNs!,
          localCallNoTimeoutNs: ns.localCallNoTimeoutNs!,
          localCallsPerSec: 1e9 / ns.localCallNs!,
          awaitFloorPerSec: 1e9 / ns.awaitFloorNs!,
          pQueuePerSec: 1e9 / ns.pQueueNs!,
          localCallVsFloor: ns.localCallNs! / ns.awaitFloorNs!,
        },
      };
    } finally {
      await node.close();
    }
  },
  charts: (r) => [
    {
      title: 'actor-call: a local call vs the floor and p-queue',
      panels: [
        panel('one awaited operation', 'ns/op', [
          ['await of an async fn (floor)', r.metrics.awaitFloorNs, 'floor'],
          ['local actor call (ours)', r.metrics.localCallNs, 'ours'],
          ['p-queue add (peer)', r.metrics.pQueueNs, 'peer'],
        ]),
      ],
    },
  ],
  table(result: BenchResult): TableSection[] {
    const m = result.metrics;
    const row = (label: string, nsKey: string): string[] => [label, fmt(m[nsKey]), fmt(1e9 / m[nsKey]!), ratio(m[nsKey], m.awaitFloorNs)];
    return [
      {
        headers: ['variant', 'ns/call', 'calls/s', 'vs floor'],
        rows: [
          row('await async fn (floor)', 'awaitFloorNs'),
          row('actor call', 'localCallNs'),
          row('actor call, timeout: Infinity', 'localCallNoTimeoutNs'),
          row('p-queue, concurrency 1', 'pQueueNs'),
        ],
      },
      {
        headers: ['goal', 'target', 'measured', 'met'],
        rows: [['local call vs floor (median of per-run ratios)', '<= 3x', `${fmt(m.localCallVsFloor)}x`, m.localCallVsFloor! <= 3 ? 'yes' : 'no']],
      },
    ];
  },
};

export default actorCall;
