import { describe, expect, it } from 'vitest';
import { ActorDownError, InvalidOptionError, startNode } from '../src/index.js';

describe('startNode (standalone)', () => {
  it('starts a standalone node with a generated name, no peers and no address', async () => {
    const node = await startNode();
    expect(typeof node.name).toBe('string');
    expect(node.name.length).toBeGreaterThan(0);
    expect(node.nodes()).toEqual([]);
    expect(node.address).toBeUndefined();
    const other = await startNode();
    expect(other.name).not.toBe(node.name);
    await node.close();
    await other.close();
  });

  it('close stops every live actor (terminate runs, pending calls fail) and is idempotent', async () => {
    const node = await startNode({ name: 'closing-node' });
    const terminated: string[] = [];
    const refs = Array.from({ length: 5 }, (_, i) =>
      node.spawn({
        init: () => i,
        handleCall: (_m: 'hold', s: number) => ({ noreply: true as const, state: s }),
        terminate: (reason) => {
          terminated.push(String(reason));
        },
      }),
    );
    const pending = refs[0]!.call('hold', { timeout: 60_000 }).catch((e: unknown) => e);
    await new Promise((r) => setImmediate(r));
    await node.close();
    await node.close();
    expect(await pending).toBeInstanceOf(ActorDownError);
    expect(terminated).toEqual(['shutdown', 'shutdown', 'shutdown', 'shutdown', 'shutdown']);
    expect(() => node.spawn({ init: () => 0 })).toThrow(/closed/);
  });

  it.each([
    [{ port: 70000 }, /`port`/],
    [{ port: -1 }, /`port`/],
    [{ port: 1.5 }, /`port`/],
    [{ name: 42 as unknown as string }, /`name`/],
    [{ name: '' }, /`name`/],
    [{ name: 'has space' }, /`name`/],
    [{ seeds: 'a:1' as unknown as string[] }, /`seeds`/],
    [{ seeds: ['nohost'] }, /`seeds`/],
    [{ port: 0 }, /`cookie`/],
    [{ callTimeout: -5 }, /`callTimeout`/],
    [{ heartbeatInterval: 0 }, /`heartbeatInterval`/],
    [{ failureTimeout: Number.NaN }, /`failureTimeout`/],
    [{ host: '' }, /`host`/],
  ])('refuses bad option %o with a clear error', async (options, message) => {
    const err = await startNode(options).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidOptionError);
    expect((err as Error).message).toMatch(message);
  });

  it('onNodeDown of an unknown node resolves at once', async () => {
    await using node = await startNode();
    expect(await node.onNodeDown('nobody')).toBe('noconnection');
  });
});
