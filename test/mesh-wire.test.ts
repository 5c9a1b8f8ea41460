// What crosses the wire and what happens when a message cannot: value fidelity, messages
// that fail alone (undecodable or too large) while the link and other calls go on, and
// malformed replies from a raw authenticated peer. Real TCP between in-process nodes.
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, test } from 'vitest';
import { CallTimeoutError, SerializationError } from '../src/errors.js';
import { startNode, type Node } from '../src/node.js';
import { encode } from '../src/mesh/codec.js';
import { FRAME_HEADER_SIZE, writeFrameHeader } from '../src/mesh/framing.js';
import { Tag } from '../src/mesh/protocol.js';
import type { Transport } from '../src/mesh/transport.js';
import { rawPeer as connectRawPeer } from './helpers/raw-peer.js';

const OPTS = { cookie: 'mesh-wire-cookie', heartbeatInterval: 100, failureTimeout: 2000 };

type Limits = { a?: { maxFrameSize?: number }; b?: { maxFrameSize?: number } };
async function pair(prefix: string, limits: Limits = {}) {
  const b = await startNode({ ...OPTS, ...limits.b, port: 0, name: `${prefix}-b` });
  const a = await startNode({ ...OPTS, ...limits.a, port: 0, name: `${prefix}-a`, seeds: [b.address!] });
  const downs: string[] = [];
  a.on('nodedown', (n, why) => downs.push(`${n}:${why}`));
  const echo = b.spawn(
    {
      init: () => 0,
      handleCall: (msg: unknown, s: number) => ({ reply: typeof msg === 'object' && msg && 'bytes' in msg ? 'x'.repeat((msg as { bytes: number }).bytes) : msg, state: s }),
    },
    { name: 'echo' },
  );
  return { a, b, downs, echo: a.ref({ node: echo.node, id: echo.id }), [Symbol.asyncDispose]: async () => void (await Promise.all([a.close(), b.close()])) };
}

const rawPeer = (node: Node, name: string, onMsg: (t: Transport, m: unknown[]) => void) => connectRawPeer(node, name, OPTS.cookie, onMsg);

/** A frame [tag, id, <string>, <an ActorRef extension whose data is not [node, id]>]: encodes fine, never decodes. */
function undecodableFrame(tag: number, id: number, str: string): Uint8Array {
  const head = encode([tag, id, str, null]).subarray(FRAME_HEADER_SIZE);
  const body = new Uint8Array(head.length + 2);
  body.set(head.subarray(0, head.length - 1)); // drop the trailing nil
  body[0] = head[0]!;
  body.set([0xd4, 0x41, 0x05], head.length - 1); // fixext1, type REF_EXT, data: the number 5
  const buf = new Uint8Array(FRAME_HEADER_SIZE + body.length);
  buf.set(body, FRAME_HEADER_SIZE);
  writeFrameHeader(buf, body.length);
  return buf;
}

describe('value fidelity', () => {
  // Regression: a Map with object keys encoded but did not decode, and the failure closed the link.
  test('a Map with object keys arrives as a Map; concurrent calls and the link are unaffected', async () => {
    await using p = await pair('mapkey');
    const innocent = p.echo.call('innocent');
    const back = await p.echo.call(new Map<unknown, number>([[{ k: 1 }, 1], [[1, 2], 2]]));
    expect(back).toBeInstanceOf(Map);
    expect([...(back as Map<unknown, number>)]).toEqual([[{ k: 1 }, 1], [[1, 2], 2]]);
    expect(await innocent).toBe('innocent');
    expect(p.downs).toEqual([]);
    expect(p.a.nodes()).toEqual([p.b.name]);
  });

  test('a value arrives as it left: Map, Set, Date, BigInt of any size, typed arrays, ArrayBuffer, -0, NaN, undefined', async () => {
    await using p = await pair('types');
    const sent = {
      m: new Map<unknown, unknown>([['s', 1], [2, 'two']]),
      set: new Set([1, 'x', { o: 1 }]),
      d: new Date(5),
      bad: new Date(Number.NaN),
      big: 2n ** 63n,
      huge: -(2n ** 300n) + 1n,
      small: 1n,
      u: undefined,
      list: [undefined, null, -0, Number.NaN, -Infinity],
      bin: new Uint8Array([1, 2]),
      buf: Buffer.from([3]),
      f32: new Float32Array([1.5, -0]),
      u64: new BigUint64Array([2n ** 64n - 1n]),
      ab: new Uint8Array([9, 8, 7]).buffer,
      dv: new DataView(new Uint8Array([4, 5]).buffer),
      inner: [new Map([[{ deep: true }, new Map([['x', new Set([new Map()])]])]])],
    };
    const back = (await p.echo.call(sent)) as typeof sent;
    expect(isDeepStrictEqual({ ...back, bad: undefined }, { ...sent, bad: undefined })).toBe(true);
    expect(back.bad).toBeInstanceOf(Date);
    expect(back.bad.getTime()).toBeNaN();
    // The checks isDeepStrictEqual leaves to the prototype: each type is its own.
    expect(Object.is(back.list[2], -0)).toBe(true);
    expect(back.bin.constructor).toBe(Uint8Array);
    expect(Buffer.isBuffer(back.buf)).toBe(true);
    expect(back.m).toBeInstanceOf(Map);
    expect(back.set).toBeInstanceOf(Set);
    expect(await p.echo.call(-0)).toBe(-0);
  });

  test('a function inside a message fails the call with SerializationError naming where; nothing is sent', async () => {
    await using p = await pair('refuse');
    const got: unknown[] = [];
    const recorder = p.b.spawn({ init: () => 0, handleCall: (m: unknown, s: number) => (got.push(m), { reply: 'ok', state: s }), handleCast: (m: unknown, s: number) => (got.push(m), s) });
    const ref = p.a.ref({ node: recorder.node, id: recorder.id });
    const err = await ref.call({ user: { name: 'x', save() {} } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SerializationError);
    expect((err as Error).message).toMatch(new RegExp(`^a call to ${recorder.id}@refuse-b cannot be sent: message\\.user\\.save is a function$`));
    class User {}
    expect(() => ref.cast([1, { u: new User() }])).toThrow(/^a cast to .* cannot be sent: message\[1\]\.u is an instance of User/);
    expect(() => ref.cast(new Map([['k', Symbol('s')]]))).toThrow(/message\.get\("k"\) is a symbol/);
    expect(await ref.call('after')).toBe('ok');
    expect(got).toEqual(['after']); // the refused messages never reached the actor
    expect(p.downs).toEqual([]);
  });

  test('a reply that would not arrive as it left reaches the caller as SerializationError naming where', async () => {
    await using p = await pair('refuse-reply');
    class Token {
      constructor(readonly value: string) {}
    }
    const server = p.b.spawn({ init: () => 0, handleCall: (_m: unknown, s: number) => ({ reply: { token: new Token('t') }, state: s }) });
    const err = await p.a.ref({ node: server.node, id: server.id }).call('get').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SerializationError);
    expect((err as Error).message).toMatch(/^the reply of .*@refuse-reply-b cannot be sent: reply\.token is an instance of Token/);
    expect(await p.echo.call('after')).toBe('after');
  });
});

