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
//   node's table, with no mailbox hop: pg's "optimised for speed" ETS reads. A group's
//   members are kept in the order a read returns them, so a read is one copy.
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
// Tables (what a membership costs). A keyed expirable makes one group per key, 10k-100k of
// them, each with the same few actors (one per node that holds the key), so a membership
// must cost little more than the group's name. One map holds every group: group -> its one
// member's ref, or an array of refs sorted by node rank (this node 0, then peers in the
// order they came up; join order within a node, repeats included). Each actor has one
// record and one ref however many groups it is in; a local one also has its one monitor and
// its groups (a bare string while it is in one), so that it leaves them all when it stops.
// Arrays shorter than 16 are never changed but replaced, and groups with equal ones share
// one (an array is shared only if each of its members is in another group too). Measured
// on 2 nodes, one actor each in 100k groups: about 55 bytes of heap per (group, member) on
// each node, the group's name included (about 300 with a map per peer, a list per group,
// a read cache and a ref per membership). The price: no index of a peer's groups, so its
// nodedown (or a sync that replaces a part already held) takes one pass over the groups,
// skipped when the peer has no member; a peer's part of a group is found by binary search.
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

/** What a scope holds now (`debugCounts()`), for leak tests and sizing. */
export interface PgCounts {
  /** Groups with at least one member on a node this node knows of. */
  groups: number;
  /** Memberships (a group and an actor, repeats counted) of this node's actors. */
  localMemberships: number;
  /** Memberships of the connected peers' actors, as this node holds them. */
  remoteMemberships: number;
  /** This node's actors in at least one group: one record and one monitor each. */
  localActors: number;
  /** The peers' actors in at least one group: one record each. */
  remoteActors: number;
  /** Member arrays shared by groups with the same members. */
  sharedLists: number;
}

type PgMsg =
  | { t: 'sync'; from: string; groups: [string, string[]][]; ask?: boolean }
  | { t: 'join'; from: string; group: string; ids: string[] }
  | { t: 'leave'; from: string; group: string; ids: string[] };

/** One node's part of the groups: this node's own, or a peer's while it is up. */
interface Part {
  readonly node: string;
  /**
   * Where this node's members stand in `getMembers`: 0 for this node, then peers in the
   * order they came up (a peer that comes back is last again).
   */
  readonly rank: number;
  /** actor id -> its record, for each actor of this node in at least one group. */
  readonly actors: Map<string, Member>;
  /** Memberships of this node's actors, repeats counted; 0: nothing of it in any group. */
  memberships: number;
}

/** An actor in at least one group: one record and one ref however many groups it is in. */
class Member {
  /** The one ref of this actor that every group holds (so a group finds it by identity). */
  readonly ref: ActorRef;
  readonly part: Part;
  /** Memberships, repeats counted; the record is dropped (and its monitor cancelled) at 0. */
  uses = 0;
  /** Local members only: the groups it is in, a bare string while it is in one. */
  groups: string | Set<string> | undefined = undefined;
  /** Local members only: cancels the one monitor of the actor. */
  cancel: (() => void) | undefined = undefined;

  constructor(ref: ActorRef, part: Part) {
    this.ref = ref;
    this.part = part;
  }
}

/**
 * A group's members, kept as the one member's ref itself or an array of 2 or more, in
 * `getMembers` order: sorted by part rank, join order within a part, so that a read is one
 * copy. Below this length an array is never changed: a change makes another one, of exactly
 * its length (a grown array keeps room for 16 more), and groups with the same members share
 * one (see `#shared`). Longer arrays, rare, are changed in place and never shared.
 */
type Roster = ActorRef | ActorRef[];
const IN_PLACE = 16;

