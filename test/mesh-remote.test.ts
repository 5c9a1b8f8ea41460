// Remote actors across real processes: call, cast, stop, monitors, refs inside messages, errors.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ActorDownError, SerializationError } from '../src/errors.js';
import { startCluster, type Cluster, type Peer } from './helpers/peers.js';
import { FIXTURES } from './helpers/fixtures.js';

type Ref = { node: string; id: string };
const OPTS = { cookie: 'mesh-remote-cookie', heartbeatInterval: 100, failureTimeout: 1500 };

let c: Cluster;
let a: Peer;
let b: Peer;
let d: Peer;
beforeAll(async () => {
  c = await startCluster(3, OPTS);
  [a, b, d] = c.peers as [Peer, Peer, Peer];
});
afterAll(async () => {
  await c?.[Symbol.asyncDispose]();
});

describe('remote actors', () => {
  test('call and cast reach an actor on another process, in order', async () => {
    const counter = await b.run<Ref>(FIXTURES, 'spawnCounter');
    expect(await a.run(FIXTURES, 'call', counter, { add: 2 })).toBe(2);
    await a.run(FIXTURES, 'cast', counter, { add: 5 });
    // Same link, FIFO: the cast is handled before the call that follows it.
    expect(await a.run(FIXTURES, 'call', counter, 'get')).toBe(7);
    expect(await a.run(FIXTURES, 'call', counter, { echo: { nested: [1, 'two', null], bin: new Uint8Array([1, 2]) } })).toEqual({
      nested: [1, 'two', null],
      bin: new Uint8Array([1, 2]), // its own type, not a Buffer
    });
  });

  test('a well-known name is callable from a peer by node name alone', async () => {
    await b.run<Ref>(FIXTURES, 'spawnCounter', 'registered-counter');
    expect(await a.run(FIXTURES, 'call', { node: b.name, id: 'registered-counter' }, { add: 3 })).toBe(3);
  });

  test('an ActorRef travels inside a message and is callable where it lands', async () => {
    const target = await d.run<Ref>(FIXTURES, 'spawnCounter');
    const forwarder = await b.run<Ref>(FIXTURES, 'spawnForwarder');
    // a -> b (with a ref to d's actor inside) -> d
    expect(await a.run(FIXTURES, 'callThrough', forwarder, target, { add: 4 })).toEqual({ reply: 4, isRef: true });
  });

  test('a call to an unknown actor on a live node rejects with ActorDownError', async () => {
    await expect(a.run(FIXTURES, 'call', { node: b.name, id: 'no-such-actor' }, 'get')).rejects.toBeInstanceOf(ActorDownError);
  });

  test('a handler that throws: the caller gets the error, the next caller ActorDownError', async () => {
    const counter = await b.run<Ref>(FIXTURES, 'spawnCounter');
    await expect(a.run(FIXTURES, 'call', counter, 'crash')).rejects.toThrow('asked to crash');
    await expect(a.run(FIXTURES, 'call', counter, 'get')).rejects.toBeInstanceOf(ActorDownError);
  });

  test('a function in a message fails the call with SerializationError, the link stays up', async () => {
    const counter = await b.run<Ref>(FIXTURES, 'spawnCounter');
    await expect(a.run(FIXTURES, 'callWithFunction', counter)).rejects.toBeInstanceOf(SerializationError);
    expect(await a.run(FIXTURES, 'call', counter, { add: 1 })).toBe(1);
    expect(await a.nodes()).toContain(b.name);
  });

  test('a reply that cannot be encoded fails the remote call with SerializationError', async () => {
    const counter = await b.run<Ref>(FIXTURES, 'spawnCounter');
    await expect(a.run(FIXTURES, 'call', counter, 'fn')).rejects.toBeInstanceOf(SerializationError);
    expect(await a.run(FIXTURES, 'call', counter, { add: 1 })).toBe(1);
  });

  test('monitors of remote actors fire on stop and on crash', async () => {
    const one = await b.run<Ref>(FIXTURES, 'spawnCounter');
    const two = await b.run<Ref>(FIXTURES, 'spawnCounter');
    await a.run(FIXTURES, 'monitor', one, 'stopped-one');
    await a.run(FIXTURES, 'monitor', two, 'crashed-two');
    await a.run(FIXTURES, 'stop', one); // remote stop
    expect(await a.waitEvent('down', (tag) => tag === 'stopped-one')).toEqual(['stopped-one', 'normal']);
    await expect(d.run(FIXTURES, 'call', two, 'crash')).rejects.toThrow('asked to crash');
    const [, reason] = await a.waitEvent('down', (tag) => tag === 'crashed-two');
    expect(reason).toMatchObject({ crashed: { message: 'asked to crash' } });
  });

  test('a cancelled remote monitor stays silent', async () => {
    const one = await b.run<Ref>(FIXTURES, 'spawnCounter');
    await a.run(FIXTURES, 'monitorAndCancel', one, 'cancelled');
    await a.run(FIXTURES, 'monitor', one, 'kept');
    await a.run(FIXTURES, 'stop', one);
    // Both monitors were set on the same link in order; the kept one fires, the other never.
    await a.waitEvent('down', (tag) => tag === 'kept');
    expect(a.events.some((e) => e.type === 'down' && e.args[0] === 'cancelled')).toBe(false);
  });

  test('a monitor of an actor that is already gone fires noproc', async () => {
    await a.run(FIXTURES, 'monitor', { node: b.name, id: 'never-was' }, 'gone');
    expect(await a.waitEvent('down', (tag) => tag === 'gone')).toEqual(['gone', 'noproc']);
  });
});
