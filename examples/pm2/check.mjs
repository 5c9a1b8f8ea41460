// Starts the PM2 example, waits until every instance sees every other, prints what they
// saw and deletes the app. Skips (exit 0, with a message) when pm2 is not installed.
//
//   node examples/pm2/check.mjs
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
if (spawnSync('pm2', ['--version'], { stdio: 'ignore' }).status !== 0) {
  console.log('pm2 not found on PATH: skipping the PM2 example (install it with `npm install -g pm2`).');
  process.exit(0);
}
const instances = 3;
const statusDir = mkdtempSync(join(tmpdir(), 'es-pm2-'));
const env = { ...process.env, INSTANCES: String(instances), STATUS_DIR: statusDir, BASE_PORT: process.env.BASE_PORT ?? '14370' };
execFileSync('pm2', ['start', join(here, 'ecosystem.config.cjs')], { env, stdio: 'inherit' });
try {
  const until = Date.now() + 60_000;
  const files = Array.from({ length: instances }, (_, i) => join(statusDir, `pm2-${i}.json`));
  while (!files.every(existsSync)) {
    if (Date.now() > until) throw new Error('the instances did not all report within 60 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  const seen = files.map((f) => JSON.parse(readFileSync(f, 'utf8')));
  for (const s of seen) console.log(`${s.name}: peers ${s.nodes.join(', ')}; token ${s.token}`);
  const tokens = new Set(seen.map((s) => s.token));
  if (seen.some((s) => s.nodes.length !== instances - 1) || tokens.size !== 1) throw new Error('the instances did not form one cluster');
  console.log('ok: one cluster, one token');
} finally {
  execFileSync('pm2', ['delete', 'expirable-store-example'], { stdio: 'inherit' });
  rmSync(statusDir, { recursive: true, force: true });
}
