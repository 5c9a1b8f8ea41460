// Entry of `npm run bench -- <name> [options]`: parses the command line, re-executes under
// `taskset -c 0` for `--pin`, and runs the chosen bench (or all of them, in order).
import { availableParallelism } from 'node:os';
import { helpText, parseCommand } from './lib/options.js';
import { hasTaskset, reexecPinned, runningPinned, PINNED_ENV } from './lib/pin.js';
import { runBench } from './lib/runner.js';
import { BenchUsageError } from './lib/types.js';
import { BENCHES } from './registry.js';

async function main(argv: string[]): Promise<number> {
  let cmd;
  try {
    cmd = parseCommand(argv, BENCHES);
  } catch (e) {
    if (!(e instanceof BenchUsageError)) throw e;
    process.stderr.write(`bench: ${e.message}\nRun \`npm run bench -- --help\` for the list of benches and options.\n`);
    return 2;
  }
  if (cmd.kind === 'help') {
    process.stdout.write(`${helpText(BENCHES, cmd.bench)}\n`);
    return 0;
  }
  const wantsPin = cmd.benches.some((b) => b.values.pin === true) || argv.includes('--pin');
  if (wantsPin && process.env[PINNED_ENV] !== '1') {
    if (hasTaskset()) return reexecPinned();
    process.stderr.write('bench: --pin asked for, but `taskset` is not available here: running unpinned.\n');
  }
  cmd.common.pinned = runningPinned();
  if (process.env[PINNED_ENV] === '1' && !cmd.common.pinned) {
    process.stderr.write(`bench: pinning did not take (${availableParallelism()} CPUs usable): running unpinned.\n`);
  }
  const command = `npm run bench -- ${argv.join(' ')}`;
  let failed = 0;
  for (const { module, values } of cmd.benches) {
    try {
      await runBench(module, values, cmd.common, { command });
    } catch (e) {
      if (e instanceof BenchUsageError) {
        process.stderr.write(`bench ${module.name}: ${e.message}\n`);
        return 2;
      }
      failed++;
      process.stderr.write(`bench ${module.name} failed: ${(e as Error).stack ?? String(e)}\n`);
      if (!cmd.all) return 1;
    }
  }
  return failed > 0 ? 1 : 0;
}

// Exit explicitly: a bench must end by itself even if something left a handle open.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
