// The handshake against real peers and raw fake peers: refusals, simultaneous dial.
import net from 'node:net';
import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { startNode, type Node } from '../src/node.js';
import { FrameDecoder } from '../src/mesh/framing.js';
import { decodeStrict, encodeStrict } from '../src/mesh/codec.js';
import { PROTOCOL_VERSION, Tag } from '../src/mesh/protocol.js';
import type { Mesh, RefusedInfo } from '../src/mesh/mesh.js';
import { spawnPeer, startCluster } from './helpers/peers.js';
import { FIXTURES } from './helpers/fixtures.js';

type Ref = { node: string; id: string };
const OPTS = { cookie: 'mesh-handshake-cookie', heartbeatInterval: 100, failureTimeout: 1500 };

/** A raw TCP client speaking frames with the strict codec. */
async function rawClient(address: string) {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  const socket = net.connect({ host, port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const frames: unknown[] = [];
  const decoder = new FrameDecoder(1 << 20);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  socket.on('data', (chunk) => decoder.push(chunk, (f) => frames.push(decodeStrict(f))));
  return { socket, frames, closed, send: (msg: unknown) => socket.write(encodeStrict(msg)) };
}

const refusedOn = (node: Node): RefusedInfo[] => {
  const seen: RefusedInfo[] = [];
  node.on('refused', (info) => seen.push(info));
  return seen;
};

describe('handshake refusals', () => {
  test('a peer with the wrong cookie is refused with a reason on both sides; the cluster is undisturbed', async () => {
    await using c = await startCluster(2, OPTS);
    const [a, b] = c.peers as [typeof c.seed, typeof c.seed];
    await using intruder = await spawnPeer();
    await intruder.start({ ...OPTS, cookie: 'not-the-cookie', port: 0, name: 'intruder' });
    await intruder.run(FIXTURES, 'dial', a.address);
    const [mine] = (await intruder.waitEvent('refused')) as [RefusedInfo];
    const [theirs] = (await a.waitEvent('refused')) as [RefusedInfo];
    // The dialer proves first, so the acceptor is the one that finds the cookie wrong.
    expect(theirs).toMatchObject({ reason: 'cookie', by: 'local', peer: 'intruder' });
    expect(mine).toMatchObject({ reason: 'cookie', by: 'remote', peer: a.name });
    expect(mine.message).toMatch(/cookie/);
    expect(await intruder.nodes()).toEqual([]);
    expect(await a.nodes()).toEqual([b.name]);
    const counter = await b.run<Ref>(FIXTURES, 'spawnCounter');
    expect(await a.run(FIXTURES, 'call', counter, { add: 1 })).toBe(1);
  });

  test('a second node with a name already in the cluster is refused as name_in_use', async () => {
    await using c = await startCluster(2, OPTS);
    const [a, b] = c.peers as [typeof c.seed, typeof c.seed];
    await using twin = await spawnPeer();
    await twin.start({ ...OPTS, port: 0, name: b.name });
    await twin.run(FIXTURES, 'dial', a.address);
    const [mine] = (await twin.waitEvent('refused')) as [RefusedInfo];
    const [theirs] = (await a.waitEvent('refused')) as [RefusedInfo];
    expect(mine).toMatchObject({ reason: 'name_in_use', by: 'remote' });
    expect(theirs).toMatchObject({ reason: 'name_in_use', by: 'local', peer: b.name });
    expect(theirs.message).toMatch(/already connected/);
    expect(await a.nodes()).toEqual([b.name]);
    expect(a.events.some((e) => e.type === 'nodedown')).toBe(false);
    const counter = await b.run<Ref>(FIXTURES, 'spawnCounter');
    expect(await a.run(FIXTURES, 'call', counter, { add: 2 })).toBe(2);
  });

  test('a dialer of another protocol version is refused (version) and told why', async () => {
    await using node = await startNode({ ...OPTS, port: 0, name: 'version-acceptor' });
    const refused = refusedOn(node);
    const raw = await rawClient(node.address!);
    raw.send([Tag.HELLO, PROTOCOL_VERSION + 1, 'future-node', 'inc', randomBytes(32), 1 << 20]);
    await raw.closed;
    expect(raw.frames).toEqual([[Tag.REFUSE, 'version', expect.stringMatching(new RegExp(`protocol version ${PROTOCOL_VERSION + 1}`))]]);
    expect(refused).toMatchObject([{ reason: 'version', by: 'local' }]);
  });

  test('an acceptor of another protocol version is refused by the dialer (version)', async () => {
    await using node = await startNode({ ...OPTS, port: 0, name: 'version-dialer' });
    const refused = refusedOn(node);
    const got: unknown[] = [];
    let linkClosed!: () => void;
    const closed = new Promise<void>((r) => (linkClosed = r));
    const server = net.createServer((socket) => {
      socket.once('close', () => linkClosed());
      const decoder = new FrameDecoder(1 << 20);
      socket.on('error', () => {});
      socket.on('data', (chunk) =>
        decoder.push(chunk, (f) => {
          const msg = decodeStrict(f) as unknown[];
          got.push(msg[0]);
          if (msg[0] === Tag.HELLO) socket.write(encodeStrict([Tag.CHALLENGE, 99, 'old-node', 'inc', randomBytes(32), 1 << 20]));
        }),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as net.AddressInfo).port;
      await (node.membership as Mesh).connect(`127.0.0.1:${port}`);
      expect(refused).toMatchObject([{ reason: 'version', by: 'local', address: `127.0.0.1:${port}` }]);
      await closed;
      expect(got).toEqual([Tag.HELLO, Tag.REFUSE]);
    } finally {
      server.close();
    }
  });

  test('a dialer refuses an acceptor whose WELCOME carries a wrong proof (cookie), and never reports it up', async () => {
    await using node = await startNode({ ...OPTS, port: 0, name: 'proof-dialer' });
    const refused = refusedOn(node);
    const got: unknown[] = [];
    let linkClosed!: () => void;
    const closed = new Promise<void>((r) => (linkClosed = r));
    const server = net.createServer((socket) => {
      socket.once('close', () => linkClosed());
      const decoder = new FrameDecoder(1 << 20);
      socket.on('error', () => {});
      socket.on('data', (chunk) =>
        decoder.push(chunk, (f) => {
          const msg = decodeStrict(f) as unknown[];
          got.push(msg[0]);
          if (msg[0] === Tag.HELLO) socket.write(encodeStrict([Tag.CHALLENGE, PROTOCOL_VERSION, 'fake-acceptor', 'inc', randomBytes(32), 1 << 20]));
          if (msg[0] === Tag.AUTH) socket.write(encodeStrict([Tag.WELCOME, randomBytes(32)]));
        }),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as net.AddressInfo).port;
      await (node.membership as Mesh).connect(`127.0.0.1:${port}`);
      expect(refused).toMatchObject([{ reason: 'cookie', by: 'local', peer: 'fake-acceptor' }]);
      await closed;
      expect(got).toEqual([Tag.HELLO, Tag.AUTH, Tag.REFUSE]);
      expect(node.nodes()).toEqual([]);
    } finally {
      server.close();
    }
  });

  // Regression: the acceptor used to put its HMAC proof in CHALLENGE, an offline cookie oracle for anyone.
  test('a client that sends HELLO without knowing the cookie receives nothing derived from the cookie', async () => {
    await using node = await startNode({ ...OPTS, port: 0, name: 'oracle-acceptor' });
    const raw = await rawClient(node.address!);
    const nonce = randomBytes(32);
    raw.send([Tag.HELLO, PROTOCOL_VERSION, 'outsider', 'inc', nonce, 1 << 20]);
    while (raw.frames.length === 0) await new Promise((r) => setTimeout(r, 5));
    const [challenge] = raw.frames as unknown[][];
    expect(challenge).toEqual([Tag.CHALLENGE, PROTOCOL_VERSION, 'oracle-acceptor', expect.any(String), expect.any(Uint8Array), expect.any(Number), expect.any(String)]);
    // A wrong proof: refused, and still nothing keyed by the cookie comes back.
    raw.send([Tag.AUTH, randomBytes(32)]);
    await raw.closed;
    expect(raw.frames.slice(1)).toEqual([[Tag.REFUSE, 'cookie', expect.any(String)]]);
    const theirNonce = challenge![4] as Uint8Array;
    const hmacs = ['accept', 'dial'].flatMap((label) =>
      [
        [nonce, theirNonce],
        [theirNonce, nonce],
      ].map(([x, y]) =>
        createHmac('sha256', OPTS.cookie).update(label).update('\0').update(x!).update(y!).update('\0outsider\0oracle-acceptor').digest(),
      ),
    );
    const binaries = JSON.stringify(raw.frames, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
    for (const h of hmacs) expect(binaries).not.toContain(h.toString('hex'));
  });

  test('a peer that does not finish its handshake is dropped after handshakeTimeout', async () => {
    await using node = await startNode({ ...OPTS, port: 0, name: 'slow-handshake', handshakeTimeout: 300 });
    const raw = await rawClient(node.address!);
    const opened = Date.now();
    await raw.closed; // we never send anything; the node closes the link
    expect(Date.now() - opened).toBeGreaterThanOrEqual(250);
    expect((node.membership as Mesh).debugInfo().handshakes).toBe(0);
  });
});

describe('a dialer that refuses after its AUTH', () => {
  // The acceptor puts the link up when it sends WELCOME; a dialer that gives up before
  // reading it (it began closing, or found the acceptor's proof wrong) sends REFUSE, which
  // then lands on the acceptor's established link.
  test.each([
    ['closing', 'closed'],
    ['cookie', 'refused_by_peer:cookie'],
  ])('REFUSE %s after AUTH: the acceptor, already up, reports the dialer down %s', async (refusal, reason) => {
    await using node = await startNode({ ...OPTS, port: 0, name: 'late-refuse-acceptor' });
    const events: string[][] = [];
    node.on('nodeup', (n) => events.push(['nodeup', n]));
    const down = new Promise<void>((resolve) =>
      node.on('nodedown', (n, r) => {
        events.push(['nodedown', n, r]);
        resolve();
      }),
    );
    const raw = await rawClient(node.address!);
    const nonce = randomBytes(32);
    raw.send([Tag.HELLO, PROTOCOL_VERSION, 'late-dialer', 'inc', nonce, 1 << 20]);
    while (raw.frames.length === 0) await new Promise((r) => setTimeout(r, 5));
    const [challenge] = raw.frames as unknown[][];
    const proof = createHmac('sha256', OPTS.cookie)
      .update('dial')
      .update('\0')
      .update(challenge![4] as Uint8Array)
      .update(nonce)
      .update('\0late-dialer\0late-refuse-acceptor')
      .digest();
    raw.send([Tag.AUTH, proof]);
    raw.send([Tag.REFUSE, refusal, 'given up']);
    raw.socket.end();
    await down;
    expect(events).toEqual([
      ['nodeup', 'late-dialer'],
      ['nodedown', 'late-dialer', reason],
    ]);
  });
});

describe('simultaneous dial', () => {
  test('two nodes dialling each other at the same moment end with exactly one link (in process)', async () => {
    for (let round = 0; round < 5; round++) {
      await using x = await startNode({ ...OPTS, port: 0, name: `sim-x-${round}` });
      await using y = await startNode({ ...OPTS, port: 0, name: `sim-y-${round}` });
      const events: string[] = [];
      for (const n of [x, y]) {
        n.on('nodeup', (p) => events.push(`${n.name} up ${p}`));
        n.on('nodedown', (p) => events.push(`${n.name} down ${p}`));
      }
      const mx = x.membership as Mesh;
      const my = y.membership as Mesh;
      // Both dials are in flight before either handshake can finish.
      await Promise.all([mx.connect(y.address!), my.connect(x.address!)]);
      await Promise.all([x.onNodeUp(y.name), y.onNodeUp(x.name)]);
      expect(x.nodes()).toEqual([y.name]);
      expect(y.nodes()).toEqual([x.name]);
      expect(mx.debugInfo()).toMatchObject({ linksUp: 1, handshakes: 0 });
      expect(my.debugInfo()).toMatchObject({ linksUp: 1, handshakes: 0 });
      expect(events.sort()).toEqual([`${x.name} up ${y.name}`, `${y.name} up ${x.name}`]);
      const counter = y.spawn({ init: () => 0, handleCall: (_m: 'get', s: number) => ({ reply: s, state: s }) });
      expect(await x.ref(counter).call('get')).toBe(0);
    }
  });

  test('the side that lost the race does not keep redialling the winner', async () => {
    await using x = await startNode({ ...OPTS, port: 0, name: 'race-a' });
    await using y = await startNode({ ...OPTS, port: 0, name: 'race-b' });
    const mx = x.membership as Mesh;
    const my = y.membership as Mesh;
    await Promise.all([mx.connect(y.address!), my.connect(x.address!)]);
    await Promise.all([x.onNodeUp(y.name), y.onNodeUp(x.name)]);
    const before = mx.debugInfo().dials + my.debugInfo().dials;
    // Several backoff periods (100 ms, doubling): a redial loop would show up here.
    await new Promise((r) => setTimeout(r, 800));
    expect(mx.debugInfo().dials + my.debugInfo().dials).toBe(before);
    expect(mx.debugInfo().linksUp + my.debugInfo().linksUp).toBe(2);
  });

  test('two processes dialling each other at once end with one link', async () => {
    await using x = await spawnPeer();
    await using y = await spawnPeer();
    await Promise.all([x.start({ ...OPTS, port: 0, name: 'proc-sim-x' }), y.start({ ...OPTS, port: 0, name: 'proc-sim-y' })]);
    await Promise.all([x.run(FIXTURES, 'dial', y.address), y.run(FIXTURES, 'dial', x.address)]);
    await x.waitNodes([y.name]);
    await y.waitNodes([x.name]);
    expect(await x.run(FIXTURES, 'meshInfo')).toMatchObject({ linksUp: 1, peers: [y.name] });
    expect(await y.run(FIXTURES, 'meshInfo')).toMatchObject({ linksUp: 1, peers: [x.name] });
    expect(x.events.filter((e) => e.type === 'nodeup' || e.type === 'nodedown')).toHaveLength(1);
  });
});
