// The peer-process helper itself: requests, typed errors back, events, kill.
import { test, expect } from 'vitest';
import { ActorDownError } from '../src/errors.js';
import { spawnPeer } from './helpers/peers.js';
import { FIXTURES } from './helpers/fixtures.js';

test('a peer runs fixture functions and returns values and typed errors', async () => {
  await using a = await spawnPeer();
  await a.start({ name: 'helper-a' });
  const ref = await a.run<{ node: string; id: string }>(FIXTURES, 'spawnCounter');
  expect(await a.run(FIXTURES, 'call', ref, { add: 2 })).toBe(2);
  await expect(a.run(FIXTURES, 'call', { node: 'helper-a', id: 'nope' }, 'get')).rejects.toBeInstanceOf(ActorDownError);
  expect(await a.nodes()).toEqual([]);
});

test('kill ends the process and fails its pending requests', async () => {
  await using a = await spawnPeer();
  await a.start({ name: 'helper-b' });
  const ref = await a.run<{ node: string; id: string }>(FIXTURES, 'spawnCounter');
  const pending = a.run(FIXTURES, 'call', ref, { sleep: 10_000 });
  a.kill();
  await expect(pending).rejects.toThrow(/exited/);
  expect((await a.exited()).signal).toBe('SIGKILL');
});
