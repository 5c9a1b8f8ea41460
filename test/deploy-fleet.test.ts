// A fleet that starts together forms one cluster before its first fetch: five real processes
// started at once find each other from DNS alone (a DNS server run by the test), wait with
// node.ready(), and each reads a cold cluster expirable: the token server sees one fetch.
import { afterEach, expect, test } from 'vitest';
import { disposeAllPeers, spawnPeer } from './helpers/peers.js';
import { startDnsServer } from './helpers/dns-server.js';
import { STORE_PEER } from './fixtures/store-peer.js';
import { DEPLOY_PEER } from './fixtures/deploy-peer.js';
import { startTokenServer } from './fixtures/store-token-server.js';
import { uniqueNamespace } from './fixtures/store-tools.js';
import { freePort } from './helpers/ports.js';

afterEach(disposeAllPeers);


test('five processes started at once from DNS alone form one cluster; a cold cluster expirable is fetched exactly once', async () => {
  await using dns = await startDnsServer();
  await using tokens = await startTokenServer(60_000);
  const port = await freePort();
  const hosts = [2, 3, 4, 5, 6].map((i) => `127.0.0.${i}`);
  dns.setA('fleet.test', hosts);
  const peers = await Promise.all(hosts.map(() => spawnPeer()));
  const discovery = { dns: 'fleet.test', port, interval: 500, servers: [dns.address] };
  await Promise.all(peers.map((p, i) => p.start({ name: `fleet-${i}`, host: hosts[i], port, cookie: 'fleet', discovery, heartbeatInterval: 200, failureTimeout: 5_000 })));
  for (const p of peers) expect(await p.run(DEPLOY_PEER, 'ready', 4, 10_000)).toHaveLength(4);
  const namespace = uniqueNamespace('fleet');
  await Promise.all(peers.map((p) => p.run(STORE_PEER, 'defineStore', { namespace, tokenUrl: tokens.url })));
  const values = await Promise.all(peers.map((p) => p.run<string[]>(STORE_PEER, 'callMany', 1)));
  expect(tokens.requests).toHaveLength(1);
  expect(new Set(values.flat())).toEqual(new Set([tokens.requests[0]!.token]));
});
