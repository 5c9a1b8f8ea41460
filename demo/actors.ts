// The actor runtime in one process: a node, a counter actor, a call, a timeout, a crash
// observed by a monitor, and an Agent. Run with `npm run demo -- actors`.
import { Agent, CallTimeoutError, startNode, type DownReason } from '../src/index.js';

export async function actorsDemo(): Promise<void> {
  const node = await startNode({ name: 'demo', callTimeout: 1000 });
  console.log(`started standalone node ${node.name}`);

  const counter = node.spawn({
    init: () => 0,
    handleCall: async (msg: { add: number } | 'get' | { sleep: number } | 'crash', state: number) => {
      if (msg === 'get') return { reply: state, state };
      if (msg === 'crash') throw new Error('asked to crash');
      if ('sleep' in msg) {
        await new Promise((r) => setTimeout(r, msg.sleep));
        return { reply: state, state };
      }
      return { reply: state + msg.add, state: state + msg.add };
    },
    handleCast: (msg: { add: number }, state: number) => state + msg.add,
  });
  console.log(`spawned counter ${counter}`);

  console.log(`call {add: 2}         -> ${await counter.call({ add: 2 })}`);
  counter.cast({ add: 40 });
  console.log(`cast {add: 40}, get   -> ${await counter.call('get')}`);

  try {
    await counter.call({ sleep: 300 }, { timeout: 50 });
  } catch (err) {
    if (!(err instanceof CallTimeoutError)) throw err;
    console.log(`call with timeout 50  -> ${err.name}: ${err.message}`);
  }

  const down = new Promise<DownReason>((resolve) => node.monitor(counter, resolve));
  try {
    await counter.call('crash');
  } catch (err) {
    console.log(`call 'crash'          -> ${(err as Error).message}`);
  }
  const reason = await down;
  console.log(`monitor               -> down: ${typeof reason === 'string' ? reason : `crashed (${(reason.crashed as Error).message})`}`);
  try {
    await counter.call('get');
  } catch (err) {
    console.log(`call after crash      -> ${(err as Error).name}: ${(err as Error).message}`);
  }

  const agent = await Agent.start(node, () => new Map<string, number>());
  await agent.update((m) => new Map(m).set('requests', 1));
  console.log(`Agent get(requests)   -> ${await agent.get((m) => m.get('requests'))}`);

  await node.close();
  console.log('node closed');
}
