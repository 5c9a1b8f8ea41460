// The chaos command line as a new user meets it: --help, and a bad option, through the real
// command (a child process), and the parser's typed errors.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { HELP, parseCli } from '../chaos/cli.js';
import { InvalidOptionError } from '../src/errors.js';

const chaos = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'chaos/cli.ts', ...args], { encoding: 'utf8', timeout: 60_000 });

describe('chaos command line', () => {
  it('--help prints every option and exits 0, running nothing', () => {
    const r = chaos('--help');
    expect(r.status).toBe(0);
    for (const opt of ['--nodes', '--duration', '--soak', '--seed', '--faults', '--mode', '--json', '--late-read-ms', '--restart-converge-ms', '--check']) {
      expect(r.stdout, opt).toContain(opt);
    }
    expect(r.stdout).not.toContain('[chaos +'); // no run started
  });

  it('an unknown option, a missing value or a value out of range: one line naming it on stderr, exit 2, no stack trace', () => {
    for (const [args, names] of [
      [['--nodez', '3'], '--nodez'],
      [['--nodes'], '--nodes'],
      [['--nodes', '--duration', '20'], '--nodes'], // the value forgotten: not "--duration" as the node count
      [['--help=yes'], '--help'],
      [['stray'], 'stray'],
      [['--nodes', '99'], 'nodes'],
      [['--faults', 'kill,flood'], 'flood'],
    ] as const) {
      const r = chaos(...args);
      expect(r.status, args.join(' ')).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^chaos: /);
      expect(lines[0]).toContain(names);
      expect(lines[0]).toContain('--help');
      expect(r.stdout).toBe('');
    }
  });

  it('the parser answers --help with HELP and throws InvalidOptionError for what it refuses', () => {
    expect(parseCli(['--help'])).toBe(HELP);
    expect(() => parseCli(['--bogus'])).toThrow(InvalidOptionError);
    expect(() => parseCli(['--mode', 'fast'])).toThrow(/mode/);
    expect(() => parseCli(['--json', '--seed', '7'])).toThrow(/`--json` to be followed by its value/);
    expect(parseCli(['--json=-report'])).toMatchObject({ json: '-report' }); // a value after `=` may start with a dash
    const o = parseCli(['--nodes', '3', '--duration', '20', '--seed', '7', '--faults', 'kill,slow']);
    expect(o).toMatchObject({ nodes: 3, durationS: 20, seed: 7, faults: ['kill', 'slow'], mode: 'auto' });
  });
});
