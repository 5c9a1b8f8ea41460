// DNS discovery against a real DNS server started by the test (UDP on 127.0.0.1, port 0),
// whose answers change while the nodes run. Nodes listen on 127.0.0.x (the whole 127/8 is
// loopback on Linux), so A records with one port address several nodes.
import { afterEach, describe, expect, test } from 'vitest';
import { startNode, type Node } from '../src/node.js';
import { DiscoveryError, InvalidOptionError } from '../src/errors.js';
import type { Mesh } from '../src/mesh/mesh.js';
import { startDnsServer, type DnsServer } from './helpers/dns-server.js';
import { freePort } from './helpers/ports.js';

const cookie = 'discovery-cookie';
const open: Node[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((n) => n.close()));
});

/** A port free on 127.0.0.1 (and so, in practice, on the other loopback addresses). */

async function node(options: Parameters<typeof startNode>[0]): Promise<Node> {
  const n = await startNode({ cookie, heartbeatInterval: 100, failureTimeout: 2_000, ...options });
  open.push(n);
  return n;
}

const waitFor = async (cond: () => boolean, what: string, timeout = 10_000): Promise<void> => {
  const until = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** Resolves after the server has received `n` more queries for `name`. */
const queriesFor = (dns: DnsServer, name: string) => dns.queries.filter((q) => q.endsWith(` ${name}`)).length;

describe('DNS discovery', () => {
  test('nodes find each other from A records alone; startNode resolves connected to the nodes already up', async () => {
    await using dns = await startDnsServer();
    const port = await freePort();
    dns.setA('es.test', ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    const discovery = { dns: 'es.test', port, interval: 200, servers: [dns.address] };
    const a = await node({ name: 'dns-a', host: '127.0.0.2', port, discovery });
    const b = await node({ name: 'dns-b', host: '127.0.0.3', port, discovery });
    // b's first round dialled a before startNode resolved.
    expect(b.nodes()).toEqual(['dns-a']);
    const c = await node({ name: 'dns-c', host: '127.0.0.4', port, discovery });
    expect(c.nodes().sort()).toEqual(['dns-a', 'dns-b']);
    await waitFor(() => a.nodes().length === 2 && b.nodes().length === 2, 'a full mesh');
    expect(a.address).toBe(`127.0.0.2:${port}`);
  });

  test('SRV records: each target resolved and dialled at the port of its record', async () => {
    await using dns = await startDnsServer();
    const [p1, p2] = [await freePort(), await freePort()];
    dns.setSrv('_es._tcp.es.test', [{ target: 'one.es.test', port: p1 }, { target: 'two.es.test', port: p2 }]);
    dns.setA('one.es.test', ['127.0.0.1']);
    dns.setA('two.es.test', ['127.0.0.1']);
    const discovery = { dns: '_es._tcp.es.test', type: 'srv' as const, interval: 200, servers: [dns.address] };
    const a = await node({ name: 'srv-a', port: p1, discovery });
    const b = await node({ name: 'srv-b', port: p2, discovery });
    expect(b.nodes()).toEqual(['srv-a']);
    await waitFor(() => a.nodes().includes('srv-b'), 'a sees b');
  });

  test('a node added to the answer later is joined at the next poll; a name removed does not disconnect it', async () => {
    await using dns = await startDnsServer();
    const port = await freePort();
    dns.setA('grow.test', ['127.0.0.2']);
    const a = await node({ name: 'grow-a', host: '127.0.0.2', port, discovery: { dns: 'grow.test', port, interval: 200, servers: [dns.address] } });
    // b listens but dials nobody: only a's poll can bring them together.
    const b = await node({ name: 'grow-b', host: '127.0.0.3', port });
    const downs: string[] = [];
    a.on('nodedown', (n) => downs.push(n));
    const up = a.onNodeUp('grow-b');
    dns.setA('grow.test', ['127.0.0.2', '127.0.0.3']);
    await up;
    expect(b.nodes()).toEqual(['grow-a']);
    // Out of DNS: several polls later, still connected.
    dns.setA('grow.test', ['127.0.0.2']);
    const seen = queriesFor(dns, 'grow.test');
    await waitFor(() => queriesFor(dns, 'grow.test') >= seen + 6, 'three more polls');
    expect(a.nodes()).toEqual(['grow-b']);
    expect(downs).toEqual([]);
  });

  test("SERVFAIL and empty answers are 'discovery' events, retried with backoff; the node recovers when DNS answers again", async () => {
    await using dns = await startDnsServer();
    const port = await freePort();
    dns.setA('flaky.test', ['127.0.0.2', '127.0.0.3']);
    dns.mode = 'servfail';
    const errors: DiscoveryError[] = [];
    const a = await node({
      name: 'flaky-a', host: '127.0.0.2', port,
      discovery: { dns: 'flaky.test', port, interval: 100, servers: [dns.address] },
      on: { discovery: (err) => errors.push(err) },
    });
    // The first round failed inside startNode, and the listener saw it.
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors[0]).toBeInstanceOf(DiscoveryError);
    expect(errors[0]!.dnsCode).toBe('ESERVFAIL');
    const b = await node({ name: 'flaky-b', host: '127.0.0.3', port });
    const t0 = Date.now();
    await waitFor(() => errors.length >= 4, 'four failed rounds');
    // Backoff 250, 500, 1000 ms after the first failures: never one per 100 ms poll.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250 + 500 + 1000 - 100);
    dns.mode = 'empty';
    const n = errors.length;
    await waitFor(() => errors.length > n, 'an empty answer reported');
    expect(errors.at(-1)!.dnsCode).toBe('ENODATA');
    expect(a.nodes()).toEqual([]);
    dns.mode = 'answer';
    await a.onNodeUp('flaky-b');
    expect(b.nodes()).toEqual(['flaky-a']);
  });

  test("a name that does not resolve: 'discovery' events, never a crash; without a listener, one process warning", async () => {
    await using dns = await startDnsServer();
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      if ((w as Error & { code?: string }).code === 'EXPIRABLE_STORE_DISCOVERY') warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      dns.mode = 'silent';
      const a = await node({ name: 'lost-a', port: 0, discovery: { dns: 'nowhere.test', port: 4370, interval: 100, servers: [dns.address] } });
      expect(a.nodes()).toEqual([]);
      await waitFor(() => warnings.length >= 1, 'a discovery warning', 15_000);
      expect(warnings[0]!.message).toMatch(/nowhere\.test/);
      // More failed rounds, still one warning per error code.
      const seen = queriesFor(dns, 'nowhere.test');
      await waitFor(() => queriesFor(dns, 'nowhere.test') > seen + 4, 'more rounds', 15_000);
      expect(warnings.length).toBe(1);
    } finally {
      process.off('warning', onWarning);
    }
  });

  test('its own address in the answer is skipped (never dialled)', async () => {
    await using dns = await startDnsServer();
    const port = await freePort();
    dns.setA('self.test', ['127.0.0.2']);
    const a = await node({ name: 'self-a', host: '127.0.0.2', port, discovery: { dns: 'self.test', port, interval: 100, servers: [dns.address] } });
    const seen = queriesFor(dns, 'self.test');
    await waitFor(() => queriesFor(dns, 'self.test') >= seen + 6, 'three more polls');
    expect((a.membership as Mesh).debugInfo().dials).toBe(0);
  });

  test('a wildcard listener finds its advertised address in the answer and skips it', async () => {
    await using dns = await startDnsServer();
    const port = await freePort();
    dns.setA('wild.test', ['127.0.0.2']);
    const a = await node({ name: 'wild-a', host: '0.0.0.0', port, advertise: `127.0.0.2:${port}`, discovery: { dns: 'wild.test', port, interval: 100, servers: [dns.address] } });
    expect(a.address).toBe(`127.0.0.2:${port}`);
    const seen = queriesFor(dns, 'wild.test');
    await waitFor(() => queriesFor(dns, 'wild.test') >= seen + 6, 'three more polls');
    expect((a.membership as Mesh).debugInfo().dials).toBe(0);
  });
});

