// Misconfiguration is visible without writing code (refusals nobody listens to become process
// warnings, once per peer and reason), listeners given to startNode see the first dial, and
// node.ready() waits for peers. Real nodes over real sockets in this process.
import { afterEach, describe, expect, test } from 'vitest';
import { startNode, REFUSED_WARNING_CODE, type Node } from '../src/node.js';
import { InvalidOptionError, NotReadyError } from '../src/errors.js';
import type { Mesh, RefusedInfo } from '../src/mesh/mesh.js';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { encodeStrict } from '../src/mesh/codec.js';
import { PROTOCOL_VERSION, Tag } from '../src/mesh/protocol.js';

const open: Node[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((n) => n.close()));
});
const track = (n: Node): Node => (open.push(n), n);

/** Process warnings with our code emitted while `fn` runs (and until it resolves). */
async function withWarnings<T>(fn: (warnings: Error[]) => Promise<T>): Promise<T> {
  const warnings: Error[] = [];
  const on = (w: Error): void => {
    if ((w as Error & { code?: string }).code === REFUSED_WARNING_CODE) warnings.push(w);
  };
  process.on('warning', on);
  try {
    return await fn(warnings);
  } finally {
    process.off('warning', on);
  }
}

const until = async (cond: () => boolean, what: string): Promise<void> => {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('refusals nobody listens to are process warnings', () => {
  test('a wrong cookie: a warning on each side naming the address and the reason, once per peer and reason', async () => {
    await withWarnings(async (warnings) => {
      const a = track(await startNode({ name: 'warn-a', port: 0, cookie: 'right' }));
      const b = track(await startNode({ name: 'warn-b', port: 0, cookie: 'wrong', seeds: [a.address!] }));
      // The refusal happened inside startNode, before anyone could call b.on('refused').
      await until(() => warnings.length >= 2, 'a warning on each side');
      const ofA = warnings.filter((w) => w.message.includes('node warn-a refused'));
      const ofB = warnings.filter((w) => w.message.includes('refused node warn-b'));
      expect(ofA).toHaveLength(1);
      expect(ofB).toHaveLength(1);
      expect(ofA[0]!.message).toMatch(/reason: cookie/);
      expect(ofB[0]!.message).toMatch(/reason: cookie/);
      expect(ofB[0]!.message).toContain(a.address!);
      expect(ofA[0]!.name).toBe('ExpirableStoreWarning');
      // Dialled again and refused again: no second warning.
      await (b.membership as Mesh).connect(a.address!);
      await (b.membership as Mesh).connect(a.address!);
      expect(warnings).toHaveLength(2);
      expect(a.nodes()).toEqual([]);
    });
  });

  test('another protocol version: a warning naming the remote address and the reason', async () => {
    await withWarnings(async (warnings) => {
      const a = track(await startNode({ name: 'ver-a', port: 0, cookie: 'c' }));
      const i = a.address!.lastIndexOf(':');
      const socket = net.connect({ host: a.address!.slice(0, i), port: Number(a.address!.slice(i + 1)) });
      socket.on('error', () => {});
      await new Promise((r) => socket.once('connect', r));
      socket.write(encodeStrict([Tag.HELLO, PROTOCOL_VERSION + 1, 'future-node', 'inc', randomBytes(32), 1 << 20, null]));
      await until(() => warnings.length >= 1, 'a version warning');
      socket.destroy();
      expect(warnings[0]!.message).toMatch(/node ver-a refused 127\.0\.0\.1:\d+ \(reason: version\)/);
    });
  });

  test("a 'refused' listener given in startNode's options sees the first refusal, and no warning is emitted", async () => {
    await withWarnings(async (warnings) => {
      const a = track(await startNode({ name: 'quiet-a', port: 0, cookie: 'right', on: { refused: () => {} } }));
      const seen: RefusedInfo[] = [];
      const ups: string[] = [];
      track(await startNode({ name: 'quiet-b', port: 0, cookie: 'wrong', seeds: [a.address!], on: { refused: (i) => seen.push(i), nodeup: (n) => ups.push(n) } }));
      // Already seen when startNode resolved: the first dial has ended.
      expect(seen).toEqual([expect.objectContaining({ reason: 'cookie', by: 'remote', address: a.address, peer: 'quiet-a' })]);
      expect(ups).toEqual([]);
      expect(warnings).toEqual([]);
    });
  });

  test('nodeup listeners in the options see the peers connected during startNode', async () => {
    const a = track(await startNode({ name: 'early-a', port: 0, cookie: 'c' }));
    const ups: string[] = [];
    const b = track(await startNode({ name: 'early-b', port: 0, cookie: 'c', seeds: [a.address!], on: { nodeup: (n) => ups.push(n) } }));
    expect(b.nodes()).toEqual(['early-a']);
    expect(ups).toEqual(['early-a']);
  });
});

describe('node.ready()', () => {
  test('rejects with NotReadyError saying how many peers it had; resolves once enough are connected', async () => {
    const a = track(await startNode({ name: 'ready-a', port: 0, cookie: 'c' }));
    const err = await a.ready({ peers: 1, timeout: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotReadyError);
    expect((err as Error).message).toMatch(/0 of 1 peers/);
    const waiting = a.ready({ peers: 2, timeout: 20_000 });
    track(await startNode({ name: 'ready-b', port: 0, cookie: 'c', seeds: [a.address!] }));
    let settled = false;
    void waiting.finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(settled).toBe(false);
    track(await startNode({ name: 'ready-c', port: 0, cookie: 'c', seeds: [a.address!] }));
    await waiting;
    await a.ready({ peers: 2 });
  });

  test('bad options are InvalidOptionError naming them', async () => {
    const a = track(await startNode({ name: 'ready-bad' }));
    await expect(a.ready({ peers: -1 })).rejects.toMatchObject({ option: 'peers' });
    await expect(a.ready({ peers: 1, timeout: 0 })).rejects.toBeInstanceOf(InvalidOptionError);
    await a.ready();
  });
});
