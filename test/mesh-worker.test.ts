// Worker-thread nodes (node.startWorker): real threads linked over a MessagePort, and over
// real TCP to the other processes of the cluster.
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { InvalidOptionError, NodeDownError } from '../src/errors.js';
import { startNode, type Node } from '../src/node.js';
import type { WorkerNode } from '../src/mesh/worker.js';
import { spawnPeer, type Peer } from './helpers/peers.js';
import { FIXTURES } from './helpers/fixtures.js';
import { WORKER_NODE_SCRIPT, WORKER_PEER } from './fixtures/worker-peer.js';

type Ref = { node: string; id: string };
const SCRIPT = new URL(WORKER_NODE_SCRIPT);
const TIMING = { heartbeatInterval: 100, failureTimeout: 1500 };
/** How long `expect.poll` waits for the workers' links and groups, and how often it looks. */
const WAIT = { timeout: 10_000, interval: 10 };
const uid = (): string => Math.random().toString(36).slice(2, 8);
const counterOf = (w: { name: string }): Ref => ({ node: w.name, id: 'counter' });

/** Nodes and workers made by a test, closed after it whatever happens. */
const cleanup: (Node | WorkerNode)[] = [];
afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((x) => x.close()));
});
async function node(options: Parameters<typeof startNode>[0] = {}): Promise<Node> {
  const n = await startNode({ name: `main-${uid()}`, ...TIMING, ...options });
  cleanup.push(n);
  return n;
}

