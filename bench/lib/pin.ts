// `--pin`: the whole bench (this process and every child it forks, which inherit the CPU
// affinity) re-executes under `taskset -c 0`. On these 2-vCPU machines a loopback round
// trip costs ~31 µs with both ends on one CPU and ~137 µs when each wake-up crosses to the
// other, idle CPU; the floor and ours are always measured in the same mode.
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

/** Set in the environment of the re-executed, pinned bench process. */
export const PINNED_ENV = 'EXPIRABLE_BENCH_PINNED';

/** True when `taskset` exists and works here. */
export function hasTaskset(): boolean {
  const r = spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
  return r.status === 0;
}

/** True when this process runs pinned (re-executed under taskset and really on one CPU). */
export function runningPinned(): boolean {
  return process.env[PINNED_ENV] === '1' && availableParallelism() === 1;
}

/** Re-executes this very command under `taskset -c 0`; resolves with its exit code. */
export function reexecPinned(): Promise<number> {
  const args = ['-c', '0', process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  const child = spawn('taskset', args, { stdio: 'inherit', env: { ...process.env, [PINNED_ENV]: '1' } });
  const forward = (sig: NodeJS.Signals): void => void child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}
