// The TLS option: the mesh over node:tls with mutual authentication, certificates made at
// test time (test/helpers/certs.ts). Real sockets; one node in a child process.
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { InvalidOptionError } from '../src/errors.js';
import { startNode, type Node, type NodeOptions } from '../src/node.js';
import type { RefusedInfo } from '../src/mesh/mesh.js';
import { makeCa, makeNodeTls, type NodeTls, type Pem } from './helpers/certs.js';
import { spawnPeer, type Peer } from './helpers/peers.js';
import { FIXTURES } from './helpers/fixtures.js';
import { WORKER_NODE_SCRIPT } from './fixtures/worker-peer.js';

type Ref = { node: string; id: string };
const COOKIE = 'mesh-tls-cookie';
const TIMING = { heartbeatInterval: 100, failureTimeout: 1500, handshakeTimeout: 2000 };
const uid = (): string => Math.random().toString(36).slice(2, 8);

let ca: Pem;
let otherCa: Pem;
/** A TLS cluster shared by the tests: a and b in this process, c in a child process. */
let a: Node;
let b: Node;
let c: Peer;
const extra: Node[] = [];

const counter = (n: Node, name?: string): Ref => {
  const ref = n.spawn({ init: () => 0, handleCall: (m: number, s: number) => ({ reply: s + m, state: s + m }) }, name ? { name } : {});
  return { node: ref.node, id: ref.id };
};
async function tlsNode(material: NodeTls, options: NodeOptions = {}): Promise<Node> {
  const n = await startNode({ name: `t-${uid()}`, port: 0, cookie: COOKIE, tls: material, ...TIMING, ...options });
  extra.push(n);
  return n;
}
function refusals(n: Node): RefusedInfo[] {
  const seen: RefusedInfo[] = [];
  n.on('refused', (info) => seen.push(info));
  return seen;
}
function nextRefusal(n: Node, match: (i: RefusedInfo) => boolean = () => true): Promise<RefusedInfo> {
  return new Promise((resolve) => {
    const on = (i: RefusedInfo): void => {
      if (!match(i)) return;
      n.off('refused', on);
      resolve(i);
    };
    n.on('refused', on);
  });
}

beforeAll(async () => {
  [ca, otherCa] = await Promise.all([makeCa('cluster CA'), makeCa('another CA')]);
  const [ta, tb, tc] = await Promise.all(['a', 'b', 'c'].map((n) => makeNodeTls(ca, n)));
  // a's material as Buffers (as read from files), the others' as strings.
  const asBuffers = { key: Buffer.from(ta!.key), cert: Buffer.from(ta!.cert), ca: [Buffer.from(ta!.ca)] };
  a = await startNode({ name: `a-${uid()}`, port: 0, cookie: COOKIE, tls: asBuffers, ...TIMING });
  b = await startNode({ name: `b-${uid()}`, port: 0, seeds: [a.address!], cookie: COOKIE, tls: tb!, ...TIMING });
  c = await spawnPeer();
  await c.start({ name: `c-${uid()}`, port: 0, seeds: [a.address!], cookie: COOKIE, tls: tc!, ...TIMING });
  await Promise.all([a.onNodeUp(c.name), b.onNodeUp(c.name), b.onNodeUp(a.name)]);
  await c.waitNodes([a.name, b.name]);
});
afterAll(async () => {
  await c?.[Symbol.asyncDispose]();
  await Promise.all([b?.close(), a?.close()]);
});
afterEach(async () => {
  await Promise.all(extra.splice(0).map((n) => n.close()));
});