export class ProcessGroups {
  readonly #self: string;
  readonly #system: ActorSystem;
  readonly #membership: Membership;
  readonly #scope: string;
  /** Well-known id of this scope's service on every node. */
  readonly #serviceId: string;
  /** Other scopes created through this one (`scope(name)`), closed with it. */
  readonly #scopes = new Map<string, ProcessGroups>();
  /**
   * group -> its members on every node this node knows of. The one table of memberships:
   * no per-group maps, sets, caches or closures, so a group costs one entry here, its name
   * and, with 2+ members that no other group has, one small array. A group with no member
   * has no entry.
   */
  readonly #groups = new Map<string, Roster>();
  /** This node's part (rank 0). */
  readonly #local: Part;
  /** peer -> its part. Exactly the peers up, as this scope saw the events (messages from others are stale). */
  readonly #peers = new Map<string, Part>();
  /**
   * Key of the members (`keyOf`) -> the one array of them that groups share, and how many
   * groups hold it (it goes at 0). With the same few actors in every group, as a keyed
   * expirable's, a node holds a handful of arrays however many groups there are.
   */
  readonly #shared = new Map<string, { list: ActorRef[]; uses: number }>();
  /** Rank of the last peer that came up. */
  #lastRank = 0;
  /** group -> monitor callbacks. */
  readonly #monitors = new Map<string, Set<(e: PgEvent) => void>>();
  #closed = false;