describe('casts of the runtime\'s own services', () => {
  test('castPlain sends its message as built, without the walk of values; the encoder still refuses a function', async () => {
    await using p = await pair('plain');
    const got: unknown[] = [];
    let wake = () => {};
    const sink = p.b.spawn({ init: () => 0, handleCast: (m: unknown, s: number) => (got.push(m), wake(), s) });
    const ref = { node: sink.node, id: sink.id };
    const arrived = new Promise<void>((r) => (wake = r));
    // Not walked: a Map goes out as a msgpack map, which reads as a plain object (a walked
    // cast brings it back as a Map, see above). Runtime messages never hold one.
    p.a.system.castPlain(ref, ['lock', 1, new Map([['k', 1]])]);
    await arrived;
    expect(got).toEqual([['lock', 1, { k: 1 }]]);
    expect(() => p.a.system.castPlain(ref, ['lock', () => 1])).toThrow(SerializationError);
    expect(p.downs).toEqual([]);
  });
});

describe('a message that does not decode fails alone', () => {
  // Regression: an undecodable CALL payload closed the whole link ('bad_payload').
  test('an undecodable CALL is answered with a SerializationError; the link stays up', async () => {
    await using node = await startNode({ ...OPTS, port: 0, name: 'undecodable-call' });
    node.spawn({ init: () => 0, handleCall: (m: unknown, s: number) => ({ reply: m, state: s }) }, { name: 'echo' });
    const replies: unknown[][] = [];
    let wake = () => {};
    const t = await rawPeer(node, 'raw-caller', (_t, m) => {
      if (m[0] === Tag.REPLY || m[0] === Tag.REPLY_ERROR) replies.push(m);
      wake();
    });
    const next = async () => {
      while (replies.length === 0) await new Promise<void>((r) => (wake = r));
      return replies.shift()!;
    };
    t.send(undecodableFrame(Tag.CALL, 7, 'echo'));
    const [tag, id, err] = await next();
    expect([tag, id]).toEqual([Tag.REPLY_ERROR, 7]);
    expect(err).toMatchObject({ name: 'SerializationError', message: expect.stringMatching(/cannot be decoded/) });
    t.send(encode([Tag.CALL, 8, 'echo', 'still here']));
    expect(await next()).toEqual([Tag.REPLY, 8, 'still here']);
    expect(node.nodes()).toEqual(['raw-caller']);
    t.destroy('done');
  });

  test('an undecodable REPLY fails that call with SerializationError; other calls and the link go on', async () => {
    await using node = await startNode({ ...OPTS, port: 0, name: 'undecodable-reply' });
    const downs: string[] = [];
    node.on('nodedown', (n, why) => downs.push(`${n}:${why}`));
    await rawPeer(node, 'raw-server', (t, m) => {
      if (m[0] !== Tag.CALL) return;
      if (m[3] === 'bad') t.send(undecodableFrame(Tag.REPLY, m[1] as number, 'x'));
      else t.send(encode([Tag.REPLY, m[1], `re:${String(m[3])}`]));
    });
    const ref = node.ref({ node: 'raw-server', id: 'any' });
    const [bad, good] = await Promise.allSettled([ref.call('bad', { timeout: 5000 }), ref.call('good', { timeout: 5000 })]);
    expect(bad).toMatchObject({ status: 'rejected', reason: expect.any(SerializationError) });
    expect((bad as PromiseRejectedResult).reason.message).toMatch(/reply from raw-server cannot be decoded/);
    expect(good).toEqual({ status: 'fulfilled', value: 're:good' });
    expect(downs).toEqual([]);
  });
});

