// One node process of a chaos run as the harness sees it: spawned (inside its network
// namespace in netns mode) with an IPC channel, commanded by requests, serving the
// process's own requests to the upstream and the external store. Every process is killed
// by its pid when the harness exits or is interrupted.
//
// Operations: the process reports each one as it begins and as it settles (see
// ./node-main.ts). Those begun and not settled when the process is gone (killed, or a
// frozen one killed by a restart) go into the history unsettled (end null), after the last
// message the process wrote: an operation cut short by a kill may have taken effect.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Entry, Op } from './history.js';

const NODE_MAIN = fileURLToPath(new URL('./node-main.ts', import.meta.url));

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) {
    c.kill('SIGCONT');
    c.kill('SIGKILL');
  }
});

export interface ProcHandlers {
  onEntries(entries: Entry[]): void;
  onFetch(node: string, name: string, key: string | undefined): { version: number; expiresAt: number };
  onWrite(node: string, pid: number, resource: string, token: number, grantedAt: number): boolean;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

export class NodeProc {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The node's name (known before start: the harness chooses it). */
  readonly name: string;
  address: string | undefined = undefined;
  /** Last lines of its output, for errors. */
  output = '';
  readonly exited: Promise<void>;
  readonly ready: Promise<void>;
  #gone = false;
  #nextRid = 0;
  readonly #pending = new Map<number, Pending>();
  /** Operations the process began and has not settled, by its sequence number. */
  readonly #open = new Map<number, Op>();

  /** `wrap` turns the node command line into the one to spawn (e.g. inside a namespace). */
  constructor(name: string, wrap: (argv: string[]) => string[], env: Record<string, string>, handlers: ProcHandlers) {
    this.name = name;
    const argv = wrap([process.execPath, '--expose-gc', '--import', 'tsx', NODE_MAIN]);
    this.child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
      env: { ...process.env, ...env },
    });
    this.pid = this.child.pid!;
    live.add(this.child);
    const keep = (d: Buffer): void => {
      this.output = (this.output + d.toString()).slice(-4000);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    // An answer sent as the process dies fails to write (EPIPE): its exit tells the rest.
    this.child.on('error', (err) => keep(Buffer.from(`\n${String(err)}\n`)));
    this.exited = new Promise((resolve) => {
      this.child.once('exit', () => {
        this.#gone = true;
        live.delete(this.child);
        for (const p of this.#pending.values()) {
          clearTimeout(p.timer);
          p.reject(new Error(`node ${name} (pid ${this.pid}) exited\n${this.output}`));
        }
        this.#pending.clear();
        // 'exit' may come before the last messages the process wrote are read: the channel
        // closes after them. Only then are the operations still open unsettled for good.
        const settle = (): void => {
          clearTimeout(cap);
          const open = [...this.#open.values()].map((op) => ({ ...op, end: null, ok: false, error: 'the process was gone before it settled' }));
          this.#open.clear();
          if (open.length > 0) handlers.onEntries(open);
          resolve();
        };
        const cap = setTimeout(settle, 5000);
        if (this.child.connected) this.child.once('disconnect', settle);
        else settle();
      });
    });
    let onReady: () => void = () => {};
    this.ready = new Promise<void>((resolve, reject) => {
      onReady = resolve;
      void this.exited.then(() => reject(new Error(`node ${name} exited before it was ready\n${this.output}`)));
    });
    this.ready.catch(() => {});
    this.child.on('message', (m: Record<string, unknown>) => {
      if (m.ready) return onReady();
      if (Array.isArray(m.entries)) return handlers.onEntries(m.entries as Entry[]);
      if (typeof m.begin === 'number') {
        this.#open.set(m.begin, m.op as Op);
        return;
      }
      if (typeof m.end === 'number') {
        this.#open.delete(m.end);
        return handlers.onEntries([m.op as Op]);
      }
      if (m.req === 'fetch') {
        const value = handlers.onFetch(name, m.name as string, m.key as string | undefined);
        return this.#send({ id: m.id, value });
      }
      if (m.req === 'write') {
        const value = handlers.onWrite(name, this.pid, m.resource as string, m.token as number, m.grantedAt as number);
        return this.#send({ id: m.id, value });
      }
      if (typeof m.rid === 'number') {
        const p = this.#pending.get(m.rid);
        if (!p) return;
        this.#pending.delete(m.rid);
        clearTimeout(p.timer);
        if (m.ok) p.resolve(m.value);
        else p.reject(new Error(`node ${name}: ${String(m.error)}`));
      }
    });
  }

  get gone(): boolean {
    return this.#gone;
  }

  #send(msg: unknown): void {
    if (!this.#gone && this.child.connected) this.child.send(msg as object);
  }

  /** Sends a command; rejects after `timeout` ms or when the process exits. */
  request<T = unknown>(op: string, fields: Record<string, unknown> = {}, timeout = 30_000): Promise<T> {
    if (this.#gone) return Promise.reject(new Error(`node ${this.name} (pid ${this.pid}) is gone`));
    const rid = ++this.#nextRid;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(rid);
        reject(new Error(`node ${this.name} (pid ${this.pid}): ${op} got no answer in ${timeout} ms\n${this.output}`));
      }, timeout);
      this.#pending.set(rid, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.#send({ rid, op, ...fields });
    });
  }

  signal(sig: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT'): void {
    if (!this.#gone) this.child.kill(sig);
  }

  /** kill -9 (a frozen process dies too, without running again); resolves when it is gone. */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }
}
