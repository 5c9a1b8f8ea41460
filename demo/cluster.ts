// The seed README's story on one machine: a local HTTP token server that issues tokens
// valid 3 s and counts requests, and 3 node processes whose app code reads
// `Expirables.githubAccessToken()` every 100 ms. Eager refresh fetches a new token once for
// the whole cluster, one second before expiry. Midway the node that fetched last is killed
// with SIGKILL; the refresh goes on from the others. It ends with a summary and exits
// non-zero if a promise was broken.
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const TTL_MS = 3_000;
const RUN_MS = 13_000;
const KILL_AT_MS = 6_500;
const NODE_SCRIPT = fileURLToPath(new URL('./cluster-node.ts', import.meta.url));

interface Read {
  node: string;
  ok: boolean;
  token?: string;
  leftMs?: number;
  waitedMs: number;
  error?: string;
  peers?: number;
  replicas?: number;
}

export async function clusterDemo(): Promise<void> {
  // The token server: every request is a fetch by some node.
  const requests: { node: string; at: number; token: string }[] = [];
  const server = createServer((req, res) => {
    const node = new URL(req.url ?? '/', 'http://x').searchParams.get('node') ?? '?';
    const token = `gho_${String(requests.length + 1).padStart(4, '0')}`;
    requests.push({ node, at: Date.now(), token });
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ token, expiresAt: Date.now() + TTL_MS }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const tokenUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  const cookie = `demo-${process.pid}`;

  const children = new Map<string, ChildProcess>();
  const last = new Map<string, Read>();
  const broken: string[] = [];
  let reads = 0;
  let killed: { name: string; at: number } | undefined;

  const start = (name: string, seed?: string): Promise<{ name: string; address: string }> =>
    new Promise((resolve, reject) => {
      const child = fork(NODE_SCRIPT, [], {
        execArgv: ['--import', 'tsx'],
        env: { ...process.env, DEMO_NODE: name, DEMO_TOKEN_URL: tokenUrl, DEMO_COOKIE: cookie, DEMO_SEED: seed ?? '' },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      children.set(name, child);
      child.once('exit', (code, signal) => {
        if (!killed || killed.name !== name) broken.push(`node ${name} exited on its own (${signal ?? code})`);
        reject(new Error(`${name} exited`));
      });
      child.on('message', (msg: { type: string; name: string; address: string } & Read) => {
        if (msg.type === 'up') resolve({ name: msg.name, address: msg.address });
        if (msg.type !== 'read') return;
        reads++;
        last.set(msg.node, msg);
        if (!msg.ok) broken.push(`${msg.node} read an error: ${msg.error}`);
        else if ((msg.leftMs ?? 0) < -5) broken.push(`${msg.node} read an expired token (${msg.leftMs} ms)`);
        if (msg.waitedMs > 500 && requests.length > 1) broken.push(`${msg.node} waited ${msg.waitedMs.toFixed(0)} ms for a read`);
      });
    });

  const first = await start('node-a');
  await Promise.all([start('node-b', first.address), start('node-c', first.address)]);
  // Let the mesh form (every node sees the other two) before the app starts reading.
  await new Promise((r) => setTimeout(r, 1_000));
  for (const child of children.values()) child.send({ type: 'go' });
  const t0 = Date.now();

  const tty = process.stdout.isTTY;
  const render = (): void => {
    const elapsed = ((Date.now() - t0) / 1000).toFixed(1);
    const lines = [
      `expirable-store demo: 3 nodes, token TTL ${TTL_MS / 1000} s, eager refresh 1 s before expiry   t=${elapsed}s`,
      `token server requests: ${requests.length}  (last by ${requests.at(-1)?.node ?? '-'})   reads: ${reads}`,
      '',
      '  node      token      life left   replicas',
      ...['node-a', 'node-b', 'node-c'].map((n) => {
        if (killed?.name === n) return `  ${n}    (killed with SIGKILL at t=${((killed.at - t0) / 1000).toFixed(1)}s)`;
        const r = last.get(n);
        if (!r) return `  ${n}    -`;
        return r.ok
          ? `  ${n}    ${r.token}   ${String(Math.max(0, r.leftMs ?? 0)).padStart(5)} ms   ${r.replicas}`
          : `  ${n}    error: ${r.error}`;
      }),
    ];
    if (tty) process.stdout.write(`\x1b[H\x1b[2J${lines.join('\n')}\n`);
    else {
      const nodes = ['node-a', 'node-b', 'node-c'].map((n) => {
        const r = last.get(n);
        if (killed?.name === n) return `${n} killed`;
        return r?.ok ? `${n} ${r.token} ${Math.max(0, r.leftMs ?? 0)}ms` : `${n} ${r?.error ?? '-'}`;
      });
      console.log(`t=${elapsed}s  token server requests: ${requests.length}  |  ${nodes.join('  |  ')}`);
    }
  };
  const ui = setInterval(render, tty ? 200 : 1_000);

  await new Promise((r) => setTimeout(r, KILL_AT_MS));
  const victim = requests.at(-1)!.node;
  killed = { name: victim, at: Date.now() };
  children.get(victim)!.kill('SIGKILL');
  const requestsAtKill = requests.length;
  await new Promise((r) => setTimeout(r, RUN_MS - KILL_AT_MS));
  clearInterval(ui);
  render();

  // The promises.
  const cycles = Math.floor((Date.now() - t0) / (TTL_MS - 1_000));
  for (let i = 1; i < requests.length; i++) {
    const gap = requests[i]!.at - requests[i - 1]!.at;
    if (gap < (TTL_MS - 1_000) / 2) broken.push(`two fetches ${gap} ms apart (${requests[i - 1]!.token}, ${requests[i]!.token}): not once per expiry`);
  }
  const afterKill = requests.slice(requestsAtKill);
  if (afterKill.length === 0) broken.push('no refresh after the kill');
  if (afterKill.some((r) => r.node === victim)) broken.push('the killed node fetched after its death');
  const survivors = ['node-a', 'node-b', 'node-c'].filter((n) => n !== victim);
  const finalTokens = new Set(survivors.map((n) => last.get(n)?.token));
  if (finalTokens.size !== 1) broken.push(`survivors disagree on the token: ${[...finalTokens].join(', ')}`);

  console.log('');
  console.log('summary');
  console.log(`  reads by the app:          ${reads}`);
  console.log(`  fetches (token requests):  ${requests.length} over ${((Date.now() - t0) / 1000).toFixed(1)} s, about ${cycles} refresh cycles`);
  console.log(`  fetched by:                ${requests.map((r) => r.node).join(', ')}`);
  console.log(`  killed:                    ${victim} (it had fetched last); refreshes after: ${afterKill.map((r) => r.node).join(', ') || 'none'}`);
  console.log(`  broken promises:           ${broken.length === 0 ? 'none' : ''}`);
  for (const b of [...new Set(broken)]) console.log(`    - ${b}`);

  for (const child of children.values()) {
    child.removeAllListeners('exit');
    child.kill('SIGKILL');
  }
  server.closeAllConnections();
  server.close();
  process.exitCode = broken.length === 0 ? 0 : 1;
}