describe('frames larger than the peer accepts are never sent', () => {
  // Regression: an oversize call was sent anyway and the receiver dropped the link, failing unrelated calls.
  test('a call larger than the peer\'s maxFrameSize fails with SerializationError; nothing is sent, the link stays', async () => {
    // a accepts 16 MiB but b only 64 KiB: a must check against b's limit, told in the handshake.
    await using p = await pair('bigcall', { b: { maxFrameSize: 64 * 1024 } });
    const innocent = p.echo.call('innocent');
    const err = await p.echo.call('y'.repeat(100 * 1024)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SerializationError);
    expect((err as Error).message).toMatch(/maximum frame size of 65536 bytes of node bigcall-b/);
    expect(() => p.echo.cast('y'.repeat(100 * 1024))).toThrow(SerializationError);
    expect(await innocent).toBe('innocent');
    expect(await p.echo.call('y'.repeat(60 * 1024))).toHaveLength(60 * 1024);
    expect(p.downs).toEqual([]);
    expect(p.a.nodes()).toEqual([p.b.name]);
  });

  // Regression: an oversize reply was sent anyway and the caller dropped the link.
  test('a reply larger than the caller\'s maxFrameSize reaches it as SerializationError; the link stays', async () => {
    await using p = await pair('bigreply', { a: { maxFrameSize: 64 * 1024 } });
    const innocent = p.echo.call('innocent');
    const err = await p.echo.call({ bytes: 100 * 1024 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SerializationError);
    expect((err as Error).message).toMatch(/reply of echo@bigreply-b is \d+ bytes encoded, more than the maximum frame size of 65536 bytes/);
    expect(await innocent).toBe('innocent');
    expect(await p.echo.call({ bytes: 1000 })).toHaveLength(1000);
    expect(p.downs).toEqual([]);
  });
});

describe('oversize error replies', () => {
  // Regression: an error reply larger than the caller's maxFrameSize was sent anyway and closed the link.
  test('an error too large for the caller arrives as the start of its message; the link stays', async () => {
    await using p = await pair('bigerror', { a: { maxFrameSize: 64 * 1024 } });
    const thrower = p.b.spawn({
      init: () => 0,
      handleCall: (n: number): never => {
        throw new TypeError('z'.repeat(n));
      },
    });
    const err = await p.a
      .ref({ node: thrower.node, id: thrower.id })
      .call(100 * 1024)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^z{1024}$/);
    expect(await p.echo.call('after')).toBe('after');
    expect(p.downs).toEqual([]);
  });
});

describe('monitors and malformed messages', () => {
  // Regression: a malformed DOWN removed the monitor before parsing failed, so it never fired.
  test('a malformed DOWN closes the link and the monitor fires noconnection', async () => {
    await using node = await startNode({ ...OPTS, port: 0, name: 'down-watcher' });
    await rawPeer(node, 'raw-down', (t, m) => {
      if (m[0] === Tag.MONITOR) t.send(encode([Tag.DOWN, m[1], 12345]));
    });
    const fired = new Promise<unknown>((resolve) => node.monitor({ node: 'raw-down', id: 'x' }, resolve));
    expect(await node.onNodeDown('raw-down')).toBe('bad_message');
    expect(await fired).toBe('noconnection');
  });
});

describe('remote call timeouts', () => {
  test('a remote call past its timeout rejects with CallTimeoutError; its late reply is dropped and the next call gets its own', async () => {
    await using b = await startNode({ ...OPTS, port: 0, name: 'timeout-b' });
    await using a = await startNode({ ...OPTS, port: 0, name: 'timeout-a', seeds: [b.address!] });
    let lateReplySent!: () => void;
    const lateSent = new Promise<void>((r) => (lateReplySent = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    b.spawn(
      {
        init: () => 0,
        handleCall: async (msg: string, s: number) => {
          if (msg !== 'slow') return { reply: `own:${msg}`, state: s };
          await released;
          queueMicrotask(lateReplySent);
          return { reply: 'late', state: s };
        },
      },
      { name: 'slow' },
    );
    const ref = a.ref({ node: 'timeout-b', id: 'slow' });
    const started = Date.now();
    const err = await ref.call('slow', { timeout: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CallTimeoutError);
    expect(err).toMatchObject({ timeout: 200, ref: { node: 'timeout-b', id: 'slow' } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    // The next call queues behind the slow one on b: the late reply crosses the same link first.
    const next = ref.call('next', { timeout: 10_000 });
    release();
    await lateSent;
    expect(await next).toBe('own:next');
    expect(a.nodes()).toEqual(['timeout-b']);
  });
});