describe('TLS mesh', () => {
  test('three TLS nodes (one in another process) form a full mesh and carry remote calls', async () => {
    expect(a.nodes().sort()).toEqual([b.name, c.name].sort());
    expect(b.nodes().sort()).toEqual([a.name, c.name].sort());
    const onB = counter(b);
    expect(await c.run(FIXTURES, 'call', onB, 2)).toBe(2);
    const onC = await c.run<Ref>(FIXTURES, 'spawnCounter');
    expect(await a.ref(onC).call({ add: 5 })).toBe(5);
    expect(await b.ref(onC).call('get')).toBe(5);
  });

  test('the listener speaks only TLS and asks for a client certificate', async () => {
    const { port } = parseAddr(a.address!);
    // A TLS client without a certificate: the listener refuses it.
    const refused = nextRefusal(a);
    const noCert = tls.connect({ host: '127.0.0.1', port, ca: ca.cert, checkServerIdentity: () => undefined });
    const closed = new Promise<string>((resolve) => {
      noCert.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      noCert.on('close', () => resolve('closed'));
    });
    noCert.on('secureConnect', () => noCert.write(Buffer.from([0, 0, 0, 1, 0x90])));
    const info = await refused;
    expect(info).toMatchObject({ reason: 'tls', by: 'local' });
    // The TLS 1.3 alert the listener sends a client that shows no certificate.
    expect(await closed).toMatch(/CERTIFICATE_REQUIRED/);
    noCert.destroy();
  });

  test('a plain-TCP node dialling a TLS node is refused; the TLS node keeps serving its peers', async () => {
    const seen = nextRefusal(a, (i) => i.reason === 'tls');
    const plain = await startNode({ name: `plain-${uid()}`, seeds: [a.address!], cookie: COOKIE, ...TIMING });
    extra.push(plain);
    expect((await seen).by).toBe('local');
    expect(plain.nodes()).toEqual([]);
    expect(a.nodes()).not.toContain(plain.name);
    // Raw garbage on the TLS port as well.
    const { port } = parseAddr(a.address!);
    const sock = net.connect(port, '127.0.0.1');
    const gone = new Promise((resolve) => sock.on('close', resolve));
    sock.on('error', () => {});
    sock.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8]));
    await gone;
    const onA = counter(a);
    expect(await b.ref(onA).call(1)).toBe(1);
    expect(await c.run(FIXTURES, 'call', onA, 1)).toBe(2);
  });

  test('a TLS node whose certificate another CA signed is refused; the cluster is undisturbed', async () => {
    // It trusts the cluster's CA, so it accepts a's certificate; a refuses its own.
    const rogue = { ...(await makeNodeTls(otherCa, 'intruder')), ca: ca.cert };
    const seen = refusals(a);
    const intruder = await tlsNode(rogue, { port: undefined, seeds: [a.address!] });
    await expect.poll(() => seen.map((i) => i.reason), { timeout: 10_000, interval: 20 }).toContain('tls');
    const info = seen.find((i) => i.reason === 'tls')!;
    expect(info.by).toBe('local');
    expect(info.message).toMatch(/client certificate rejected/);
    expect(info.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(intruder.nodes()).toEqual([]);
    expect(a.nodes().sort()).toEqual([b.name, c.name].sort());
    expect(await b.ref(counter(a)).call(1)).toBe(1);
  });

  test("a TLS node that trusts another CA refuses the cluster's certificate", async () => {
    const stranger = await makeNodeTls(otherCa, 'stranger');
    const n = await tlsNode(stranger, { port: undefined, seeds: [a.address!] });
    // startNode waited for the first dial of its seed: it failed on a's certificate.
    expect(n.nodes()).toEqual([]);
    const info = await nextRefusal(n, (i) => i.reason === 'tls');
    expect(info.by).toBe('local');
    expect(a.nodes()).not.toContain(n.name);
  });

  test('a worker of a TLS node listens with TLS: a TLS peer calls it directly', async () => {
    const w = await a.startWorker(new URL(WORKER_NODE_SCRIPT), { name: `tw-${uid()}` });
    try {
      await b.onNodeUp(w.name);
      expect(await b.ref({ node: w.name, id: 'counter' }).call({ add: 3 })).toBe(3);
      await c.waitNodes([a.name, b.name, w.name]);
      expect(await c.run(FIXTURES, 'call', { node: w.name, id: 'counter' }, { add: 1 })).toBe(4);
    } finally {
      await w.close();
    }
  });

  test('bad TLS options fail startNode with InvalidOptionError', async () => {
    const good = await makeNodeTls(ca, 'x');
    const opts = { port: 0, cookie: COOKIE };
    await expect(startNode({ ...opts, tls: { key: good.key, cert: good.cert } as never })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(startNode({ ...opts, tls: { ...good, key: 'not a pem' } })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(startNode({ ...opts, tls: { ...good, cert: 42 as never } })).rejects.toBeInstanceOf(InvalidOptionError);
  });
});

function parseAddr(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}
