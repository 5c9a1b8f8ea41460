import { describe, expect, it } from 'vitest';
import { pack, unpack } from 'msgpackr';
import { encode, decode } from '@msgpack/msgpack';
import { ActorDownError, CallTimeoutError, InvalidOptionError, NodeDownError, startNode, type DownReason, type From } from '../src/index.js';
import { deferred } from '../src/util/deferred.js';
import type { ActorRef } from '../src/actors/ref.js';

type CounterMsg = { add: number } | 'get';

async function withNode<T>(fn: (node: Awaited<ReturnType<typeof startNode>>) => Promise<T>): Promise<T> {
  const node = await startNode({ callTimeout: 2000 });
  try {
    return await fn(node);
  } finally {
    await node.close();
  }
}

const counterBehavior = {
  init: () => 0,
  handleCall: (msg: CounterMsg, state: number) =>
    msg === 'get' ? { reply: state, state } : { reply: state + msg.add, state: state + msg.add },
  handleCast: (msg: { add: number }, state: number) => state + msg.add,
};

describe('actors: call and cast', () => {
  it('answers calls and applies casts in arrival order', () =>
    withNode(async (node) => {
      const counter = node.spawn(counterBehavior);
      expect(await counter.call({ add: 2 })).toBe(2);
      counter.cast({ add: 1 });
      counter.cast({ add: 10 });
      expect(await counter.call('get', { timeout: 1000 })).toBe(13);
    }));

  it('handles interleaved calls and casts strictly in the order they were sent', () =>
    withNode(async (node) => {
      const log = node.spawn({
        init: () => [] as number[],
        handleCall: (_msg: 'read', state: number[]) => ({ reply: [...state], state }),
        handleCast: (n: number, state: number[]) => [...state, n],
      });
      const pending: Promise<number[]>[] = [];
      for (let i = 0; i < 100; i++) {
        log.cast(i);
        if (i % 10 === 9) pending.push(log.call('read'));
      }
      const snapshots = await Promise.all(pending);
      snapshots.forEach((snap, k) => expect(snap).toEqual(Array.from({ length: (k + 1) * 10 }, (_, i) => i)));
    }));

  it('serializes async handlers: the next message waits until the current one settles', () =>
    withNode(async (node) => {
      let inside = 0;
      let maxInside = 0;
      const order: number[] = [];
      const actor = node.spawn({
        init: () => null,
        handleCall: async (n: number, state: null) => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await new Promise((r) => setTimeout(r, n % 3));
          order.push(n);
          inside--;
          return { reply: n, state };
        },
      });
      const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => actor.call(i)));
      expect(replies).toEqual(Array.from({ length: 30 }, (_, i) => i));
      expect(order).toEqual(replies);
      expect(maxInside).toBe(1);
    }));

  it('does not run a handler inside the sender\'s stack', () =>
    withNode(async (node) => {
      let ran = false;
      const actor = node.spawn({ init: () => 0, handleCast: (_m: 'x', s: number) => ((ran = true), s) });
      actor.cast('x');
      expect(ran).toBe(false);
      await new Promise((r) => setImmediate(r));
      expect(ran).toBe(true);
    }));

  it('waits for an async init before handling messages', () =>
    withNode(async (node) => {
      const gate = deferred<number>();
      const actor = node.spawn({
        init: () => gate.promise,
        handleCall: (_m: 'get', s: number) => ({ reply: s, state: s }),
      });
      const reply = actor.call('get');
      gate.resolve(42);
      expect(await reply).toBe(42);
    }));

  it('supports replying later through `from` (noreply)', () =>
    withNode(async (node) => {
      const actor = node.spawn({
        init: () => [] as From<string>[],
        handleCall: (msg: 'wait' | 'release', state: From<string>[], from: From<string>) => {
          if (msg === 'wait') return { noreply: true as const, state: [...state, from] };
          for (const f of state) f.reply('released');
          return { reply: 'ok', state: [] };
        },
      });
      const a = actor.call('wait');
      const b = actor.call('wait');
      expect(await actor.call('release')).toBe('ok');
      expect(await Promise.all([a, b])).toEqual(['released', 'released']);
    }));
});

