// Redialling: the backoff between failed dials grows (exponential, not a fixed interval),
// a learned peer that said goodbye is not redialled, a seed that said goodbye is. Dials are
// observed where they land: a raw TCP server records when each connection arrives.
import net from 'node:net';
import { expect, test } from 'vitest';
import { startNode } from '../src/node.js';
import { RECONNECT_BASE_MS, type Mesh } from '../src/mesh/mesh.js';

const OPTS = { cookie: 'mesh-redial-cookie', heartbeatInterval: 100, failureTimeout: 1500 };

/** A TCP server on `port` (0: any) that records each connection's arrival and closes it at once. */
async function dialRecorder(port = 0) {
  const arrivals: number[] = [];
  let onArrival = () => {};
  const server = net.createServer((s) => {
    arrivals.push(performance.now());
    s.destroy();
    onArrival();
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    arrivals,
    async count(n: number) {
      while (arrivals.length < n) await new Promise<void>((r) => (onArrival = r));
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test('the delay between failed dials of a seed grows: each one at least half of a doubling ceiling', async () => {
  const rec = await dialRecorder();
  try {
    await using node = await startNode({ ...OPTS, name: 'backoff-dialer', seeds: [rec.address] });
    await rec.count(6);
    const gaps = rec.arrivals.slice(1).map((t, i) => t - rec.arrivals[i]!);
    // Delay k is drawn in [c/2, c] with c = RECONNECT_BASE_MS·2^k (100, 200, 400, 800, 1600 ms);
    // a timer never fires early, so each gap is at least c/2 (1 ms of clock slack).
    gaps.forEach((gap, k) => expect(gap).toBeGreaterThanOrEqual((RECONNECT_BASE_MS * 2 ** k) / 2 - 1));
    // Not a fixed interval: the last gap is at least 800 ms, where a first one is at most about 100.
    expect(gaps[4]!).toBeGreaterThan(gaps[0]! * 2);
    expect((node.membership as Mesh).debugInfo().dials).toBeGreaterThanOrEqual(6);
  } finally {
    await rec.close();
  }
});

test('a learned peer that said goodbye is not redialled; a seed that said goodbye is', async () => {
  await using seed = await startNode({ ...OPTS, port: 0, name: 'bye-seed' });
  const leaver = await startNode({ ...OPTS, port: 0, name: 'bye-leaver', seeds: [seed.address!] });
  await using watcher = await startNode({ ...OPTS, port: 0, name: 'bye-watcher', seeds: [seed.address!] });
  await watcher.onNodeUp('bye-leaver'); // learned through the seed's MEMBERS, not a seed of the watcher
  const mesh = watcher.membership as Mesh;
  const leaverAddress = leaver.address!;

  const down = watcher.onNodeDown('bye-leaver');
  await leaver.close();
  expect(await down).toBe('closed');
  expect(mesh.debugInfo().targets).not.toContain(leaverAddress);
  // Listen where the leaver was: a redial would land here. Several backoff periods
  // (100, 200, 400 ms…) pass without one, from the watcher or from the seed.
  const atLeaver = await dialRecorder(Number(leaverAddress.split(':').pop()));
  try {
    const dialsBefore = mesh.debugInfo().dials;
    await new Promise((r) => setTimeout(r, 1500));
    expect(atLeaver.arrivals).toEqual([]);
    expect(mesh.debugInfo().dials).toBe(dialsBefore);
  } finally {
    await atLeaver.close();
  }

  // Control: the seed says goodbye too, and the watcher does redial it.
  const seedAddress = seed.address!;
  const seedDown = watcher.onNodeDown('bye-seed');
  await seed.close();
  expect(await seedDown).toBe('closed');
  const atSeed = await dialRecorder(Number(seedAddress.split(':').pop()));
  try {
    await atSeed.count(1);
    expect(mesh.debugInfo().targets).toContain(seedAddress);
  } finally {
    await atSeed.close();
  }
});
