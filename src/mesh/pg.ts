// Process groups: `node.pg`, as Erlang's `pg` (OTP 23+).
//
// DESIGN NOTE (for the maintainer; the user-facing version is docs/pg.md)
//
// Each node owns its local members and tells its peers; nobody else writes them. There is
// no global lock, no leader and no consensus: a group's members are the union of what every
// connected node says it has, and each node's part converges on every peer because it is
// sent whole on connect and as deltas after, over a link that keeps order.
//
// - Reads (`getMembers`, `getLocalMembers`, `whichGroups`) are synchronous lookups in this
//   node's tables, with no mailbox hop: pg's "optimised for speed" ETS reads. A group's
//   member list is built once after a change and then returned as a copy.
// - Writes of local members (`join`, `leave`, an actor going down) change the local table at
//   once and cast the delta to every connected peer. Remote deltas are applied as the link
//   delivers them (a runtime service, `ActorSystem.serve`: no mailbox hop, no wait for a
//   turn of the event loop), in arrival order; so anything a peer sent after a join (a
//   reply, a cast) finds the member already in this node's view, however busy its actors.
// - Only local actors join (as in pg, a process joins from its own node): a remote ref is
//   refused with InvalidOptionError. A ref may join a group more than once and then appears
//   that many times; `leave` removes one membership per ref listed (pg does the same).
// - Each local member is monitored once; when it stops or crashes it leaves every group
//   and the peers are told.
//
// Messages (casts to the service named after the scope, `pg` by default; version 1):
// - `sync{from, groups: [group, ids[]][], ask}`: the sender's whole local state. Sent to a
//   peer on its `nodeup` (both sides do it, which is pg's discover + sync in one step) and,
//   empty, on close. The receiver replaces everything it had from that peer, emitting the
//   diff. A scope created while peers are already connected sends it with `ask: true` (pg's
//   discover): each peer that runs the scope answers with its own sync.
// - `join{from, group, ids}` / `leave{from, group, ids}`: deltas of the sender's members.
//
//   A                              B
//   nodeup(B): sync(A's members) ──▶ replace A's part          (and B does the same to A)
//   join(g, x): join(g,[x]) ───────▶ add x to A's part of g
//   x crashes: leave(g,[x]) ───────▶ remove x
//   A goes down ...................▶ nodedown(A): drop A's part in one step
//
// Ordering: the mesh emits `nodeup(peer)` before delivering any message from it and keeps
// order per link, so a peer's sync always comes before its deltas. A delta from a peer this
// scope does not count as up (one delivered after its nodedown) is dropped, so a dead node's
// members cannot come back; after a reconnect the peer's fresh sync replaces its part.
//
// Failure handling: a message that is not well formed (another version, a bug) is dropped
// with a process warning; it never throws into the link, which stays up. A monitor callback
// that throws does not stop the others nor the table update (its error is rethrown apart).
// A peer that goes down takes its members with it in its `nodedown` listener, synchronously,
// before any listener registered after the node started.
//
// Partitions: each side sees only its own members; on heal, nodeup triggers the syncs and
// both views converge. Group names are strings; members are ActorRefs bound to this node's
// runtime (so `call`/`cast` on them work from here).
//
// Scopes (as pg's): `node.pg.scope('name')` is another, independent set of groups, served
// under the id `pg:name` on every node that uses it; the default scope's id is `pg`.
import { InvalidOptionError } from '../errors.js';
import type { ActorSystem } from '../actors/system.js';
import { isRefData, type ActorRef, type ActorRefData } from '../actors/ref.js';
import type { Membership } from './membership.js';

/** The default scope: also the well-known id of the scope's service on every node. */
export const PG_SCOPE = 'pg';

/** What `monitor(group, fn)` reports. */
export interface PgEvent {
  type: 'join' | 'leave';
  group: string;
  refs: ActorRef[];
}

type PgMsg =
  | { t: 'sync'; from: string; groups: [string, string[]][]; ask?: boolean }
  | { t: 'join'; from: string; group: string; ids: string[] }
  | { t: 'leave'; from: string; group: string; ids: string[] };

/** One local member: its ref, how many times it joined each group, and its monitor. */
interface LocalMember {
  ref: ActorRef;
  /** group -> join count (> 0). */
  groups: Map<string, number>;
  cancelMonitor: () => void;
}

