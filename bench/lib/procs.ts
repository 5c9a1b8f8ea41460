// Child node processes of a bench, driven over IPC (separate from the mesh under test).
// Each is forked with `--import tsx`; every child is killed when the bench is done, when
// the bench process exits or is interrupted, and a child exits by itself when its parent's
// IPC channel closes (see child.ts), so a bench never leaves a process behind.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const c of live) c.kill('SIGKILL');
    process.exit(130);
  });
}

/** A fresh temporary directory, removed at the end even when the bench is interrupted; call the result to remove it now. */
export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  const remove = (): void => rmSync(path, { recursive: true, force: true });
  process.once('exit', remove);
  return {
    path,
    remove() {
      process.off('exit', remove);
      remove();
    },
  };
}

/** Kills `child` with the others when the bench exits or is interrupted (for non-node processes, e.g. BEAM). */
export function trackProcess(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

type Pending = { resolve: (v: unknown) => void; reject: (e: unknown) => void };

export interface ChildOptions {
  /** Extra environment for the child. */
  env?: Record<string, string>;
  /** Milliseconds to wait for the child to be ready. @default 20000 */
  readyTimeout?: number;
  /** Extra Node.js flags for the child (e.g. `--expose-gc`). */
  execArgv?: string[];
}

/** One forked bench process serving the handlers its script registered with `serve`. */
export class BenchChild {
  readonly child: ChildProcess;
  /** Collected stdout+stderr, for error messages. */
  output = '';
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Set<(event: string, data: unknown) => void>();
  #nextId = 0;
  #exitError: Error | undefined;
  readonly exited: Promise<void>;

  private constructor(script: string, options: ChildOptions) {
    this.child = fork(script, [], {
      execArgv: ['--import', 'tsx', ...(options.execArgv ?? [])],
      ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    live.add(this.child);
    this.child.stdout!.on('data', (d: Buffer) => (this.output = (this.output + d.toString()).slice(-8000)));
    this.child.stderr!.on('data', (d: Buffer) => (this.output = (this.output + d.toString()).slice(-8000)));
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        live.delete(this.child);
        this.#exitError = new Error(`bench child ${this.child.pid} exited (${signal ?? code})\n${this.output}`);
        for (const p of this.#pending.values()) p.reject(this.#exitError);
        this.#pending.clear();
        resolve();
      });
    });
    this.child.on('message', (m: { id?: number; ok?: boolean; value?: unknown; error?: string; event?: string; data?: unknown }) => {
      if (m.event !== undefined) {
        for (const l of this.#listeners) l(m.event, m.data);
        return;
      }
      const p = this.#pending.get(m.id!);
      if (!p) return;
      this.#pending.delete(m.id!);
      if (m.ok) p.resolve(m.value);
      else p.reject(new Error(`in bench child ${this.child.pid}: ${m.error}`));
    });
  }

  /** Forks `script` (a file using `serve`) and waits until it is ready. */
  static async start(script: string, options: ChildOptions = {}): Promise<BenchChild> {
    const c = new BenchChild(script, options);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bench child did not start in time\n${c.output}`)), options.readyTimeout ?? 20_000);
      c.onEvent((e) => {
        if (e === 'ready') {
          clearTimeout(timer);
          resolve();
        }
      });
      void c.exited.then(() => {
        clearTimeout(timer);
        reject(c.#exitError);
      });
    });
    return c;
  }

  /**
   * Calls handler `op` in the child with `args`; resolves with what it returns. Rejects after
   * `timeoutMs` (default 60 s) so a stuck child fails the bench instead of hanging it.
   */
  request<T = unknown>(op: string, args: unknown = {}, timeoutMs = 60_000): Promise<T> {
    if (this.#exitError) return Promise.reject(this.#exitError);
    const id = ++this.#nextId;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`bench child ${this.child.pid}: ${op} got no answer in ${timeoutMs} ms\n${this.output}`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ id, op, args });
    });
  }

  /** Listens to events the child emits. */
  onEvent(fn: (event: string, data: unknown) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** SIGKILL now; resolves when it is gone. */
  async kill(): Promise<void> {
    if (live.has(this.child)) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Starts `n` children of the same script in parallel. */
export function startChildren(script: string, n: number, options?: ChildOptions): Promise<BenchChild[]> {
  return Promise.all(Array.from({ length: n }, () => BenchChild.start(script, options)));
}

/** Kills all of them (each by its own pid) and waits until they are gone. */
export async function killAll(children: readonly (BenchChild | undefined)[]): Promise<void> {
  await Promise.all(children.map((c) => c?.kill()));
}