describe('worker-thread nodes of a standalone node (a cluster of two in one process)', () => {
  test('startWorker resolves once the worker is up; calls go both ways over the port', async () => {
    const main = await node();
    const name = `w-${uid()}`;
    const w = await main.startWorker(SCRIPT, { name });
    expect(w.name).toBe(name);
    expect(main.nodes()).toEqual([name]);
    expect(await main.ref(counterOf(w)).call({ add: 2 })).toBe(2);
    const here = main.spawn({ init: () => 10, handleCall: (m: number, s: number) => ({ reply: s + m, state: s }) });
    expect(await main.ref({ node: name, id: 'relay' }).call({ call: here, msg: 5 })).toEqual({ from: name, answer: 15 });
    // Large values cross the port intact (frames are copied once and transferred).
    const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
    const echo = main.spawn({ init: () => null, handleCall: (m: Uint8Array, s: null) => ({ reply: m.length, state: s }) });
    expect(await main.ref({ node: name, id: 'relay' }).call({ call: echo, msg: big })).toEqual({ from: name, answer: big.length });
  });

  test("the workers of a standalone node are in its view of the cluster: nodes(), events, process groups", async () => {
    const main = await node();
    const ups: string[] = [];
    main.on('nodeup', (n) => ups.push(n));
    const [w1, w2] = await Promise.all([main.startWorker(SCRIPT), main.startWorker(SCRIPT)]);
    cleanup.push(w1, w2);
    expect(ups.sort()).toEqual([w1.name, w2.name].sort());
    expect(main.nodes().sort()).toEqual([w1.name, w2.name].sort());
    // Each worker's counter joined a group there; this node sees both members.
    const members = (): string[] => main.pg.getMembers('worker-counters').map((r) => r.node).sort();
    await expect.poll(() => members().length, WAIT).toBe(2);
    expect(members()).toEqual([w1.name, w2.name].sort());
    // The workers are linked to each other too, over ports the parent handed out (none of
    // them listens: there is no other way).
    await expect.poll(() => main.ref({ node: w1.name, id: 'info' }).call('nodes') as Promise<string[]>, WAIT).toContain(w2.name);
    expect(await main.ref({ node: w2.name, id: 'info' }).call('nodes')).toEqual([main.name, w1.name].sort());
    expect(await main.ref({ node: w1.name, id: 'relay' }).call({ call: counterOf(w2), msg: { add: 9 } })).toEqual({ from: w1.name, answer: 9 });
    await w2.terminate();
    await expect.poll(() => members().length, WAIT).toBe(1);
    expect(members()).toEqual([w1.name]);
  });

  test('a plain JavaScript worker script (given as an absolute path) is started as is', async () => {
    const main = await node();
    const w = await main.startWorker(fileURLToPath(new URL('./fixtures/worker-plain.mjs', import.meta.url)));
    cleanup.push(w);
    expect(await main.ref({ node: w.name, id: 'who' }).call('?')).toBe('plain-js');
  });

  test('the default name is derived from the parent; names in use are refused', async () => {
    const main = await node();
    const w = await main.startWorker(SCRIPT);
    cleanup.push(w);
    expect(w.name).toBe(`${main.name}.w1`);
    await expect(main.startWorker(SCRIPT, { name: w.name })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(main.startWorker(SCRIPT, { name: main.name })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(main.startWorker(SCRIPT, { name: 'bad name!' })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(main.startWorker('relative/worker.js')).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(main.startWorker(SCRIPT, { startTimeout: -1 })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(main.startWorker(SCRIPT, { closeTimeout: 'soon' as never })).rejects.toBeInstanceOf(InvalidOptionError);
    expect(main.nodes()).toEqual([w.name]);
  });

  test('terminate(): nodedown "worker_exited", and a pending call to the worker fails with NodeDownError at once', async () => {
    const main = await node({ callTimeout: 30_000 });
    const w = await main.startWorker(SCRIPT, { name: `w-${uid()}` });
    const pending = expect(main.ref(counterOf(w)).call({ sleep: 20_000 })).rejects.toBeInstanceOf(NodeDownError);
    const down = main.onNodeDown(w.name);
    const t0 = Date.now();
    await w.terminate();
    // Seen before terminate() resolves.
    expect(main.nodes()).toEqual([]);
    expect(await down).toBe('worker_exited');
    await pending;
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(w.hasExited).toBe(true);
    expect(main.nodes()).toEqual([]);
    await expect(main.ref(counterOf(w)).call('get')).rejects.toBeInstanceOf(NodeDownError);
  });

  test("close(): the worker's node closes first (nodedown \"closed\", its actors stop), then the thread ends", async () => {
    const main = await node({ callTimeout: 30_000 });
    const w = await main.startWorker(SCRIPT, { name: `w-${uid()}` });
    const down = main.onNodeDown(w.name);
    const stopped = new Promise((resolve) => main.monitor(counterOf(w), resolve));
    await w.close();
    expect(await down).toBe('closed');
    // A remote actor of a node that closed cleanly is reported stopped, not 'noconnection'.
    expect(await stopped).toBe('shutdown');
    expect(w.hasExited).toBe(true);
  });

  test('a worker that crashes (uncaught exception) is nodedown "worker_exited"; its pending calls fail', async () => {
    const main = await node({ callTimeout: 30_000 });
    const w = await main.startWorker(SCRIPT, { name: `w-${uid()}` });
    cleanup.push(w);
    const pending = expect(main.ref(counterOf(w)).call({ sleep: 20_000 })).rejects.toBeInstanceOf(NodeDownError);
    const down = main.onNodeDown(w.name);
    await main.ref({ node: w.name, id: 'fault' }).call('throw');
    expect(await down).toBe('worker_exited');
    await pending;
    expect(await w.exited).toBe(1);
  });

  test('a worker that exits (process.exit in the thread) is nodedown "worker_exited"', async () => {
    const main = await node();
    const w = await main.startWorker(SCRIPT, { name: `w-${uid()}` });
    cleanup.push(w);
    const down = main.onNodeDown(w.name);
    await main.ref({ node: w.name, id: 'fault' }).call({ exit: 3 });
    expect(await down).toBe('worker_exited');
    expect(await w.exited).toBe(3);
    expect(main.nodes()).toEqual([]);
  });

  test('a worker whose thread is stuck is nodedown "heartbeat_timeout" after failureTimeout', async () => {
    const main = await node();
    const w = await main.startWorker(SCRIPT, { name: `w-${uid()}` });
    cleanup.push(w);
    const down = main.onNodeDown(w.name);
    const t0 = Date.now();
    await main.ref({ node: w.name, id: 'fault' }).call({ block: 4_000 });
    expect(await down).toBe('heartbeat_timeout');
    // failureTimeout is 1500 ms; the check runs every heartbeatInterval.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_400);
    expect(w.hasExited).toBe(false);
    await w.terminate(); // stops even a thread in a busy loop
    expect(w.hasExited).toBe(true);
  });

  test('startWorker rejects when the script throws or ends before joining, or never calls startNode', async () => {
    const main = await node();
    await expect(main.startWorker(SCRIPT, { workerData: { throwAtStart: true } })).rejects.toThrow(/worker script failed at start/);
    await expect(main.startWorker(SCRIPT, { workerData: { skipStart: 'exit' } })).rejects.toThrow(/exited with code 0 before joining/);
    const t0 = Date.now();
    await expect(main.startWorker(SCRIPT, { workerData: { skipStart: 'hang' }, startTimeout: 1000 })).rejects.toThrow(/did not join within 1000 ms/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(main.nodes()).toEqual([]);
    // The node is fine: a good worker still starts.
    const w = await main.startWorker(SCRIPT);
    cleanup.push(w);
    expect(main.nodes()).toEqual([w.name]);
  });

  test('closing the parent node terminates its workers first (each says goodbye)', async () => {
    const main = await startNode({ name: `main-${uid()}`, ...TIMING });
    const w1 = await main.startWorker(SCRIPT);
    const w2 = await main.startWorker(SCRIPT);
    const downs: [string, string][] = [];
    main.on('nodedown', (n, r) => downs.push([n, r]));
    await main.close();
    expect(w1.hasExited && w2.hasExited).toBe(true);
    expect(downs.sort()).toEqual([[w1.name, 'closed'], [w2.name, 'closed']].sort());
    await expect(main.startWorker(SCRIPT)).rejects.toThrow(/closing/);
  });
});

describe('worker-thread nodes in a cluster of processes', () => {
  const COOKIE = 'mesh-worker-cookie';
  let main: Node;
  let b: Peer;
  beforeAll(async () => {
    main = await startNode({ name: `main-${uid()}`, port: 0, cookie: COOKIE, ...TIMING, callTimeout: 30_000 });
    b = await spawnPeer();
    await b.start({ name: `b-${uid()}`, port: 0, seeds: [main.address!], cookie: COOKIE, ...TIMING, callTimeout: 30_000 });
    await main.onNodeUp(b.name);
  });
  afterAll(async () => {
    await b?.[Symbol.asyncDispose]();
    await main?.close();
  });

  test("a worker joins the whole mesh: another process calls the worker's actor, the worker calls it and the main thread back", async () => {
    const w = await main.startWorker(SCRIPT, { name: `w-${uid()}` });
    cleanup.push(w);
    // The worker listens and the parent gossips its address: b links to it directly.
    await b.waitNodes([main.name, w.name]);
    expect(await b.run(FIXTURES, 'call', counterOf(w), { add: 7 })).toBe(7);
    const onB = await b.run<Ref>(FIXTURES, 'spawnCounter');
    expect(await main.ref({ node: w.name, id: 'relay' }).call({ call: onB, msg: { add: 5 } })).toEqual({ from: w.name, answer: 5 });
    const onMain = main.spawn({ init: () => 'main-state', handleCall: (_m: unknown, s: string) => ({ reply: s, state: s }) });
    // b -> worker (TCP) -> main thread (port) and back.
    expect(await b.run(FIXTURES, 'call', { node: w.name, id: 'relay' }, { call: onMain, msg: 'get' })).toEqual({ from: w.name, answer: 'main-state' });
  });

  test('two workers of a listening node: each linked once to every node (the sibling over a port or TCP)', async () => {
    const [w1, w2] = await Promise.all([main.startWorker(SCRIPT), main.startWorker(SCRIPT)]);
    cleanup.push(w1, w2);
    await b.waitNodes([main.name, w1.name, w2.name]);
    const all = [main.name, b.name, w1.name, w2.name].sort();
    for (const w of [w1, w2]) {
      await expect.poll(() => main.ref({ node: w.name, id: 'info' }).call('nodes') as Promise<string[]>, WAIT).toHaveLength(3);
      expect(await main.ref({ node: w.name, id: 'info' }).call('nodes')).toEqual(all.filter((n) => n !== w.name));
    }
    expect(await main.ref({ node: w1.name, id: 'relay' }).call({ call: counterOf(w2), msg: { add: 2 } })).toEqual({ from: w1.name, answer: 2 });
  });

  test('a worker crash is nodedown on every node; the other process’s pending call fails with NodeDownError fast', async () => {
    const w = await main.startWorker(SCRIPT, { name: `w-${uid()}` });
    cleanup.push(w);
    await b.waitNodes([main.name, w.name]);
    const tag = `crash-${uid()}`;
    await b.run(FIXTURES, 'callInBackground', counterOf(w), { sleep: 20_000 }, tag, 30_000);
    const downHere = main.onNodeDown(w.name);
    await main.ref({ node: w.name, id: 'fault' }).call('throw');
    expect(await downHere).toBe('worker_exited');
    const [, outcome] = (await b.waitEvent('settled', (t) => t === tag)) as [string, { ok: boolean; name: string; ms: number }];
    expect(outcome.ok).toBe(false);
    expect(outcome.name).toBe('NodeDownError');
    expect(outcome.ms).toBeLessThan(5_000);
    await b.waitEvent('nodedown', (n) => n === w.name);
    await b.waitNodes([main.name]);
  });

  test('terminate() is nodedown on the other process at once, close() is "closed" there', async () => {
    const w1 = await main.startWorker(SCRIPT, { name: `w-${uid()}` });
    const w2 = await main.startWorker(SCRIPT, { name: `w-${uid()}` });
    await b.waitNodes([main.name, w1.name, w2.name]);
    const tag = `term-${uid()}`;
    await b.run(FIXTURES, 'callInBackground', counterOf(w1), { sleep: 20_000 }, tag, 30_000);
    await w1.terminate();
    const [, reason1] = await b.waitEvent('nodedown', (n) => n === w1.name);
    expect(['connection_closed', 'ECONNRESET']).toContain(reason1);
    const [, outcome] = (await b.waitEvent('settled', (t) => t === tag)) as [string, { ok: boolean; name: string; ms: number }];
    expect([outcome.ok, outcome.name]).toEqual([false, 'NodeDownError']);
    expect(outcome.ms).toBeLessThan(5_000);
    await w2.close();
    const [, reason2] = await b.waitEvent('nodedown', (n) => n === w2.name);
    expect(reason2).toBe('closed');
    expect(main.nodes()).toEqual([b.name]);
  });

  test('a worker of another process (started under tsx) is callable from here, and calls back', async () => {
    const name = await b.run<string>(WORKER_PEER, 'startWorker', WORKER_NODE_SCRIPT, { name: `bw-${uid()}` });
    await main.onNodeUp(name);
    expect(await main.ref({ node: name, id: 'counter' }).call({ add: 4 })).toBe(4);
    const onMain = main.spawn({ init: () => 1, handleCall: (m: number, s: number) => ({ reply: m * 100, state: s }) });
    expect(await main.ref({ node: name, id: 'relay' }).call({ call: onMain, msg: 3 })).toEqual({ from: name, answer: 300 });
    const down = main.onNodeDown(name);
    await b.run(WORKER_PEER, 'closeWorker', name);
    expect(await down).toBe('closed');
  });
});