describe('actors: timeouts', () => {
  it('rejects with CallTimeoutError and drops the late reply instead of delivering it to a later call', () =>
    withNode(async (node) => {
      const release = deferred<void>();
      const actor = node.spawn({
        init: () => 0,
        handleCall: async (msg: 'slow' | 'fast', n: number) => {
          if (msg === 'slow') await release.promise;
          return { reply: `${msg}-${n}`, state: n + 1 };
        },
      });
      const slow = actor.call('slow', { timeout: 50 });
      await expect(slow).rejects.toBeInstanceOf(CallTimeoutError);
      await expect(slow).rejects.toMatchObject({ timeout: 50, ref: { node: node.name, id: actor.id } });
      const fast = actor.call('fast', { timeout: 5000 });
      release.resolve();
      // The slow handler's reply ('slow-0') was dropped; the next call gets its own reply.
      expect(await fast).toBe('fast-1');
    }));

  it('uses the node-wide callTimeout by default', async () => {
    const node = await startNode({ callTimeout: 40 });
    try {
      const never = node.spawn({ init: () => 0, handleCall: (_m: 'x', s: number) => ({ noreply: true as const, state: s }) });
      const started = performance.now();
      await expect(never.call('x')).rejects.toBeInstanceOf(CallTimeoutError);
      const waited = performance.now() - started;
      expect(waited).toBeGreaterThanOrEqual(39);
      expect(waited).toBeLessThan(2000);
    } finally {
      await node.close();
    }
  });

  it('times out many concurrent calls with different timeouts, each no earlier than its own', () =>
    withNode(async (node) => {
      const never = node.spawn({ init: () => 0, handleCall: (_m: number, s: number) => ({ noreply: true as const, state: s }) });
      const t0 = performance.now();
      const timeouts = [10, 30, 60, 10, 30];
      const results = await Promise.all(
        timeouts.map((t) =>
          never.call(t, { timeout: t }).then(
            () => -1,
            (e: unknown) => (e instanceof CallTimeoutError ? performance.now() - t0 : -2),
          ),
        ),
      );
      results.forEach((elapsed, i) => expect(elapsed).toBeGreaterThanOrEqual(timeouts[i]! - 1));
    }));

  it('rejects a bad timeout with a clear error', () =>
    withNode(async (node) => {
      const a = node.spawn(counterBehavior);
      expect(() => a.call('get', { timeout: -1 })).toThrow(/timeout/);
    }));
});