describe('discovery and advertise options', () => {
  const base = { cookie, port: 0 };
  test.each([
    [{ discovery: { dns: 'x.test', port: 70000 } }, 'discovery.port'],
    [{ discovery: { dns: 'x.test' } }, 'discovery.port'],
    [{ discovery: { dns: 'x.test', port: 4370, interval: 50 } }, 'discovery.interval'],
    [{ discovery: { dns: 'x.test', port: 4370, type: 'txt' } }, 'discovery.type'],
    [{ discovery: { dns: '_x._tcp.x.test', type: 'srv', port: 4370 } }, 'discovery.port'],
    [{ discovery: { dns: '', port: 4370 } }, 'discovery.dns'],
    [{ discovery: { dns: 'x.test', port: 4370, servers: ['not a server'] } }, 'discovery.servers'],
    [{ advertise: 'no-port' }, 'advertise'],
    [{ advertise: 'host:0' }, 'advertise'],
    [{ host: '0.0.0.0' }, 'advertise'],
    [{ host: '::' }, 'advertise'],
    [{ on: { refused: 'nope' } }, 'on.refused'],
  ])('%j is an InvalidOptionError naming %s', async (bad, option) => {
    const err = await startNode({ ...base, ...(bad as object) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidOptionError);
    expect((err as InvalidOptionError).option).toBe(option);
  });
});
