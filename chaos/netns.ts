// Real network faults on Linux as root: one network namespace per node, each joined to one
// bridge by a veth pair, addresses from 192.0.2.0/24 (TEST-NET-1), and an nftables table of
// the bridge family whose drop rules cut chosen links in both directions. Sockets stay
// open: only silence tells, as in a real partition. A slow link is `tc netem` delay on both
// ends of a node's veth.
//
// Resources are named after a random run id and recorded in a state file before they are
// made, so a harness that crashes leaves a record: every run first removes the leftovers
// of runs whose process is gone. Every command is `ip`, `nft` or `tc` (Debian packages
// iproute2 and nftables).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const STATE_DIR = join(tmpdir(), 'expirable-store-chaos');

/** What one run made, as recorded in its state file. */
interface State {
  pid: number;
  id: string;
  bridge: string;
  table: string;
  namespaces: string[];
  /** Host ends of the veth pairs. */
  veths: string[];
}

const run = (cmd: string, args: string[], input?: string): string =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input === undefined ? {} : { input }) });

const quiet = (cmd: string, args: string[]): void => {
  try {
    run(cmd, args);
  } catch {
    // already gone
  }
};

/** Why namespaces cannot be used here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return 'not root';
  for (const cmd of ['ip', 'nft']) {
    try {
      run('which', [cmd]);
    } catch {
      return `${cmd} not found (Debian package ${cmd === 'ip' ? 'iproute2' : 'nftables'})`;
    }
  }
  const probe = `chaos-probe-${randomBytes(3).toString('hex')}`;
  try {
    run('ip', ['netns', 'add', probe]);
  } catch (err) {
    return `cannot create a network namespace: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    quiet('ip', ['netns', 'del', probe]);
  }
  return undefined;
}

/** Removes what runs whose harness process is gone left behind. Returns how many runs it cleaned. */
export function removeLeftovers(): number {
  if (!existsSync(STATE_DIR)) return 0;
  let n = 0;
  for (const f of readdirSync(STATE_DIR)) {
    if (!f.endsWith('.json')) continue;
    const path = join(STATE_DIR, f);
    let state: State;
    try {
      state = JSON.parse(readFileSync(path, 'utf8')) as State;
    } catch {
      rmSync(path, { force: true });
      continue;
    }
    if (alive(state.pid)) continue;
    removeAll(state);
    rmSync(path, { force: true });
    n++;
  }
  return n;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function removeAll(s: State): void {
  quiet('nft', ['delete', 'table', 'bridge', s.table]);
  for (const ns of s.namespaces) quiet('ip', ['netns', 'del', ns]);
  for (const v of s.veths) quiet('ip', ['link', 'del', v]);
  quiet('ip', ['link', 'del', s.bridge]);
}

export class NetnsNetwork {
  readonly #state: State;
  readonly #statePath: string;
  /** Whether `tc netem` works here (else the harness slows links with the fault hook). */
  netem = false;

  constructor(readonly size: number) {
    const id = randomBytes(3).toString('hex');
    this.#state = {
      pid: process.pid,
      id,
      bridge: `cb${id}`,
      table: `chaos_${id}`,
      namespaces: Array.from({ length: size }, (_, i) => `chaos-${id}-${i}`),
      veths: Array.from({ length: size }, (_, i) => `cv${id}h${i}`),
    };
    this.#statePath = join(STATE_DIR, `${id}.json`);
  }

  /** The address node `i` listens on. */
  host(i: number): string {
    return `192.0.2.${10 + i}`;
  }

  /** The command that runs `argv` inside node `i`'s namespace. */
  wrap(i: number, argv: string[]): string[] {
    return ['ip', 'netns', 'exec', this.#state.namespaces[i]!, ...argv];
  }

  /** Makes the bridge, namespaces, veths and the (empty) drop table. */
  setup(): void {
    mkdirSync(STATE_DIR, { recursive: true });
    // Recorded first: a crash halfway through still leaves a record of every name.
    writeFileSync(this.#statePath, JSON.stringify(this.#state));
    const s = this.#state;
    run('ip', ['link', 'add', s.bridge, 'type', 'bridge']);
    run('ip', ['link', 'set', s.bridge, 'up']);
    for (let i = 0; i < this.size; i++) {
      const ns = s.namespaces[i]!;
      const host = s.veths[i]!;
      const inner = `cv${s.id}n${i}`;
      run('ip', ['netns', 'add', ns]);
      run('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', inner]);
      run('ip', ['link', 'set', inner, 'netns', ns]);
      run('ip', ['link', 'set', host, 'master', s.bridge]);
      run('ip', ['link', 'set', host, 'up']);
      run('ip', ['-n', ns, 'addr', 'add', `${this.host(i)}/24`, 'dev', inner]);
      run('ip', ['-n', ns, 'link', 'set', inner, 'up']);
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    run('nft', ['-f', '-'], `table bridge ${s.table} {\n  chain links {\n    type filter hook forward priority 0; policy accept;\n  }\n}\n`);
    try {
      run('tc', ['qdisc', 'add', 'dev', s.veths[0]!, 'root', 'netem', 'delay', '1ms']);
      run('tc', ['qdisc', 'del', 'dev', s.veths[0]!, 'root']);
      this.netem = true;
    } catch {
      this.netem = false;
    }
  }

  /** Cuts exactly these links (node index pairs), both directions; replaces the previous cut. */
  cut(pairs: [number, number][]): void {
    const s = this.#state;
    const rules = pairs.flatMap(([a, b]) => [
      `add rule bridge ${s.table} links iifname "${s.veths[a]}" oifname "${s.veths[b]}" drop`,
      `add rule bridge ${s.table} links iifname "${s.veths[b]}" oifname "${s.veths[a]}" drop`,
    ]);
    // One transaction: the flush and the new rules apply at once.
    run('nft', ['-f', '-'], [`flush chain bridge ${s.table} links`, ...rules].join('\n') + '\n');
  }

  /** Restores every link. */
  heal(): void {
    this.cut([]);
  }

  /** Delays every packet to and from node `i` by `ms`. */
  slow(i: number, ms: number): void {
    const s = this.#state;
    run('tc', ['qdisc', 'replace', 'dev', s.veths[i]!, 'root', 'netem', 'delay', `${ms}ms`]);
    run('ip', ['netns', 'exec', s.namespaces[i]!, 'tc', 'qdisc', 'replace', 'dev', `cv${s.id}n${i}`, 'root', 'netem', 'delay', `${ms}ms`]);
  }

  unslow(i: number): void {
    const s = this.#state;
    quiet('tc', ['qdisc', 'del', 'dev', s.veths[i]!, 'root']);
    quiet('ip', ['netns', 'exec', s.namespaces[i]!, 'tc', 'qdisc', 'del', 'dev', `cv${s.id}n${i}`, 'root']);
  }

  /** Removes everything this run made, and its state file. */
  teardown(): void {
    removeAll(this.#state);
    rmSync(this.#statePath, { force: true });
  }

  /** Names of what this run made (for the report and the test). */
  get resources(): { bridge: string; table: string; namespaces: string[]; veths: string[] } {
    const { bridge, table, namespaces, veths } = this.#state;
    return { bridge, table, namespaces: [...namespaces], veths: [...veths] };
  }
}