describe('actors: stop and crash', () => {
  it('stop fails queued calls with ActorDownError and runs terminate once', () =>
    withNode(async (node) => {
      const gate = deferred<void>();
      const started = deferred<void>();
      const terminated: DownReason[] = [];
      const actor = node.spawn({
        init: () => 0,
        handleCall: async (msg: 'block' | 'next', s: number) => {
          if (msg === 'block') {
            started.resolve();
            await gate.promise;
          }
          return { reply: msg, state: s };
        },
        terminate: (reason) => {
          terminated.push(reason);
        },
      });
      const running = actor.call('block');
      const queued = [actor.call('next'), actor.call('next')].map((p) => p.then(() => 'replied', (e: unknown) => e));
      await started.promise;
      const stopped = actor.stop();
      gate.resolve();
      expect(await running).toBe('block'); // the handler that was running finishes
      for (const q of await Promise.all(queued)) {
        expect(q).toBeInstanceOf(ActorDownError);
        expect(q).toMatchObject({ reason: 'normal' });
      }
      await stopped;
      expect(terminated).toEqual(['normal']);
      await expect(actor.call('next')).rejects.toMatchObject({ name: 'ActorDownError', reason: 'noproc' });
    }));

  it('stop fails calls held with noreply', () =>
    withNode(async (node) => {
      const actor = node.spawn({ init: () => 0, handleCall: (_m: 'x', s: number) => ({ noreply: true as const, state: s }) });
      const held = actor.call('x', { timeout: 10_000 });
      await new Promise((r) => setImmediate(r));
      await actor.stop();
      await expect(held).rejects.toBeInstanceOf(ActorDownError);
    }));

  it('a throwing handler crashes the actor: the caller gets the error, queued and later callers ActorDownError', () =>
    withNode(async (node) => {
      const boom = new Error('boom');
      const actor = node.spawn({
        init: () => 0,
        handleCall: async (msg: 'crash' | 'ok', s: number) => {
          if (msg === 'crash') {
            await new Promise((r) => setTimeout(r, 5));
            throw boom;
          }
          return { reply: 'ok', state: s };
        },
      });
      const crashing = actor.call('crash');
      const queued = actor.call('ok');
      await expect(crashing).rejects.toBe(boom);
      const err = await queued.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ActorDownError);
      expect((err as ActorDownError).reason).toEqual({ crashed: boom });
      expect((err as ActorDownError).message).toMatch(/crashed: boom/);
      await expect(actor.call('ok')).rejects.toMatchObject({ reason: 'noproc' });
    }));

  it('a throwing cast handler crashes the actor', () =>
    withNode(async (node) => {
      const actor = node.spawn({
        init: () => 0,
        handleCall: (_m: 'get', s: number) => ({ reply: s, state: s }),
        handleCast: (_m: 'bad', _s: number): number => {
          throw new Error('bad cast');
        },
      });
      const down = new Promise<DownReason>((r) => node.monitor(actor, r));
      actor.cast('bad');
      expect(await down).toMatchObject({ crashed: { message: 'bad cast' } });
      await expect(actor.call('get')).rejects.toBeInstanceOf(ActorDownError);
    }));

  it('a handleCall that returns a malformed result crashes with a clear TypeError', () =>
    withNode(async (node) => {
      const actor = node.spawn({ init: () => 0, handleCall: (() => 42) as never });
      await expect(actor.call('x' as never)).rejects.toThrow(/must return \{ reply, state \}/);
    }));

  it('an init that throws crashes the actor and monitors hear why', () =>
    withNode(async (node) => {
      const actor = node.spawn({
        init: (): number => {
          throw new Error('no init');
        },
        handleCall: (_m: 'get', s: number) => ({ reply: s, state: s }),
      });
      const reason = await new Promise<DownReason>((r) => node.monitor(actor, r));
      expect(reason).toMatchObject({ crashed: { message: 'no init' } });
    }));
});

describe('actors: monitors', () => {
  it('reports normal stop, crash, and a ref already gone (noproc) exactly once', () =>
    withNode(async (node) => {
      const a = node.spawn(counterBehavior);
      const reasons: DownReason[] = [];
      const downA = new Promise<void>((resolve) =>
        node.monitor(a, (r) => {
          reasons.push(r);
          resolve();
        }),
      );
      await a.stop();
      await downA;
      const late = await new Promise<DownReason>((r) => node.monitor(a, r));
      expect(late).toBe('noproc');
      expect(reasons).toEqual(['normal']);
    }));

  it('a cancelled monitor is not called', () =>
    withNode(async (node) => {
      const a = node.spawn(counterBehavior);
      let called = 0;
      const off = node.monitor(a, () => called++);
      const other = new Promise<void>((r) => node.monitor(a, () => r()));
      off();
      await a.stop();
      await other;
      expect(called).toBe(0);
    }));

  it('calling a ref on an unknown node of a standalone node rejects with NodeDownError', () =>
    withNode(async (node) => {
      const ghost = node.ref({ node: 'elsewhere', id: '1' });
      await expect(ghost.call('x')).rejects.toBeInstanceOf(NodeDownError);
      expect(await new Promise((r) => node.monitor(ghost, r))).toBe('noconnection');
    }));
});

