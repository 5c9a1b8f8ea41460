// A network of whole lock services (GlobalLocks on real ActorSystems) whose deliveries the
// test drives by hand: every cast waits in `pending` until the test delivers it, so a test can
// force any message order (global-protocol) or draw one at random (global-schedules). Each
// node's view of the others is a SimMembership the test sets one side at a time.
import { EventEmitter } from 'node:events';
import { ActorSystem, type RemoteRouter } from '../../src/actors/system.js';
import { GlobalLocks } from '../../src/mesh/global/index.js';
import { decodeLockMsg, lockBatchOf } from '../../src/mesh/global/messages.js';
import { rendezvous } from '../../src/mesh/global/rendezvous.js';
import { resourceKey } from '../../src/mesh/global/service.js';
import type { MembershipEvents, Membership } from '../../src/mesh/membership.js';

export class SimMembership extends EventEmitter<MembershipEvents> implements Membership {
  readonly self: string;
  readonly #up = new Set<string>();
  constructor(self: string) {
    super();
    this.self = self;
  }
  nodes(): string[] {
    return [...this.#up];
  }
  has(peer: string): boolean {
    return this.#up.has(peer);
  }
  setUp(peer: string, up: boolean): void {
    if (up && !this.#up.has(peer)) {
      this.#up.add(peer);
      this.emit('nodeup', peer);
    } else if (!up && this.#up.delete(peer)) {
      this.emit('nodedown', peer, 'test');
    }
  }
}

/** Lets every microtask and immediate the last step caused run. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((r) => setImmediate(r));
}

export interface PendingCast {
  from: string;
  to: string;
  id: string;
  msg: unknown;
}

export class LockNet {
  readonly systems = new Map<string, ActorSystem>();
  readonly views = new Map<string, SimMembership>();
  readonly locks = new Map<string, GlobalLocks>();
  /** Nodes gone: what they send is lost, what is sent to them is dropped. */
  readonly dead = new Set<string>();
  /** Casts not yet delivered, in send order. */
  pending: PendingCast[] = [];
  /**
   * With `splitBatches` (the default), a batch (the messages one node sent another in one
   * tick) waits here as its messages, in order, so a test can hold back or reorder any one
   * of them; without it, a batch is delivered whole, as the mesh does.
   */
  readonly #split: boolean;

  constructor(options: { splitBatches?: boolean } = {}) {
    this.#split = options.splitBatches ?? true;
  }

  add(name: string): GlobalLocks {
    const system = new ActorSystem({ name });
    const view = new SimMembership(name);
    const router: RemoteRouter = {
      call: (_ref, _msg, slot) => slot.fail(new Error('no calls in this network')),
      cast: (ref, msg) => {
        if (this.dead.has(name)) return;
        for (const m of this.#split ? (lockBatchOf(msg) ?? [msg]) : [msg]) this.pending.push({ from: name, to: ref.node, id: ref.id, msg: m });
      },
      stop: () => Promise.resolve(),
      monitor: () => () => {},
    };
    system.setRemote(router);
    this.systems.set(name, system);
    this.views.set(name, view);
    const locks = new GlobalLocks(system, view);
    this.locks.set(name, locks);
    return locks;
  }

  /** `a` sees `b` up (one side only). */
  up(a: string, b: string): void {
    this.views.get(a)!.setUp(b, true);
  }

  /** `a` and `b` see each other up. */
  link(a: string, b: string): void {
    this.up(a, b);
    this.up(b, a);
  }

  /** `a` sees `b` down (one side only); `a` drops what was in flight from `b`. */
  down(a: string, b: string): void {
    this.pending = this.pending.filter((p) => !(p.from === b && p.to === a));
    this.views.get(a)!.setUp(b, false);
  }

  /** Delivers pending casts (those `pick` accepts; the rest wait) until none is left to deliver. */
  async deliver(pick: (p: PendingCast) => boolean = () => true): Promise<void> {
    for (;;) {
      await settle();
      const i = this.pending.findIndex(pick);
      if (i < 0) return;
      const [p] = this.pending.splice(i, 1);
      this.systems.get(p!.to)?.cast({ node: p!.to, id: p!.id }, p!.msg);
    }
  }

  /** As `deliver`, and returns what it delivered, as `from>to type` lines. */
  async deliverLogged(pick: (p: PendingCast) => boolean = () => true): Promise<string[]> {
    const seen: string[] = [];
    await this.deliver((p) => {
      if (!pick(p)) return false;
      seen.push(`${p.from}>${p.to} ${decodeLockMsg(p.msg)?.t}`);
      return true;
    });
    return seen;
  }

  /** Links with something to deliver (to a live node that sees the sender up). */
  links(): [string, string][] {
    this.pending = this.pending.filter((p) => !this.dead.has(p.to));
    const out = new Map<string, [string, string]>();
    for (const p of this.pending) if (this.views.get(p.to)!.has(p.from)) out.set(`${p.from}>${p.to}`, [p.from, p.to]);
    return [...out.values()];
  }

  /** Delivers the oldest pending cast on one link (links stay FIFO, as TCP is). */
  deliverOne(from: string, to: string): void {
    const i = this.pending.findIndex((p) => p.from === from && p.to === to);
    if (i < 0) return;
    const [p] = this.pending.splice(i, 1);
    this.systems.get(p!.to)!.cast({ node: p!.to, id: p!.id }, p!.msg);
  }

  async close(): Promise<void> {
    for (const [name, l] of this.locks) {
      await l.close();
      await this.systems.get(name)!.close();
    }
  }
}

/**
 * The first resource `<tag>-<i>` whose coordinator over each node set is the one given:
 * `resourceFor('x', { 'A,B,C': 'A', 'B,C': 'C' })` is coordinated by A among A, B and C, and
 * by C once A is gone.
 */
export function resourceFor(tag: string, winners: Record<string, string>): string {
  for (let i = 0; ; i++) {
    const r = `${tag}-${i}`;
    const lk = resourceKey(r);
    if (Object.entries(winners).every(([set, want]) => rendezvous(lk, set.split(',')) === want)) return r;
  }
}

/** A, B, C all connected, and a resource A coordinates (and C, once A is gone). */
export function threeNodes(tag: string): { net: LockNet; r: string; A: GlobalLocks; B: GlobalLocks; C: GlobalLocks } {
  const net = new LockNet();
  const r = resourceFor(tag, { 'A,B,C': 'A', 'B,C': 'C' });
  const [A, B, C] = ['A', 'B', 'C'].map((n) => net.add(n)) as [GlobalLocks, GlobalLocks, GlobalLocks];
  net.link('A', 'B');
  net.link('A', 'C');
  net.link('B', 'C');
  return { net, r, A, B, C };
}