export class ProcessGroups {
  readonly #self: string;
  readonly #system: ActorSystem;
  readonly #membership: Membership;
  readonly #scope: string;
  /** Well-known id of this scope's service on every node. */
  readonly #serviceId: string;
  /** Other scopes created through this one (`scope(name)`), closed with it. */
  readonly #scopes = new Map<string, ProcessGroups>();
  /** group -> local refs, with repeats for repeated joins. */
  readonly #local = new Map<string, ActorRef[]>();
  /** ref id -> local member. */
  readonly #members = new Map<string, LocalMember>();
  /** peer -> group -> that peer's refs. Only peers that are up. */
  readonly #remote = new Map<string, Map<string, ActorRef[]>>();
  /** Peers up, as this scope saw the events (messages from others are stale). */
  readonly #up = new Set<string>();
  /** group -> every member, built on the first read after a change. */
  readonly #cache = new Map<string, ActorRef[]>();
  /** group -> monitor callbacks. */
  readonly #monitors = new Map<string, Set<(e: PgEvent) => void>>();
  #closed = false;

  constructor(system: ActorSystem, membership: Membership, options: { scope?: string } = {}) {
    this.#self = membership.self;
    this.#system = system;
    this.#membership = membership;
    this.#scope = options.scope ?? PG_SCOPE;
    checkName('scope', this.#scope);
    this.#serviceId = this.#scope === PG_SCOPE ? PG_SCOPE : `${PG_SCOPE}:${this.#scope}`;
    // Deltas are handled as the link delivers them, in arrival order: no mailbox hop, so a
    // join is in this node's view (and its monitors have run) before the frame's turn ends.
    system.serve(this.#serviceId, this.#onMessage);
    membership.on('nodeup', this.#onNodeUp);
    membership.on('nodedown', this.#onNodeDown);
    // Peers already connected: they will not see a nodeup, so ask them for their state.
    for (const peer of membership.nodes()) this.#onNodeUp(peer, true);
  }

  /** The scope's name. */
  get name(): string {
    return this.#scope;
  }

  /**
   * Another scope: an independent set of groups (as pg's scopes), created on first use. Every
   * node that wants to see a scope's members uses it too; they converge as for the default one.
   */
  scope(name: string): ProcessGroups {
    checkName('scope', name);
    if (name === this.#scope) return this;
    if (this.#closed) throw new Error(`node ${this.#self} is closed`);
    let other = this.#scopes.get(name);
    if (!other) {
      other = new ProcessGroups(this.#system, this.#membership, { scope: name });
      this.#scopes.set(name, other);
    }
    return other;
  }

  /** Adds local actors to `group` (a ref or an array); each leaves by itself when it stops. */
  join(group: string, refs: ActorRefData | readonly ActorRefData[]): void {
    checkName('group', group);
    const list = this.#localRefs(refs);
    if (this.#closed) throw new Error(`node ${this.#self} is closed`);
    if (list.length === 0) return;
    // Peers first: the frames leave before the bookkeeping below and before this node's
    // monitors run, and a delta that a monitor sends in turn (a leave, say) follows this one.
    this.#broadcast({ t: 'join', from: this.#self, group, ids: list.map((r) => r.id) });
    let members = this.#local.get(group);
    if (!members) this.#local.set(group, (members = []));
    for (const ref of list) {
      members.push(ref);
      let m = this.#members.get(ref.id);
      if (!m) {
        m = { ref, groups: new Map(), cancelMonitor: () => {} };
        this.#members.set(ref.id, m);
        m.cancelMonitor = this.#system.monitor(ref, () => this.#onMemberDown(ref.id));
      }
      m.groups.set(group, (m.groups.get(group) ?? 0) + 1);
    }
    this.#changed(group, 'join', list);
  }

  /**
   * Removes one membership of each listed local actor from `group`. Returns false (as pg's
   * `not_joined`) when none of them was a member.
   */
  leave(group: string, refs: ActorRefData | readonly ActorRefData[]): boolean {
    checkName('group', group);
    const list = this.#localRefs(refs);
    const left: ActorRef[] = [];
    for (const ref of list) if (this.#leaveOne(group, ref.id)) left.push(ref);
    if (left.length === 0) return false;
    this.#broadcast({ t: 'leave', from: this.#self, group, ids: left.map((r) => r.id) });
    this.#changed(group, 'leave', left);
    return true;
  }

  /** Members of `group` on every node this node knows of (a fresh array). */
  getMembers(group: string): ActorRef[] {
    let all = this.#cache.get(group);
    if (!all) {
      all = [...(this.#local.get(group) ?? [])];
      for (const groups of this.#remote.values()) {
        const theirs = groups.get(group);
        if (theirs) all.push(...theirs);
      }
      this.#cache.set(group, all);
    }
    return all.slice();
  }

  /** Members of `group` on this node (a fresh array). */
  getLocalMembers(group: string): ActorRef[] {
    return [...(this.#local.get(group) ?? [])];
  }

  /** Groups with at least one member on any node this node knows of. */
  whichGroups(): string[] {
    const names = new Set(this.#local.keys());
    for (const groups of this.#remote.values()) for (const g of groups.keys()) names.add(g);
    return [...names];
  }

  /** Calls `fn` on every join to and leave from `group`, local or remote; returns an unsubscribe function. */
  monitor(group: string, fn: (e: PgEvent) => void): () => void {
    checkName('group', group);
    if (typeof fn !== 'function') throw new InvalidOptionError('fn', 'a function', fn);
    let set = this.#monitors.get(group);
    if (!set) this.#monitors.set(group, (set = new Set()));
    const own = (e: PgEvent): void => fn(e);
    set.add(own);
    return () => {
      const s = this.#monitors.get(group);
      if (!s) return;
      s.delete(own);
      if (s.size === 0) this.#monitors.delete(group);
    };
  }

  /** Leaves every group and tells the peers at once (before the node's links close). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const other of this.#scopes.values()) other.close();
    for (const m of this.#members.values()) m.cancelMonitor();
    for (const [group, refs] of [...this.#local]) {
      this.#local.delete(group);
      this.#changed(group, 'leave', refs);
    }
    this.#members.clear();
    this.#broadcast({ t: 'sync', from: this.#self, groups: [] });
    this.#membership.off('nodeup', this.#onNodeUp);
    this.#membership.off('nodedown', this.#onNodeDown);
  }

  #localRefs(refs: ActorRefData | readonly ActorRefData[]): ActorRef[] {
    const list = Array.isArray(refs) ? (refs as readonly ActorRefData[]) : [refs as ActorRefData];
    return list.map((ref) => {
      if (!isRefData(ref)) throw new InvalidOptionError('ref', 'an ActorRef (or an array of them)', ref);
      if (ref.node !== this.#self) {
        throw new InvalidOptionError('ref', `an actor of this node (${this.#self}); an actor joins from its own node`, `${ref.id}@${ref.node}`);
      }
      return this.#system.ref(ref);
    });
  }

  #leaveOne(group: string, id: string): boolean {
    const m = this.#members.get(id);
    const count = m?.groups.get(group);
    if (!m || count === undefined) return false;
    if (count > 1) m.groups.set(group, count - 1);
    else m.groups.delete(group);
    if (m.groups.size === 0) {
      m.cancelMonitor();
      this.#members.delete(id);
    }
    const members = this.#local.get(group)!;
    members.splice(members.findIndex((r) => r.id === id), 1);
    if (members.length === 0) this.#local.delete(group);
    return true;
  }

  // A local member stopped or crashed: it leaves every group it was in.
  #onMemberDown(id: string): void {
    const m = this.#members.get(id);
    if (!m || this.#closed) return;
    for (const [group, count] of [...m.groups]) {
      const left: ActorRef[] = [];
      for (let i = 0; i < count; i++) if (this.#leaveOne(group, id)) left.push(m.ref);
      this.#broadcast({ t: 'leave', from: this.#self, group, ids: left.map((r) => r.id) });
      this.#changed(group, 'leave', left);
    }
  }

  // A peer is up: send it our whole local state (its own sync comes to us the same way).
  #onNodeUp = (peer: string, ask = false): void => {
    if (peer === this.#self || this.#up.has(peer)) return;
    this.#up.add(peer);
    this.#remote.set(peer, new Map());
    if (!this.#closed) this.#syncTo(peer, ask);
  };

  #syncTo(peer: string, ask: boolean): void {
    const groups: [string, string[]][] = [...this.#local].map(([g, refs]) => [g, refs.map((r) => r.id)]);
    this.#system.castPlain({ node: peer, id: this.#serviceId }, { t: 'sync', from: this.#self, groups, ask } satisfies PgMsg);
  }

  // A peer is down: its members vanish in one step.
  #onNodeDown = (peer: string): void => {
    if (!this.#up.delete(peer)) return;
    const theirs = this.#remote.get(peer);
    this.#remote.delete(peer);
    if (theirs) for (const [group, refs] of theirs) this.#changed(group, 'leave', refs);
  };

  #onMessage = (msg: unknown): void => {
    // A malformed message (another version, a bug) is dropped; it never closes the link.
    if (!wellFormed(msg)) {
      process.emitWarning(`pg scope ${this.#scope} on ${this.#self}: dropped a malformed message`, { code: 'EXPIRABLE_STORE_PG_MSG' });
      return;
    }
    // Sent before its node went down (and waited in our mailbox): that node's part is gone.
    const theirs = this.#remote.get(msg.from);
    if (!theirs || !this.#up.has(msg.from)) return;
    switch (msg.t) {
      case 'sync':
        this.#onSync(msg.from, theirs, msg.groups);
        // A scope just created over there asks for ours.
        if (msg.ask === true && !this.#closed) this.#syncTo(msg.from, false);
        return;
      case 'join': {
        const refs = msg.ids.map((id) => this.#system.ref({ node: msg.from, id }));
        const list = theirs.get(msg.group);
        if (list) list.push(...refs);
        else theirs.set(msg.group, refs);
        return this.#changed(msg.group, 'join', refs);
      }
      case 'leave': {
        const list = theirs.get(msg.group);
        if (!list) return;
        const left: ActorRef[] = [];
        for (const id of msg.ids) {
          const i = list.findIndex((r) => r.id === id);
          if (i >= 0) left.push(...list.splice(i, 1));
        }
        if (list.length === 0) theirs.delete(msg.group);
        if (left.length > 0) this.#changed(msg.group, 'leave', left);
        return;
      }
    }
  };

  // A peer's whole local state replaces what we had from it; monitors hear the difference.
  #onSync(peer: string, old: Map<string, ActorRef[]>, groups: [string, string[]][]): void {
    const next = new Map<string, ActorRef[]>();
    for (const [group, ids] of groups) {
      if (ids.length > 0) next.set(group, ids.map((id) => this.#system.ref({ node: peer, id })));
    }
    this.#remote.set(peer, next);
    const names = new Set([...old.keys(), ...next.keys()]);
    for (const group of names) {
      const before = old.get(group) ?? [];
      const after = next.get(group) ?? [];
      const { added, removed } = diff(before, after);
      if (removed.length > 0) this.#changed(group, 'leave', removed);
      if (added.length > 0) this.#changed(group, 'join', added);
    }
  }

  #changed(group: string, type: 'join' | 'leave', refs: ActorRef[]): void {
    this.#cache.delete(group);
    const fns = this.#monitors.get(group);
    if (!fns || refs.length === 0) return;
    for (const fn of [...fns]) {
      try {
        fn({ type, group, refs: refs.slice() });
      } catch (err) {
        // A monitor that throws must not break the others nor the table update.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  #broadcast(msg: PgMsg): void {
    for (const peer of this.#up) this.#system.castPlain({ node: peer, id: this.#serviceId }, msg);
  }
}

function checkName(what: 'group' | 'scope', name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidOptionError(what, 'a non-empty string', name);
}

const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

function wellFormed(m: unknown): m is PgMsg {
  if (typeof m !== 'object' || m === null) return false;
  const msg = m as Record<string, unknown>;
  if (typeof msg.from !== 'string') return false;
  switch (msg.t) {
    case 'sync':
      return (
        Array.isArray(msg.groups) &&
        msg.groups.every((g) => Array.isArray(g) && typeof g[0] === 'string' && strings(g[1])) &&
        (msg.ask === undefined || typeof msg.ask === 'boolean')
      );
    case 'join':
    case 'leave':
      return typeof msg.group === 'string' && strings(msg.ids);
    default:
      return false;
  }
}

/** Multiset difference by ref id. */
function diff(before: ActorRef[], after: ActorRef[]): { added: ActorRef[]; removed: ActorRef[] } {
  const count = new Map<string, number>();
  for (const r of before) count.set(r.id, (count.get(r.id) ?? 0) + 1);
  const added: ActorRef[] = [];
  for (const r of after) {
    const c = count.get(r.id) ?? 0;
    if (c > 0) count.set(r.id, c - 1);
    else added.push(r);
  }
  const removed: ActorRef[] = [];
  for (const r of before) {
    const c = count.get(r.id) ?? 0;
    if (c > 0) {
      count.set(r.id, c - 1);
      removed.push(r);
    }
  }
  return { added, removed };
}