describe('actors: refs as plain data', () => {
  it('round-trips through structuredClone and msgpack unchanged and compares by value', () =>
    withNode(async (node) => {
      const ref = node.spawn(counterBehavior);
      expect(Object.keys(ref).sort()).toEqual(['id', 'node']);
      const cloned = structuredClone(ref);
      expect(cloned).toEqual({ node: node.name, id: ref.id });
      expect(unpack(pack(ref))).toEqual({ node: node.name, id: ref.id });
      expect(decode(encode(ref))).toEqual({ node: node.name, id: ref.id });
      expect(JSON.parse(JSON.stringify(ref))).toEqual({ node: node.name, id: ref.id });
      expect(ref.equals(cloned)).toBe(true);
      // A plain copy is bound again with node.ref and calls the same actor.
      const rebound = node.ref<CounterMsg, number>(cloned);
      expect(await rebound.call({ add: 5 })).toBe(5);
      expect(await ref.call('get')).toBe(5);
    }));

  it('refs travel inside messages between local actors', () =>
    withNode(async (node) => {
      const counter = node.spawn(counterBehavior);
      const forwarder = node.spawn({
        init: () => null,
        handleCall: async (msg: { to: typeof counter; add: number }, s: null) => ({ reply: await msg.to.call({ add: msg.add }), state: s }),
      });
      expect(await forwarder.call({ to: counter, add: 3 })).toBe(3);
    }));

  it('registered names give well-known ids and refuse duplicates', () =>
    withNode(async (node) => {
      const svc = node.spawn(counterBehavior, { name: 'svc' });
      expect(svc.id).toBe('svc');
      expect(() => node.spawn(counterBehavior, { name: 'svc' })).toThrow(InvalidOptionError);
      expect(() => node.spawn(counterBehavior, { name: 'svc' })).toThrow(/`name`/);
      await svc.stop();
      expect(node.spawn(counterBehavior, { name: 'svc' }).id).toBe('svc');
    }));
});

describe('actors: runtime services', () => {
  it('serve hands casts to its id over at once and in order, in place of an actor with that id; undo and close end it', () =>
    withNode(async (node) => {
      const actorGot: unknown[] = [];
      node.spawn({ init: () => null, handleCast: (m: unknown) => (actorGot.push(m), null) }, { name: 'svc' });
      const got: unknown[] = [];
      const undo = node.system.serve('svc', (m) => got.push(m));
      node.system.cast({ node: node.name, id: 'svc' }, 1);
      node.system.cast({ node: node.name, id: 'svc' }, 2);
      expect(got).toEqual([1, 2]); // handled as delivered, no mailbox turn
      undo();
      node.system.cast({ node: node.name, id: 'svc' }, 3);
      await new Promise((r) => setImmediate(r));
      expect(got).toEqual([1, 2]);
      expect(actorGot).toEqual([3]); // the actor with that id has its casts again
      node.system.serve('other', (m) => got.push(m));
      await node.system.close();
      node.system.cast({ node: node.name, id: 'other' }, 4);
      expect(got).toEqual([1, 2]);
    }));
});

describe('actors: mailbox under steady load', () => {
  // Regression: a mailbox that never empties kept every handled slot (about 12 B a message).
  it('a busy actor with async handlers does not keep the messages it has handled', () =>
    withNode(async (node) => {
      let maxArray = 0;
      const done = deferred<number>();
      // Each message sends the actor one more, so its mailbox never runs empty for 100k messages.
      const self: { ref?: ActorRef<never, never, number> } = {};
      const actor = node.spawn({
        init: () => 0,
        handleCast: async (_m: number, s: number) => {
          await null;
          maxArray = Math.max(maxArray, node.system.debugMailboxSize(self.ref!));
          if (s + 1 < 100_000) self.ref!.cast(s + 1);
          else done.resolve(s + 1);
          return s + 1;
        },
      });
      self.ref = actor;
      for (let i = 0; i < 10; i++) actor.cast(i);
      expect(await done.promise).toBe(100_000);
      expect(maxArray).toBeLessThan(5000);
    }));
});

describe('actors: fairness to the event loop', () => {
  // Regression: a loop of `await ref.call()` on a local actor ran in microtasks forever,
  // so timers (call timeouts included) and sockets never got a turn.
  it('a tight loop of local calls lets timers run', () =>
    withNode(async (node) => {
      const actor = node.spawn({ init: () => 0, handleCall: (_m: 'get', s: number) => ({ reply: s, state: s }) });
      let fired = false;
      setTimeout(() => {
        fired = true;
      }, 1);
      let calls = 0;
      const started = performance.now();
      while (!fired && performance.now() - started < 10_000) {
        await actor.call('get');
        calls++;
      }
      expect(fired).toBe(true);
      expect(calls).toBeGreaterThan(0);
    }));
});
