// The deployment recipes in examples/: the Kubernetes manifests parse and set exactly the
// environment the example app reads; the node:cluster example runs (one fetch for the
// machine); the PM2 example runs when pm2 is installed, and is skipped with a message if not;
// the Redis example runs two processes, one after the other, against a real redis-server started here.
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { once } from 'node:events';
import { hasRedis, startRedis, type RedisServer } from './helpers/redis-server.js';
import { readFileSync } from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const path = (p: string): string => fileURLToPath(new URL(`../examples/${p}`, import.meta.url));

describe('examples/kubernetes', () => {
  const docs = parseAllDocuments(readFileSync(path('kubernetes/deployment.yaml'), 'utf8'));
  const objects = docs.map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJS() as Record<string, any>;
  });
  const service = objects.find((o) => o.kind === 'Service')!;
  const deployment = objects.find((o) => o.kind === 'Deployment')!;
  const container = deployment?.spec.template.spec.containers[0];
  const app = readFileSync(path('kubernetes/app.ts'), 'utf8');

  test('a headless Service that publishes not-ready pods, selecting the Deployment’s pods', () => {
    expect(service.spec.clusterIP).toBe('None');
    expect(service.spec.publishNotReadyAddresses).toBe(true);
    expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    expect(deployment.spec.selector.matchLabels).toMatchObject(service.spec.selector);
  });

  test('the env the Deployment sets is exactly what app.ts reads: pod name and IP from the downward API, the cookie from a Secret', () => {
    const env = new Map<string, any>(container.env.map((e: { name: string }) => [e.name, e]));
    const read = new Set([...app.matchAll(/process\.env\.([A-Z_]+)/g)].map((m) => m[1]!));
    expect([...env.keys()].sort()).toEqual([...read].sort());
    expect(env.get('POD_NAME').valueFrom.fieldRef.fieldPath).toBe('metadata.name');
    expect(env.get('POD_IP').valueFrom.fieldRef.fieldPath).toBe('status.podIP');
    expect(env.get('EXPIRABLE_STORE_COOKIE').valueFrom.secretKeyRef).toMatchObject({ key: 'cookie' });
    expect(env.get('EXPIRABLE_STORE_DNS').value).toBe(service.metadata.name);
  });

  test('the mesh port and the readiness probe match the app', () => {
    const ports = new Map<string, number>(container.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]));
    expect(String(ports.get('mesh'))).toBe(container.env.find((e: { name: string }) => e.name === 'EXPIRABLE_STORE_PORT').value);
    expect(service.spec.ports[0].targetPort).toBe('mesh');
    expect(container.readinessProbe.httpGet.port).toBe('http');
    expect(app).toContain(`.listen(${ports.get('http')})`);
    expect(app).toContain(`req.url === '${container.readinessProbe.httpGet.path}'`);
  });
});

let child: ChildProcess | undefined;
afterEach(() => {
  child?.kill('SIGKILL'); // its workers exit when the IPC channel to it closes
  child = undefined;
});

test('examples/node-cluster: the workers share one token, fetched once', async () => {
  child = spawn(process.execPath, ['--import', 'tsx', path('node-cluster/app.ts')], { env: { ...process.env, WORKERS: '2' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const until = Date.now() + 30_000;
  while ((out.match(/token: /g) ?? []).length < 2) {
    if (Date.now() > until) throw new Error(`no two tokens in: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(out.match(/fetching the token/g)).toHaveLength(1);
  const tokens = new Set([...out.matchAll(/token: (\S+)/g)].map((m) => m[1]));
  expect(tokens.size).toBe(1);
});

const hasPm2 = spawnSync('pm2', ['--version'], { stdio: 'ignore' }).status === 0;
if (!hasPm2) console.log('pm2 not found on PATH: the PM2 example test is skipped (npm install -g pm2 to run it).');
test.skipIf(!hasPm2)('examples/pm2: the instances find each other (needs pm2 on PATH)', () => {
  const r = spawnSync(process.execPath, [path('pm2/check.mjs')], { encoding: 'utf8', timeout: 120_000 });
  expect(r.stdout + r.stderr).toContain('ok: one cluster, one token');
  expect(r.status).toBe(0);
});

describe.skipIf(!hasRedis)('examples/redis', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());

  test('a process started later reads the token the first one fetched, through Redis; both exit 0', async () => {
    const runApp = async (name: string) => {
      const p = spawn(process.execPath, ['--import', 'tsx', path('redis/app.ts'), name], { env: { ...process.env, REDIS_URL: redis.url }, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const [code] = (await once(p, 'close')) as [number | null];
      return { code, out };
    };
    expect(await runApp('a')).toEqual({ code: 0, out: '[a] apiToken = token fetched by a; provider calls in this process: 1\n' });
    expect(await runApp('b')).toEqual({ code: 0, out: '[b] apiToken = token fetched by a; provider calls in this process: 0\n' });
  }, 60_000);
});
