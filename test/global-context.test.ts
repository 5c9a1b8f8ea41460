import { describe, expect, it } from 'vitest';
import { startNode } from '../src/index.js';

describe('global locks: one re-entrance context for every node of a process', () => {
  // Pins the shared AsyncLocalStorage: a lock held through one node must not make another
  // node's trans on the same resource re-entrant.
  it('a lock held through node A does not let node B enter the same resource at once', async () => {
    await using a = await startNode({ name: 'ctx-a' });
    await using b = await startNode({ name: 'ctx-b' });
    const order: string[] = [];
    let releaseB!: () => void;
    const bHeld = new Promise<void>((resolve) => {
      void b.global.trans('x', async () => {
        order.push('b1 in');
        resolve();
        await new Promise<void>((r) => (releaseB = r));
        order.push('b1 out');
      });
    });
    await bHeld;
    await a.global.trans('x', async () => {
      // Re-entrant on A: runs at once.
      await a.global.trans('x', () => order.push('a nested'));
      // Not re-entrant on B: waits until B's first holder leaves.
      const second = b.global.trans('x', () => order.push('b2 in'));
      await new Promise((r) => setTimeout(r, 20));
      order.push('release b1');
      releaseB();
      await second;
    });
    expect(order).toEqual(['b1 in', 'a nested', 'release b1', 'b1 out', 'b2 in']);
    expect(a.global.stats().reentries).toBe(1);
    expect(b.global.stats().reentries).toBe(0);
  });
});
