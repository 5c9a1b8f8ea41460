// One node process of the cluster demo (started by demo/cluster.ts): a real node on a TCP
// port, the seed README's `githubAccessToken` expirable, and app code that reads it in a
// loop and reports each read to the demo over IPC.
import { defineExpirables, expirable, ok, fail, startNode } from '../src/index.js';

const name = process.env.DEMO_NODE!;
const tokenUrl = process.env.DEMO_TOKEN_URL!;
const seeds = process.env.DEMO_SEED ? [process.env.DEMO_SEED] : [];
const send = (msg: unknown): void => {
  if (process.connected) process.send!(msg);
};

const node = await startNode({ name, port: 0, cookie: process.env.DEMO_COOKIE!, seeds, heartbeatInterval: 200, failureTimeout: 1_000 });

export const Expirables = defineExpirables(
  {
    // Cluster-scoped, eager refresh one second before expiry.
    githubAccessToken: expirable({
      fetch: async () => {
        const res = await fetch(`${tokenUrl}?node=${encodeURIComponent(node.name)}`);
        if (!res.ok) return fail(new Error(`token server said ${res.status}`));
        const t = (await res.json()) as { token: string; expiresAt: number };
        return ok(t.token, t.expiresAt);
      },
      refresh: { eager: { beforeExpiry: 1_000 } },
    }),
  },
  { node, namespace: 'Demo.Expirables' },
);

send({ type: 'up', name: node.name, address: node.address });
process.on('disconnect', () => process.exit(0));
process.on('message', (msg: { type: string }) => {
  if (msg.type !== 'go') return;
  // The app: read the token every 100 ms, as request handlers would.
  setInterval(() => {
    const t0 = performance.now();
    void Expirables.githubAccessToken().then((r) => {
      const waitedMs = performance.now() - t0;
      if (r.ok) send({ type: 'read', node: node.name, ok: true, token: r.value, leftMs: r.expiresAt - Date.now(), waitedMs, peers: node.nodes().length, replicas: Expirables.replicas('githubAccessToken').length });
      else send({ type: 'read', node: node.name, ok: false, error: r.error.message, waitedMs });
    });
  }, 100);
});
