import { describe, expect, it } from 'vitest';
import { startNode } from '../src/index.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { detached, heldUnder, holding, leaveHolding, runHolding } from '../src/util/held-context.js';
import { spawnPeer } from './helpers/peers.js';
import { HELD_PEER, type Cycle } from './fixtures/held-context-peer.js';

describe('the re-entrance context costs nothing on the awaits of a process that holds nothing', () => {
  // Pins: the context stayed enabled once a store or a lock had run, so on Node lines where an
  // AsyncLocalStorage is built on async_hooks every promise of the process paid for its
  // promise hooks from then on (an `await` 3.3x dearer on Node 20).
  it('promise tracking is off again once a store and its locks have run, and every form of re-entrance held meanwhile', async () => {
    await using p = await spawnPeer();
    await p.start({});
    // What entering a context costs on this Node: on async_hooks lines the hooks are on while
    // something is held (so the probe below is seen to detect them), elsewhere never.
    const costs = await p.run<boolean>(HELD_PEER, 'bareContextTracks');
    // Twice: the context is entered again after it was turned off, and re-entrance still holds.
    for (const round of [1, 2]) {
      const c = await p.run<Cycle>(HELD_PEER, 'storeAndLocks', `held-${round}`);
      expect(c.before).toBe(false);
      expect(c.inFetch).toBe(costs);
      expect(c.inTrans).toBe(costs);
      expect(c.after).toBe(false);
      // The fetch's putState ran under the fetch's lock, and the value was kept: one fetch.
      expect(c.value).toBe('t1');
      expect(c.fetches).toBe(1);
      // putState wrote 1, the re-entrant updateState added 10.
      expect(c.state).toBe(11);
      expect(c.inner).toBe(c.outer);
      expect(c.other).not.toBe(c.outer);
      expect(c.reentries).toBe(1);
    }
  });
});

describe('the re-entrance context in a loop of trans calls', () => {
  // Pins the hysteresis: turning async_hooks' promise hooks on and off costs about as much
  // as a local `trans`, so a loop of `trans` calls must not do it for each call; a single
  // one turns them off at once (an application's awaits right after it pay nothing).
  it('off at once after one trans; on after a second in the same turn; off after the next turn', async () => {
    await using p = await spawnPeer();
    await p.start({});
    const costs = await p.run<boolean>(HELD_PEER, 'bareContextTracks');
    const r = await p.run<{ afterOne: boolean; afterTwo: boolean; nextTurn: boolean }>(HELD_PEER, 'transInOneTurn', 'turns');
    expect(r.afterOne).toBe(false);
    expect(r.afterTwo).toBe(costs);
    expect(r.nextTurn).toBe(false);
  });
});

describe('the re-entrance context while several holders overlap', () => {
  // Pins the count of holders: the context goes off only when the last one leaves, so a
  // holder that leaves first does not take re-entrance away from one still running.
  it('a lock released while another is held leaves the other re-entrant', async () => {
    await using n = await startNode();
    let letGo!: () => void;
    const gate = new Promise<void>((resolve) => (letGo = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const long = n.global.trans('long', async (outer) => {
      entered();
      await gate;
      // `short` has come and gone meanwhile: this is still the holder of `long`.
      return [outer.token, await n.global.trans('long', (l) => l.token, { retries: 0 })];
    });
    await inside;
    expect(holding()).toBe(1);
    await n.global.trans('short', async () => {
      expect(holding()).toBe(2);
      await null;
    });
    expect(holding()).toBe(1);
    letGo();
    const [outer, inner] = await long;
    expect(inner).toBe(outer);
    expect(holding()).toBe(0);
  });

  it('a fn that throws, synchronously or not, leaves the context', async () => {
    await using n = await startNode();
    await expect(n.global.trans('t', () => {
      throw new Error('sync');
    })).rejects.toThrow('sync');
    await expect(n.global.trans('t', async () => {
      await null;
      throw new Error('async');
    })).rejects.toThrow('async');
    expect(holding()).toBe(0);
    // And the lock is free again.
    await expect(n.global.trans('t', () => 'ok', { retries: 0 })).resolves.toBe('ok');
  });
});

describe('what outlives a hold keeps nothing of it', () => {
  // Pins: on Node lines where promises carry the async context, a replica's cached result,
  // made while the fetch held its lock, kept the context's records, and through them the
  // lock's request and its closures, for as long as the value lived (~0.5 KB per key).
  it('a promise made with detached() while something is held does not keep the held value alive', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const key = {};
    let weak: WeakRef<object> | undefined;
    let kept: Promise<number> | undefined;
    (() => {
      const value = { payload: new Array(1000).fill(7) };
      weak = new WeakRef(value);
      try {
        runHolding(key, value, () => {
          expect(heldUnder(key)).toBe(value);
          kept = detached(() => Promise.resolve(1));
        }, undefined);
      } finally {
        leaveHolding();
      }
    })();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    gc();
    expect(weak!.deref()).toBeUndefined();
    expect(await kept).toBe(1);
    expect(holding()).toBe(0);
  });
});
