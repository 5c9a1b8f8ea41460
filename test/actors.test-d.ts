import { describe, expectTypeOf, it } from 'vitest';
import { startNode, type ActorRef, type Agent } from '../src/index.js';

describe('actor types', () => {
  it('call returns the reply type of handleCall and checks the message type', async () => {
    const node = await startNode();
    const counter = node.spawn({
      init: () => 0,
      handleCall: (msg: { add: number } | 'get', state: number) =>
        msg === 'get' ? { reply: state, state } : { reply: state + msg.add, state: state + msg.add },
      handleCast: (msg: { add: number }, state: number) => state + msg.add,
    });
    expectTypeOf(counter).toEqualTypeOf<ActorRef<{ add: number } | 'get', number, { add: number }>>();
    expectTypeOf(counter.call('get')).toEqualTypeOf<Promise<number>>();
    // @ts-expect-error not a message this actor handles
    void counter.call('nope');
    // @ts-expect-error casts take the handleCast message type
    counter.cast('get');
    const labels = node.spawn({
      init: () => [] as string[],
      handleCall: async (msg: 'all', state: string[]) => ({ reply: state.join(','), state }),
    });
    expectTypeOf(labels.call('all')).toEqualTypeOf<Promise<string>>();
  });

  it('Agent functions are typed by the state', async () => {
    const agent = {} as Agent<Map<string, number>>;
    expectTypeOf(agent.get()).toEqualTypeOf<Promise<Map<string, number>>>();
    expectTypeOf(agent.get((m) => m.size)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(agent.getAndUpdate((m) => ['x', m] as const)).toEqualTypeOf<Promise<'x'>>();
    // @ts-expect-error update must return the state type
    void agent.update(() => 'not a map');
  });
});
