// The network-namespace mode of the chaos harness (Linux, root, `ip` and `nft`; skipped
// elsewhere): a cut drops a link silently in both directions and the heal restores it, and
// the leftovers of a harness that died (its pid gone) are removed by the next run.
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NetnsNetwork, netnsUnavailable, removeLeftovers, STATE_DIR } from '../chaos/netns.js';

const unavailable = netnsUnavailable();
const namespaces = (): string => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
const tables = (): string => execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });

/** Runs `code` with node inside namespace `i` of `net`; resolves with what it prints. */
function inside(net: NetnsNetwork, i: number, code: string): Promise<string> {
  const argv = net.wrap(i, [process.execPath, '-e', code]);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.once('exit', () => resolve(out.trim())));
}

describe.skipIf(unavailable !== undefined)('chaos netns mode', () => {
  it('cuts a link silently both ways, heals it, and removes everything at teardown', async () => {
    const net = new NetnsNetwork(2);
    net.setup();
    try {
      const server = `require('net').createServer((s) => s.end('hi')).listen(7000, '${net.host(0)}', () => console.log('up'))`;
      const argv = net.wrap(0, [process.execPath, '-e', server]);
      const srv = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => srv.stdout.once('data', () => resolve()));
      const dial = `const s = require('net').connect(7000, '${net.host(0)}'); s.on('data', (d) => { console.log(String(d)); process.exit(); });
        s.on('error', (e) => { console.log('error ' + e.code); process.exit(); }); setTimeout(() => { console.log('silence'); process.exit(); }, 1500);`;
      expect(await inside(net, 1, dial)).toBe('hi');
      net.cut([[0, 1]]);
      // Dropped, not refused: no RST comes back, only silence.
      expect(await inside(net, 1, dial)).toBe('silence');
      net.heal();
      expect(await inside(net, 1, dial)).toBe('hi');
      srv.kill('SIGKILL');
    } finally {
      net.teardown();
    }
    const r = net.resources;
    for (const ns of r.namespaces) expect(namespaces()).not.toContain(ns);
    expect(tables()).not.toContain(r.table);
  });

  it('removes the leftovers of a run whose harness died', async () => {
    const net = new NetnsNetwork(2);
    net.setup();
    const r = net.resources;
    expect(namespaces()).toContain(r.namespaces[0]);
    // Pretend the harness died: its state file now names a pid that has exited.
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => dead.once('exit', resolve));
    const file = join(STATE_DIR, `${r.table.slice('chaos_'.length)}.json`);
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), pid: dead.pid }));
    expect(removeLeftovers()).toBeGreaterThanOrEqual(1);
    for (const ns of r.namespaces) expect(namespaces()).not.toContain(ns);
    expect(tables()).not.toContain(r.table);
    expect(existsSync(file)).toBe(false);
  });
});
