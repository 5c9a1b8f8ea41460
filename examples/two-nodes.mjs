// The README's cluster variant: two processes on 127.0.0.1 share one token, fetched once.
//   node two-nodes.mjs a 4370                   # first node: listens on 4370
//   node two-nodes.mjs b 4371 127.0.0.1:4370    # second node: joins through the first
// Each prints the token it reads and how many times it called the provider itself, then
// serves until SIGTERM or Ctrl-C. (Port 0 picks a free port, printed at start.)
import { once } from 'node:events';
import { defineExpirables, expirable, ok, startNode } from 'expirable-store';

const [name = 'a', port = '4370', seed] = process.argv.slice(2);

const node = await startNode({
  name,
  port: Number(port),
  seeds: seed ? [seed] : [],
  cookie: process.env.EXPIRABLE_STORE_COOKIE ?? 'quickstart-cookie', // the same on every node
});
let calls = 0;
const Expirables = defineExpirables(
  {
    apiToken: expirable({
      fetch: async () => {
        calls += 1; // stands in for an OAuth or API call
        return ok(`token fetched by ${name}`, Date.now() + 60_000);
      },
      scope: 'cluster', // the default: one fetch for the whole cluster, replicated
    }),
  },
  { node },
);

// A listening node keeps the process alive until it is closed: close it on SIGTERM
// (what process managers and Kubernetes send) and on Ctrl-C.
const shutdown = async () => {
  await Expirables.close();
  await node.close(); // leaves the cluster: peers see it go at once
  console.log(`[${name}] closed`);
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);

console.log(`[${name}] listening on ${node.address}`);
// The second node waits to be connected, so that it takes the first node's token instead
// of fetching one alone.
if (seed && node.nodes().length === 0) await once(node, 'nodeup');

const token = await Expirables.apiTokenOrThrow();
console.log(`[${name}] apiToken = ${token}; provider calls on this node: ${calls}; peers: ${node.nodes().join(', ')}`);
