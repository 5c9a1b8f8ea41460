// A PM2 application (fork mode, several instances) whose instances find each other: instance
// i listens on 127.0.0.1:BASE_PORT+i and lists every instance's port as a seed. Its name is
// `pm2-<i>`, so the instance PM2 restarts after a crash rejoins under the same name.
//
// Started by ecosystem.config.cjs (PM2 sets NODE_APP_INSTANCE and the env below). In an
// application, import from 'expirable-store' instead of the source tree.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineExpirables, expirable, ok, startNode } from '../../src/index.js';

const instance = Number(process.env.NODE_APP_INSTANCE ?? 0);
const instances = Number(process.env.INSTANCES ?? 1);
const base = Number(process.env.BASE_PORT ?? 4370);
const seeds = Array.from({ length: instances }, (_, i) => `127.0.0.1:${base + i}`);

const node = await startNode({
  name: `pm2-${instance}`,
  host: '127.0.0.1',
  port: base + instance,
  seeds, // its own address is skipped
  cookie: process.env.EXPIRABLE_STORE_COOKIE,
});
const Expirables = defineExpirables(
  { apiToken: expirable({ fetch: async () => ok(`token-from-${node.name}`, Date.now() + 60_000) }) },
  { node, namespace: 'Example.Pm2' },
);
await node.ready({ peers: instances - 1, timeout: 30_000 });
const token = await Expirables.apiTokenOrThrow();
console.log(`[${node.name}] peers ${node.nodes().join(', ')}; token ${token}`);
// For the example's check: each instance writes what it sees.
if (process.env.STATUS_DIR) {
  mkdirSync(process.env.STATUS_DIR, { recursive: true });
  writeFileSync(join(process.env.STATUS_DIR, `${node.name}.json`), JSON.stringify({ name: node.name, nodes: node.nodes(), token }));
}
// Keep running (PM2 restarts instances that exit).
setInterval(() => {}, 60_000);
