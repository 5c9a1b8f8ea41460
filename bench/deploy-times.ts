// Deployment figures, median of --runs (default 5):
//
//   node --import tsx bench/deploy-times.ts [--runs 5]
//
// - formMs: five nodes started at once from DNS alone (A records of 127.0.0.2-6 served by a
//   DNS server on 127.0.0.1 run here, the nodes in this process) until every node sees the
//   four others. Process start-up is not included.
// - readmitAfterKillMs: a node process of a 3-node cluster killed with kill -9 and started
//   again under its name on another port: from just before its startNode to the moment both
//   other nodes report it up again (process start-up of the new node not included).
// - readmitFrozenMs: the same with the old process stopped (SIGSTOP, sockets open): the
//   others let the new one in once the old one fails its liveness probe (one heartbeat).
// Default timings (heartbeatInterval 1000 ms, failureTimeout 5000 ms).
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startNode, type Node } from '../src/index.js';
import { startDnsServer } from '../test/helpers/dns-server.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);
const VICTIM = fileURLToPath(new URL('./peers/deploy-victim.ts', import.meta.url));
const cookie = 'deploy-bench';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function formOnce(): Promise<number> {
  await using dns = await startDnsServer();
  const port = await freePort();
  const hosts = [2, 3, 4, 5, 6].map((i) => `127.0.0.${i}`);
  dns.setA('fleet.bench', hosts);
  const t0 = performance.now();
  let nodes: Node[] = [];
  await new Promise<void>((resolve) => {
    const check = (): void => {
      if (nodes.length === 5 && nodes.every((n) => n.nodes().length === 4)) resolve();
    };
    void Promise.all(
      hosts.map((host, i) =>
        startNode({ name: `fleet-${i}`, host, port, cookie, discovery: { dns: 'fleet.bench', port, servers: [dns.address] }, on: { nodeup: () => check() } }),
      ),
    ).then((ns) => {
      nodes = ns;
      check();
    });
  });
  const ms = performance.now() - t0;
  await Promise.all(nodes.map((n) => n.close()));
  return ms;
}

function victim(options: object): Promise<{ child: ChildProcess; startedAt: number; address: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', VICTIM, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) resolve({ child, ...(JSON.parse(buf.slice(0, i)) as { startedAt: number; address: string }) });
    });
    child.once('exit', (code) => reject(new Error(`victim exited (${code})`)));
  });
}

async function readmitOnce(how: 'kill' | 'freeze', n: number): Promise<number> {
  const a = await startNode({ name: `obs-a-${how}-${n}`, port: 0, cookie });
  const b = await startNode({ name: `obs-b-${how}-${n}`, port: 0, cookie, seeds: [a.address!] });
  const name = `victim-${how}-${n}`;
  const old = await victim({ name, port: 0, cookie, seeds: [a.address!] });
  await Promise.all([a.onNodeUp(name), b.onNodeUp(name)]);
  await new Promise((r) => setTimeout(r, 300));
  const upAgain = (node: Node): Promise<number> =>
    new Promise((resolve) => {
      let down = false;
      const onDown = (n: string): void => void (n === name && (down = true));
      const onUp = (n: string): void => {
        if (n !== name || !down) return;
        node.off('nodeup', onUp);
        node.off('nodedown', onDown);
        resolve(Date.now());
      };
      node.on('nodedown', onDown);
      node.on('nodeup', onUp);
    });
  const ups = Promise.all([upAgain(a), upAgain(b)]);
  old.child.kill(how === 'kill' ? 'SIGKILL' : 'SIGSTOP');
  const fresh = await victim({ name, port: 0, cookie, seeds: [a.address!] });
  const at = Math.max(...(await ups));
  const ms = at - fresh.startedAt;
  old.child.kill('SIGKILL');
  fresh.child.kill('SIGKILL');
  await Promise.all([a.close(), b.close()]);
  return ms;
}

const form: number[] = [];
const kill: number[] = [];
const frozen: number[] = [];
for (let i = 0; i < runs; i++) {
  form.push(await formOnce());
  kill.push(await readmitOnce('kill', i));
  frozen.push(await readmitOnce('freeze', i));
  process.stderr.write(`run ${i + 1}/${runs}: form ${form.at(-1)!.toFixed(1)} ms, readmit after kill -9 ${kill.at(-1)} ms, after SIGSTOP ${frozen.at(-1)} ms\n`);
}
const result = {
  name: 'deploy-times',
  params: { runs, nodes: 5 },
  env: { node: process.version },
  metrics: { formMs: +median(form).toFixed(1), readmitAfterKillMs: median(kill), readmitFrozenMs: median(frozen) },
  runs: form.map((f, i) => ({ formMs: +f.toFixed(1), readmitAfterKillMs: kill[i], readmitFrozenMs: frozen[i] })),
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
process.exit(0);