  constructor(system: ActorSystem, membership: Membership, options: { scope?: string } = {}) {
    this.#self = membership.self;
    this.#local = { node: this.#self, rank: 0, actors: new Map(), memberships: 0 };
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
    // Compiled now (a no-op: no part, no group) rather than on the first nodedown, whose
    // cleanup runs ahead of every later nodedown listener: V8 compiles a function when it
    // is first called, about 0.1 ms here.
    this.#dropPart({ node: '', rank: 0, actors: new Map(), memberships: 0 });
    this.#segment([], this.#local);
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
    const members = list.map((ref) => this.#localMember(ref));
    const work = this.#edit(group);
    for (const m of members) {
      this.#insert(work, m);
      addGroup(m, group);
    }
    this.#store(group, work);
    this.#changed(group, 'join', members.map(refOf));
  }

  /**
   * Removes one membership of each listed local actor from `group`. Returns false (as pg's
   * `not_joined`) when none of them was a member.
   */
  leave(group: string, refs: ActorRefData | readonly ActorRefData[]): boolean {
    checkName('group', group);
    const list = this.#localRefs(refs);
    if (!this.#groups.has(group)) return false;
    const work = this.#edit(group);
    const left: Member[] = [];
    for (const ref of list) {
      const m = this.#local.actors.get(ref.id);
      const i = m ? work.indexOf(m.ref) : -1;
      if (i < 0) continue;
      work.splice(i, 1);
      if (!work.includes(m!.ref)) removeGroup(m!, group);
      left.push(m!);
    }
    if (left.length === 0) return false;
    this.#store(group, work);
    for (const m of left) release(m, 1);
    this.#broadcast({ t: 'leave', from: this.#self, group, ids: left.map((m) => m.ref.id) });
    this.#changed(group, 'leave', left.map(refOf));
    return true;
  }

  /** Members of `group` on every node this node knows of (a fresh array). */
  getMembers(group: string): ActorRef[] {
    const r = this.#groups.get(group);
    if (r === undefined) return [];
    return Array.isArray(r) ? r.slice() : [r];
  }

  /** Members of `group` on this node (a fresh array). */
  getLocalMembers(group: string): ActorRef[] {
    const r = this.#groups.get(group);
    if (r === undefined) return [];
    if (!Array.isArray(r)) return r.node === this.#self ? [r] : [];
    // This node's members come first (rank 0).
    return r.slice(0, this.#after(r, 0));
  }

  /** Groups with at least one member on any node this node knows of. */
  whichGroups(): string[] {
    return [...this.#groups.keys()];
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

  /** What this scope holds now, counted from its tables: for leak tests and sizing. */
  debugCounts(): PgCounts {
    let remoteMemberships = 0;
    let remoteActors = 0;
    for (const part of this.#peers.values()) {
      remoteMemberships += part.memberships;
      remoteActors += part.actors.size;
    }
    return {
      groups: this.#groups.size,
      localMemberships: this.#local.memberships,
      remoteMemberships,
      localActors: this.#local.actors.size,
      remoteActors,
      sharedLists: this.#shared.size,
    };
  }

  /** Leaves every group and tells the peers at once (before the node's links close). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const other of this.#scopes.values()) other.close();
    for (const m of this.#local.actors.values()) m.cancel?.();
    const left = this.#dropPart(this.#local);
    for (const [group, refs] of left) this.#changed(group, 'leave', refs);
    this.#broadcast({ t: 'sync', from: this.#self, groups: [] });
    this.#membership.off('nodeup', this.#onNodeUp);
    this.#membership.off('nodedown', this.#onNodeDown);
  }

  #localRefs(refs: ActorRefData | readonly ActorRefData[]): readonly ActorRefData[] {
    const list = Array.isArray(refs) ? (refs as readonly ActorRefData[]) : [refs as ActorRefData];
    for (const ref of list) {
      if (!isRefData(ref)) throw new InvalidOptionError('ref', 'an ActorRef (or an array of them)', ref);
      if (ref.node !== this.#self) {
        throw new InvalidOptionError('ref', `an actor of this node (${this.#self}); an actor joins from its own node`, `${ref.id}@${ref.node}`);
      }
    }
    return list;
  }

  // The record of a local actor, made (with its one monitor) on its first join.
  #localMember(data: ActorRefData): Member {
    const m = this.#local.actors.get(data.id);
    if (m) return m;
    const member = new Member(this.#system.ref(data), this.#local);
    this.#local.actors.set(data.id, member);
    member.cancel = this.#system.monitor(data, () => this.#onMemberDown(member));
    return member;
  }

  // The record of a peer's actor, made on its first membership.
  #remoteMember(part: Part, id: string): Member {
    let m = part.actors.get(id);
    if (!m) part.actors.set(id, (m = new Member(this.#system.ref({ node: part.node, id }), part)));
    return m;
  }

  #memberOf(ref: ActorRef): Member | undefined {
    return (ref.node === this.#self ? this.#local : this.#peers.get(ref.node))?.actors.get(ref.id);
  }

  #rank(ref: ActorRef): number {
    return ref.node === this.#self ? 0 : (this.#peers.get(ref.node)?.rank ?? Infinity);
  }

  /** Index of the first ref in `list` whose part ranks after `rank` (binary search). */
  #after(list: readonly ActorRef[], rank: number): number {
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#rank(list[mid]!) > rank) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Where `part`'s members are in `list`: [start, end). */
  #segment(list: readonly ActorRef[], part: Part): [number, number] {
    // Ranks are integers: the first that does not rank before this part is the first after rank - 1.
    return [this.#after(list, part.rank - 1), this.#after(list, part.rank)];
  }

  // One more membership of `m`: after the last member whose part ranks no later than its own.
  #insert(work: ActorRef[], m: Member): void {
    const i = this.#after(work, m.part.rank);
    if (i === work.length) work.push(m.ref);
    else work.splice(i, 0, m.ref);
    m.uses++;
    m.part.memberships++;
  }

  /** A group's members as an array this call may change; hand it back with `#store`. */
  #edit(group: string): ActorRef[] {
    const r = this.#groups.get(group);
    if (r === undefined) return [];
    if (!Array.isArray(r)) return [r];
    return r.length >= IN_PLACE ? r : r.slice();
  }

  #store(group: string, work: ActorRef[]): void {
    const old = this.#groups.get(group);
    if (work.length === 0) this.#groups.delete(group);
    else if (work.length === 1) this.#groups.set(group, work[0]!);
    else this.#groups.set(group, work.length >= IN_PLACE ? work : this.#share(work));
    // After the new one is taken: a group left as it was keeps its array.
    if (Array.isArray(old) && old.length < IN_PLACE) this.#unshare(old);
  }

  // The shared array with these members, or a copy of exactly its length when no other group
  // can have the same ones (one of them is in no other group).
  #share(work: ActorRef[]): ActorRef[] {
    for (const ref of work) if ((this.#memberOf(ref)?.uses ?? 0) <= occurrences(work, ref)) return work.slice();
    const key = keyOf(work);
    let s = this.#shared.get(key);
    if (!s) this.#shared.set(key, (s = { list: work.slice(), uses: 0 }));
    s.uses++;
    return s.list;
  }

  // A group no longer holds `list`: one use fewer, if it is a shared one.
  #unshare(list: ActorRef[]): void {
    const key = keyOf(list);
    const s = this.#shared.get(key);
    if (s?.list === list && --s.uses === 0) this.#shared.delete(key);
  }

  /**
   * Takes every member of `part` out of every group, in one pass over the groups (none when
   * the part holds nothing), and drops their records. Returns each group's removed refs, so
   * that monitors run once the whole part is gone. Call it while the part is still listed.
   */
  #dropPart(part: Part): [string, ActorRef[]][] {
    const out: [string, ActorRef[]][] = [];
    let left = part.memberships;
    for (const [group, r] of this.#groups) {
      if (left === 0) break;
      if (!Array.isArray(r)) {
        if (r.node !== part.node) continue;
        this.#groups.delete(group);
        out.push([group, [r]]);
        left--;
        continue;
      }
      const [start, end] = this.#segment(r, part);
      if (start === end) continue;
      const work = this.#edit(group);
      const removed = work.splice(start, end - start);
      this.#store(group, work);
      out.push([group, removed]);
      left -= removed.length;
    }
    part.memberships = 0;
    part.actors.clear();
    return out;
  }

  // A local member stopped or crashed: it leaves every group it was in.
  #onMemberDown(m: Member): void {
    if (this.#closed || this.#local.actors.get(m.ref.id) !== m) return;
    const groups = m.groups === undefined ? [] : typeof m.groups === 'string' ? [m.groups] : [...m.groups];
    for (const group of groups) {
      const work = this.#edit(group);
      const left: ActorRef[] = [];
      for (let i = work.indexOf(m.ref); i >= 0; i = work.indexOf(m.ref, i)) {
        work.splice(i, 1);
        left.push(m.ref);
      }
      this.#store(group, work);
      removeGroup(m, group);
      if (left.length === 0) continue;
      release(m, left.length);
      this.#broadcast({ t: 'leave', from: this.#self, group, ids: left.map((r) => r.id) });
      this.#changed(group, 'leave', left);
    }
  }

  // A peer is up: send it our whole local state (its own sync comes to us the same way).
  #onNodeUp = (peer: string, ask = false): void => {
    if (peer === this.#self || this.#peers.has(peer)) return;
    this.#peers.set(peer, { node: peer, rank: ++this.#lastRank, actors: new Map(), memberships: 0 });
    if (!this.#closed) this.#syncTo(peer, ask);
  };

  #syncTo(peer: string, ask: boolean): void {
    const groups: [string, string[]][] = [];
    if (this.#local.memberships > 0) {
      for (const [group, r] of this.#groups) {
        if (!Array.isArray(r)) {
          if (r.node === this.#self) groups.push([group, [r.id]]);
        } else if (r[0]!.node === this.#self) {
          groups.push([group, r.slice(0, this.#after(r, 0)).map((x) => x.id)]);
        }
      }
    }
    this.#system.castPlain({ node: peer, id: this.#serviceId }, { t: 'sync', from: this.#self, groups, ask } satisfies PgMsg);
  }

  // A peer is down: its members vanish in one step, before any monitor hears of it.
  #onNodeDown = (peer: string): void => {
    const part = this.#peers.get(peer);
    if (!part) return;
    const left = this.#dropPart(part);
    this.#peers.delete(peer);
    for (const [group, refs] of left) this.#changed(group, 'leave', refs);
  };

  #onMessage = (msg: unknown): void => {
    // A malformed message (another version, a bug) is dropped; it never closes the link.
    if (!wellFormed(msg)) {
      process.emitWarning(`pg scope ${this.#scope} on ${this.#self}: dropped a malformed message`, { code: 'EXPIRABLE_STORE_PG_MSG' });
      return;
    }
    // Delivered after its node's nodedown here: that node's part is gone.
    const part = this.#peers.get(msg.from);
    if (!part) return;
    switch (msg.t) {
      case 'sync':
        this.#onSync(part, msg.groups);
        // A scope just created over there asks for ours.
        if (msg.ask === true && !this.#closed) this.#syncTo(msg.from, false);
        return;
      case 'join': {
        if (msg.ids.length === 0) return;
        const members = msg.ids.map((id) => this.#remoteMember(part, id));
        const work = this.#edit(msg.group);
        for (const m of members) this.#insert(work, m);
        this.#store(msg.group, work);
        return this.#changed(msg.group, 'join', members.map(refOf));
      }
      case 'leave': {
        if (!this.#groups.has(msg.group)) return;
        const work = this.#edit(msg.group);
        const left: Member[] = [];
        for (const id of msg.ids) {
          const m = part.actors.get(id);
          const i = m ? work.indexOf(m.ref) : -1;
          if (i < 0) continue;
          work.splice(i, 1);
          left.push(m!);
        }
        if (left.length === 0) return;
        this.#store(msg.group, work);
        for (const m of left) release(m, 1);
        return this.#changed(msg.group, 'leave', left.map(refOf));
      }
    }
  };

  // A peer's whole local state replaces what we had from it; monitors hear the difference,
  // once the whole state is in place.
  #onSync(part: Part, groups: [string, string[]][]): void {
    const next = new Map<string, string[]>();
    for (const [group, ids] of groups) if (ids.length > 0) next.set(group, ids);
    // What the peer had (usually nothing: a sync follows its nodeup).
    const old = new Map<string, ActorRef[]>();
    if (part.memberships > 0) {
      for (const [group, r] of this.#groups) {
        const list = Array.isArray(r) ? r : [r];
        const [start, end] = this.#segment(list, part);
        if (start < end) old.set(group, list.slice(start, end));
      }
    }
    const events: [string, 'join' | 'leave', ActorRef[]][] = [];
    for (const group of new Set([...old.keys(), ...next.keys()])) {
      const before = old.get(group) ?? [];
      // The new memberships are taken before the old ones are released: an actor in both
      // keeps its record (and its ref).
      const after = (next.get(group) ?? []).map((id) => this.#remoteMember(part, id));
      const work = this.#edit(group);
      const [start, end] = this.#segment(work, part);
      work.splice(start, end - start);
      for (const m of after) this.#insert(work, m);
      this.#store(group, work);
      for (const ref of before) release(this.#memberOf(ref)!, 1);
      const { added, removed } = diff(before, after.map(refOf));
      if (removed.length > 0) events.push([group, 'leave', removed]);
      if (added.length > 0) events.push([group, 'join', added]);
    }
    for (const [group, type, refs] of events) this.#changed(group, type, refs);
  }

  #changed(group: string, type: 'join' | 'leave', refs: ActorRef[]): void {
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
    for (const peer of this.#peers.keys()) this.#system.castPlain({ node: peer, id: this.#serviceId }, msg);
  }
}

const refOf = (m: Member): ActorRef => m.ref;
/**
 * Names a list of members: node and id of each, each led by its length, so that no two
 * lists share a key whatever their strings hold (ids come from peers' messages).
 */
const keyOf = (list: readonly ActorRef[]): string => list.map((r) => `${r.node.length}:${r.node}${r.id.length}:${r.id}`).join('');

function occurrences(list: readonly ActorRef[], ref: ActorRef): number {
  let n = 0;
  for (const x of list) if (x === ref) n++;
  return n;
}

// n memberships of `m` are gone; at none left, so is its record (and its monitor).
function release(m: Member, n: number): void {
  m.uses -= n;
  m.part.memberships -= n;
  if (m.uses > 0) return;
  if (m.part.actors.get(m.ref.id) === m) m.part.actors.delete(m.ref.id);
  m.cancel?.();
}

function addGroup(m: Member, group: string): void {
  if (m.groups === undefined) m.groups = group;
  else if (typeof m.groups === 'string') {
    if (m.groups !== group) m.groups = new Set([m.groups, group]);
  } else m.groups.add(group);
}

function removeGroup(m: Member, group: string): void {
  if (m.groups === group) m.groups = undefined;
  else if (typeof m.groups === 'object') {
    m.groups.delete(group);
    // Back to a bare string at one group: a Set costs some 150 bytes even when small.
    if (m.groups.size === 1) m.groups = m.groups.values().next().value as string;
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
