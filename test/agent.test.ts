import { describe, expect, it } from 'vitest';
import { ActorDownError, Agent, startNode } from '../src/index.js';

describe('Agent', () => {
  it('get, get(fn), update, getAndUpdate, cast and stop, as Elixir Agent', async () => {
    await using node = await startNode();
    const agent = await Agent.start(node, () => new Map<string, number>());
    expect(await agent.get()).toEqual(new Map());
    await agent.update((m) => new Map(m).set('a', 1));
    expect(await agent.get((m) => m.get('a'))).toBe(1);
    const prev = await agent.getAndUpdate((m) => [m.get('a'), new Map(m).set('a', 2)] as const);
    expect(prev).toBe(1);
    agent.cast((m) => new Map(m).set('b', 3));
    expect(await agent.get((m) => [...m.entries()])).toEqual([
      ['a', 2],
      ['b', 3],
    ]);
    expect(agent.ref.node).toBe(node.name);
    await agent.stop();
    await expect(agent.get()).rejects.toBeInstanceOf(ActorDownError);
  });

  it('awaits an async init and runs async update functions one at a time', async () => {
    await using node = await startNode();
    const agent = await Agent.start(node, async () => 0);
    await Promise.all(
      Array.from({ length: 20 }, () =>
        agent.update(async (n) => {
          await new Promise((r) => setTimeout(r, 1));
          return n + 1;
        }),
      ),
    );
    expect(await agent.get()).toBe(20);
  });

  it('rejects start with the error init threw', async () => {
    await using node = await startNode();
    await expect(
      Agent.start(node, () => {
        throw new Error('cannot init');
      }),
    ).rejects.toThrow('cannot init');
  });

  it('a function that throws crashes the agent: that caller gets the error, later callers ActorDownError', async () => {
    await using node = await startNode();
    const agent = await Agent.start(node, () => 1);
    await expect(
      agent.update(() => {
        throw new Error('bad update');
      }),
    ).rejects.toThrow('bad update');
    await expect(agent.get()).rejects.toBeInstanceOf(ActorDownError);
  });
});
