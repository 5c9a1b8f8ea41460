// The Kubernetes example's application: each pod's node is named after its pod, listens on
// every interface, advertises its pod IP, and finds the other pods through the headless
// Service's DNS name (A records of every pod, ready or not: publishNotReadyAddresses).
// A container that crashes and is restarted keeps its pod name: it rejoins as the new
// incarnation of that node.
//
// Environment (set by deployment.yaml): POD_NAME and POD_IP from the downward API,
// EXPIRABLE_STORE_COOKIE from a Secret, EXPIRABLE_STORE_DNS and EXPIRABLE_STORE_PORT.
// In an application, import from 'expirable-store' instead of the source tree.
import { createServer } from 'node:http';
import { defineExpirables, expirable, ok, startNode } from '../../src/index.js';

const port = Number(process.env.EXPIRABLE_STORE_PORT ?? 4370);
const node = await startNode({
  name: process.env.POD_NAME,
  host: '0.0.0.0',
  port,
  advertise: `${process.env.POD_IP}:${port}`,
  cookie: process.env.EXPIRABLE_STORE_COOKIE,
  discovery: { dns: process.env.EXPIRABLE_STORE_DNS ?? 'expirable-store-example-mesh', port },
  on: {
    nodeup: (name) => console.log(`nodeup ${name}`),
    nodedown: (name, reason) => console.log(`nodedown ${name} (${reason})`),
    refused: (info) => console.error(`refused ${info.peer ?? info.address}: ${info.reason} (${info.message})`),
    discovery: (err) => console.error(err.message),
  },
});

const Expirables = defineExpirables(
  { apiToken: expirable({ fetch: async () => ok(`token-from-${node.name}`, Date.now() + 60_000) }) },
  { node, namespace: 'Example.Kubernetes' },
);

// startNode resolved after its first round of discovery: the pods already up are connected.
// Ready from then on (the readiness probe); /token reads the shared expirable.
createServer(async (req, res) => {
  if (req.url === '/ready') {
    res.end(JSON.stringify({ name: node.name, peers: node.nodes() }));
    return;
  }
  if (req.url === '/token') {
    const r = await Expirables.apiToken();
    res.statusCode = r.ok ? 200 : 503;
    res.end(JSON.stringify(r.ok ? { token: r.value, expiresAt: r.expiresAt } : { error: String(r.error) }));
    return;
  }
  res.statusCode = 404;
  res.end();
}).listen(8080);

process.on('SIGTERM', () => {
  // Leave cleanly: peers see nodedown 'closed' at once, locks are released.
  void node.close().then(() => process.exit(0));
});
