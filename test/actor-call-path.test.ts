// The two ways a local call's promise is made (src/actors/call-slot.ts): the promise of the
// microtask that runs an idle actor's mailbox, and the deferred of a call queued behind
// others. Each outcome (reply, crash, stop, timeout, a reply given later) through each.
import { describe, expect, it } from 'vitest';
import { ActorDownError, CallTimeoutError, startNode, type From } from '../src/index.js';

type Node = Awaited<ReturnType<typeof startNode>>;

async function withNode<T>(fn: (node: Node) => Promise<T>): Promise<T> {
  const node = await startNode({ callTimeout: 2000 });
  try {
    return await fn(node);
  } finally {
    await node.close();
  }
}

/** Microtask turns a parallel chain of `await null` makes while `p` settles. */
async function turnsUntil(p: Promise<unknown>): Promise<number> {
  let n = 0;
  let done = false;
  const ticker = (async () => {
    while (!done) {
      await null;
      n++;
    }
  })();
  await p.then(
    () => (done = true),
    () => (done = true),
  );
  await ticker;
  return n;
}

describe('actors: the call path of a local call', () => {
  it('the handler runs in a microtask after the call returns, and the caller resumes in the next one', () =>
    withNode(async (node) => {
      const seen: string[] = [];
      const a = node.spawn({ init: () => 0, handleCall: (m: number, s: number) => (seen.push(`handle ${m}`), { reply: m + 1, state: s }) });
      await a.call(0); // init has run
      const p = a.call(1);
      seen.push('returned');
      // Same turns as a handler answering through a deferred: one to run the mailbox, one to resume.
      expect(await turnsUntil(p)).toBe(2);
      expect(await p).toBe(2);
      expect(seen).toEqual(['handle 0', 'returned', 'handle 1']);
    }));

  it('calls queued in one tick are answered in order, through either kind of promise', () =>
    withNode(async (node) => {
      const a = node.spawn({ init: () => 0, handleCall: (m: number, s: number) => ({ reply: s + m, state: s + m }) });
      await a.call(0);
      expect(await Promise.all([a.call(1), a.call(2), a.call(3)])).toEqual([1, 3, 6]);
    }));

  it('an async handler and a reply given later reach the caller of an idle actor', () =>
    withNode(async (node) => {
      let later: From<string> | undefined;
      const a = node.spawn({
        init: () => 0,
        handleCall: async (m: 'async' | 'later', s: number, from: From<string>) => {
          await null;
          if (m === 'later') {
            later = from;
            return { noreply: true as const, state: s };
          }
          return { reply: 'async', state: s };
        },
      });
      expect(await a.call('async')).toBe('async');
      const p = a.call('later');
      await new Promise((r) => setImmediate(r));
      later!.reply('given later');
      expect(await p).toBe('given later');
    }));

  it('a crash fails the call being handled with its error, and the queued ones with ActorDownError', () =>
    withNode(async (node) => {
      const a = node.spawn({
        init: () => 0,
        handleCall: (m: string, s: number) => {
          if (m === 'boom') throw new Error('boom');
          return { reply: m, state: s };
        },
      });
      await a.call('ok');
      const first = a.call('boom');
      const queued = a.call('after');
      await expect(first).rejects.toThrow('boom');
      await expect(queued).rejects.toBeInstanceOf(ActorDownError);
    }));

  it('a stop before the mailbox runs fails the call with ActorDownError', () =>
    withNode(async (node) => {
      const a = node.spawn({ init: () => 0, handleCall: (m: string, s: number) => ({ reply: m, state: s }) });
      await a.call('ok');
      const p = a.call('never');
      const stopped = a.stop();
      await expect(p).rejects.toBeInstanceOf(ActorDownError);
      await stopped;
    }));

  // Pins the deadline taken only when the run leaves the call unanswered: no timer can fire
  // before that microtask, so a call answered in it needs none (and starts no tick timer).
  it('a call answered in the microtask that runs the mailbox starts no deadline timer', () =>
    withNode(async (node) => {
      const a = node.spawn({ init: () => 0, handleCall: (m: number, s: number) => ({ reply: m, state: s }) });
      const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
      const before = timers();
      for (let i = 0; i < 10; i++) expect(await a.call(i, { timeout: 1_000 })).toBe(i);
      expect(timers()).toBe(before);
      // One left unanswered by the run (a reply given later) gets its deadline then.
      let later: From<number> | undefined;
      const held = node.spawn({
        init: () => 0,
        handleCall: (_m: number, s: number, from: From<number>) => {
          later = from;
          return { noreply: true as const, state: s };
        },
      });
      const waiting = held.call(7, { timeout: 1_000 });
      await null;
      await null;
      expect(later).toBeDefined();
      expect(timers()).toBe(before + 1);
      later!.reply(7);
      expect(await waiting).toBe(7);
    }));

  it('a call that times out before its reply rejects with CallTimeoutError, and the late reply is dropped', () =>
    withNode(async (node) => {
      let later: From<string> | undefined;
      const a = node.spawn({
        init: () => 0,
        handleCall: (_m: 'hold', s: number, from: From<string>) => {
          later = from;
          return { noreply: true as const, state: s };
        },
      });
      await expect(a.call('hold', { timeout: 20 })).rejects.toBeInstanceOf(CallTimeoutError);
      later!.reply('too late');
    }));
});
