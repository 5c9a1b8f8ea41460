// A node:cluster application whose primary and workers share one expirable: the token is
// fetched once for the whole machine, whichever worker asks first.
//
//   node --import tsx examples/node-cluster/app.ts        (WORKERS=4 by default)
//
// In an application, import from 'expirable-store' instead of the source tree.
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { defineExpirables, expirable, ok, startClusterNode } from '../../src/index.js';

const workers = Number(process.env.WORKERS ?? Math.min(4, availableParallelism()));
// Same call in the primary and in every worker: no port, seed or cookie to configure.
const node = await startClusterNode();

if (cluster.isPrimary) {
  // A worker that dies is forked again; it gets the same name and rejoins as its new incarnation.
  cluster.on('exit', (worker, code, signal) => {
    console.log(`[primary] worker ${worker.process.pid} died (${signal ?? code}); forking another`);
    cluster.fork();
  });
  node.on('nodeup', (name) => console.log(`[primary] nodeup ${name}`));
  node.on('nodedown', (name, reason) => console.log(`[primary] nodedown ${name} (${reason})`));
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const Expirables = defineExpirables(
    {
      apiToken: expirable({
        fetch: async () => {
          console.log(`[${node.name}] fetching the token (once for the whole machine)`);
          return ok(`token-from-${node.name}`, Date.now() + 60_000);
        },
      }),
    },
    { node, namespace: 'Example.NodeCluster' },
  );
  // Wait for the primary and every sibling, so no worker fetches alone while they start.
  await node.ready({ peers: workers, timeout: 30_000 });
  const token = await Expirables.apiTokenOrThrow();
  console.log(`[${node.name}] token: ${token}`);
}
