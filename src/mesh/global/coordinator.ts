// The coordinator side of the lock service: for each lock this node coordinates, who holds
// it and who waits, in arrival order. Pure protocol logic; the service (./service.ts) gives
// it a way to send messages and its view of the cluster. See ./index.ts for the design.
//
// Invariants of an entry:
// - It exists only while this node is the lock's rendezvous winner in its own view. When a
//   view change makes another node the winner, the entry is pushed there (`handoff`) and
//   dropped. Pushing, not just dropping, matters when the new winner is not connected yet to
//   the holder's node (a node joining the mesh): only we can tell it who holds the lock.
// - It grants only when it has authority: after its recovery round has heard from every
//   connected node (`round === undefined`), and only while `holders` is empty.
// - Or the survey of this node's view gave it authority over every lock nobody named: once
//   per view change, every connected node is asked (`inquireAll`) for the locks it holds,
//   waits for or keeps leased, its highest token and its view. When all have answered, all
//   in this node's view, a lock that none of them named, that this node has no record of and
//   wins, has no holder, no waiter and no token above the node's token memory anywhere
//   (every later request for it comes here: the views agree), so its entry starts with
//   authority and no round. A lock named in the survey, or one whose record this node
//   surrendered to another node's round since (views that disagree again), runs its round
//   as before. A view change ends that authority until the next survey has ended; a survey
//   that met another view is tried again when the node whose view differed surveys in ours.
// - A holder learned second-hand (from a handoff or an old coordinator's report) is verified
//   with its own node, which releases it if it no longer holds it: a record that crossed a
//   release on the way cannot block the lock.
// - Once nobody holds it or waits for it (idle), it is kept whole only while it is among the
//   WARM_IDLE most recently idle (a lock taken again soon skips rebuilding it); then it is
//   dropped and an idle record (IdleLock) kept in its place: the key and a shared value, no
//   object of its own. The record keeps the entry's authority (the next request is granted
//   at once, with no round) and its grant streak; the entry's last token goes to the node's
//   TokenMemory, which stays at or above it, so a lock whose record is dropped too (beyond
//   MAX_IDLE idle locks) still never gets a lower token. An idle record ends where an entry
//   would: when another node wins the lock, and on another node's recovery round (`inquire`).
// - `holders` has one entry in normal operation, or the requests of one run (consecutive
//   waiters of one node, granted together; their node lets one hold at a time); several
//   of different nodes only when a healed partition or a takeover reveals them. Nobody is
//   granted until all of them have released.
// - A lease is a lone holder granted with `lease > 0` (./messages.ts): its node may hold the
//   lock idle between calls and re-take it with the reserved tokens, so `last` already
//   counts them. Whenever someone waits behind a lease it is revoked (once); a `retries`
//   request that only a lease (maybe idle) would refuse waits for the lease's answer.
import {
  MAX_HOPS,
  recordParts,
  type AcquireMsg,
  type CoordinatorMsg,
  type DeclineMsg,
  type HandoffMsg,
  type LockMsg,
  type ProbeMsg,
  type ReleaseMsg,
  type ReportMsg,
  type ReqId,
  type BusyMsg,
  type DisownMsg,
  type ReportAllMsg,
  type WireHolder,
  type WireWaiter,
} from './messages.js';
import { clockToken, nextToken, TOKENS_PER_MS, type TokenMemory } from './fencing.js';
import { monotonicNow } from '../../util/clock.js';

/** What a coordinator needs from the node it runs on. */
export interface CoordinatorContext {
  readonly self: string;
  send(node: string, msg: LockMsg): void;
  /** The lock's rendezvous winner among the live nodes of `set` (null: every live node). */
  winner(lk: string, set: string[] | null): string | undefined;
  /** Live peers, self excluded. */
  peers(): Iterable<string>;
  /** True for self and every live peer. */
  isUp(node: string): boolean;
  /** True for a node this node has seen up at some time (so, if not up now, it went down). */
  seen(node: string): boolean;
  readonly tokens: TokenMemory;
  /** This node's own requests for `lk`, which now answer to `coordinator`. */
  localReport(lk: string, coordinator: string): { holders: WireHolder[]; waiters: WireWaiter[] };
  /** The locks this node's requester holds, waits for or keeps leased. */
  localLocks(): Iterable<string>;
  /** This node's view as one text (messages.ts viewKey). */
  view(): string;
  /** Called on every grant this node makes, with the time the grantee waited in its queue. */
  onGrant?(lk: string, waitedMs: number, handoff: boolean): void;
}

interface Holder {
  node: string;
  token: number;
  since: number;
  /** Its node is not connected to us yet: kept until it connects, or dropped after the grace. */
  unseen?: NodeJS.Timeout;
  /** Granted as a lease: its node may hold it idle, so a waiter behind it makes us revoke it. */
  lease?: boolean;
  /** The revoke has been sent. */
  revoked?: boolean;
  /** Its node answered `busy`: a call runs under it (it is no idle lease). */
  busy?: boolean;
}

/**
 * How long a holder reported on a node we have never been connected to is trusted (ms): a
 * live node joins the full mesh well within this; a dead one never does, and its lock must
 * not stay blocked forever.
 */
export const UNSEEN_HOLDER_GRACE_MS = 10_000;

interface Waiter {
  req: ReqId;
  node: string;
  since: number;
  /** Refuse at authority time if more than this many are ahead (fresh requests only). */
  retries: number | null;
  /** Monotonic ms when queued here, for the wait time. */
  queuedAt: number;
  /** The token of the grant it declined, when it went back to the head of the queue. */
  declined?: number;
  /** It accepts a lease. */
  lease?: boolean;
}

interface Survey {
  id: number;
  /** This node's view when the survey started. */
  view: string;
  /** Peers that have not answered (all parts) yet. */
  pending: Set<string>;
  /** Peers that answered in another view. */
  differed: Set<string>;
  /** One of those has surveyed in our view since (its view caught up): run again when this one ends. */
  again: boolean;
}

interface Round {
  id: number;
  /** Peers that have not reported yet. */
  pending: Set<string>;
  /** Requests released or cancelled during the round: a late report must not bring them back. */
  released: Set<ReqId>;
  /** Grants declined during the round (req -> token): a report of that holder means "waiting". */
  declined: Map<ReqId, number>;
}

/**
 * What is kept of a lock coordinated here that nobody holds or waits for. Its key and this
 * value are all: for the default node set the value is shared by every idle lock with the
 * same streak (#idleValue), so an idle lock costs its key and one map slot.
 */
interface IdleLock {
  readonly set: string[] | null;
  readonly streakNode: string | undefined;
  /** Capped at LEASE_STREAK: all a lease asks is whether the streak reached it. */
  readonly streak: number;
}

const NO_STREAK: IdleLock = Object.freeze({ set: null, streakNode: undefined, streak: 0 });

/** Distinct grantee nodes whose shared idle values are kept; beyond, the table starts again. */
const MAX_IDLE_VALUE_NODES = 1024;

interface Entry {
  readonly lk: string;
  readonly set: string[] | null;
  /** req -> holder; size 1 in normal operation. */
  readonly holders: Map<ReqId, Holder>;
  /** Waiters in the order they will be served. */
  queue: Waiter[];
  /** Highest token granted or learned for this lock. */
  last: number;
  /** Set while the recovery round runs: no grant until it ends. */
  round: Round | undefined;
  /** The node of the latest grants, and how many in a row went to it (leases follow a streak). */
  streakNode: string | undefined;
  streak: number;
  /** Some waiter's `retries` waits for a lease's answer (see #afterQueued). */
  undecided: boolean;
  /** A lease was granted since the holders were last found to hold none (see #afterQueued). */
  mayHaveLease: boolean;
}

export interface QueueInfo {
  /** The lock's canonical key (resource text; for an explicit node set, the set and that text). */
  lock: string;
  holders: number;
  /** Of the holders, leases (their node may hold the lock idle until revoked). */
  leased: number;
  waiting: number;
}

export interface CoordinatorStats {
  /** Grants made by this node as coordinator. */
  grants: number;
  /** Of those, grants to a waiter when the lock was let go (one message, no retry), run members included. */
  handoffs: number;
  /** Runs granted: two or more consecutive waiters of one node granted together. */
  runs: number;
  /** Recovery rounds started. */
  rounds: number;
  /** Surveys started (one per view change, and again when views came to agree). */
  surveys: number;
  /** Locks taken on with authority from the survey, with no recovery round. */
  surveyed: number;
  /** Records pushed to a new winner. */
  handedOver: number;
  /** Requests refused because of `retries`. */
  refused: number;
  /** Grants made as leases. */
  leases: number;
  /** Leases revoked because another request waited. */
  revokes: number;
  /** Messages forwarded to the coordinator of this node's view. */
  forwarded: number;
  /** Locks coordinated now (with or without holders). */
  locks: number;
}

/** The longest run of one node's consecutive waiters granted together (see #grantNext). */
export const MAX_RUN = 256;

/**
 * A lone grant to a node that took this lock the last LEASE_STREAK times in a row, with
 * nobody waiting, is a lease: the node keeps the lock between its calls until revoked. A
 * lock that moves between nodes is never leased, so it never pays a revoke.
 */
export const LEASE_STREAK = 3;

/** Fencing tokens reserved with a lease: local re-takes before the node must ask again. */
export const LEASE_TOKENS = 256;

/**
 * How many idle locks (no holder, nobody waiting) keep their authority for a fast next
 * acquire (no recovery round); the one idle longest is dropped first.
 */
export const MAX_IDLE = 10_000;

/** Of those, how many (the most recently idle) keep their whole entry; the others a compact record. */
export const WARM_IDLE = 64;

export class Coordinator {
  readonly #ctx: CoordinatorContext;
  /** lk -> entry, for the locks this node coordinates that are held, waited for, in a round, or warm. */
  readonly #entries = new Map<string, Entry>();
  /**
   * The entries of #entries that went idle most recently (at most WARM_IDLE), oldest first.
   * One may be held again meanwhile: it leaves when it is the oldest, and comes back when idle.
   */
  readonly #warm = new Set<Entry>();
  /** The entry last added to #warm (adding it again would change nothing). */
  #youngest: Entry | undefined = undefined;
  /**
   * lk -> idle record, for the other idle locks this node coordinates with authority, in the
   * order they were compacted (the oldest is dropped first, beyond MAX_IDLE - WARM_IDLE). A
   * lock is in at most one of #entries and #idle.
   */
  readonly #idle = new Map<string, IdleLock>();
  /** Grantee node -> the shared idle values of the default node set, by streak (see IdleLock). */
  #idleValues = new Map<string, IdleLock[]>();
  /** Forward target -> locks forwarded there: if it goes down, probe them so state is rebuilt. */
  readonly #watches = new Map<string, Map<string, string[] | null>>();
  #roundSeq = 0;
  /** Locks we handed on while our round for them ran: a late report gets `moved` (bounded). */
  readonly #handedOn = new Set<string>();
  readonly #stats = { grants: 0, handoffs: 0, runs: 0, rounds: 0, surveys: 0, surveyed: 0, handedOver: 0, refused: 0, leases: 0, revokes: 0, forwarded: 0 };
  /** The survey of this node's view under way (see the top of this file). */
  #survey: Survey | undefined = undefined;
  /** The last survey ended with every node answering in this node's view, and the view has not changed since. */
  #authority = false;
  /** Locks named in the last survey, or surrendered since: they take a recovery round. */
  #named = new Set<string>();
  /** Nodes whose view differed from ours in the last survey: a survey of theirs in our view starts ours again. */
  #differed = new Set<string>();
  /** More than MAX_IDLE locks were named since the survey started: no authority until the next one. */
  #overflowed = false;

  constructor(ctx: CoordinatorContext) {
    this.#ctx = ctx;
  }

  stats(): CoordinatorStats {
    return { ...this.#stats, locks: this.#entries.size + this.#idle.size };
  }

  /** Records kept now, for diagnostics (./diagnostics.ts LockMemory). */
  memory(): { active: number; warm: number; idle: number; idleValues: number; handedOn: number; watched: number; named: number } {
    let idleValues = 0;
    for (const values of this.#idleValues.values()) for (const v of values) if (v !== undefined) idleValues++;
    for (const v of this.#idle.values()) if (v.set !== null) idleValues++;
    let watched = 0;
    for (const w of this.#watches.values()) watched += w.size;
    let warm = 0;
    for (const e of this.#warm) if (this.#isIdle(e)) warm++;
    return { active: this.#entries.size - warm, warm, idle: this.#idle.size, idleValues, handedOn: this.#handedOn.size, watched, named: this.#named.size };
  }

  /** Locks coordinated here that are held or waited for. */
  queues(): QueueInfo[] {
    const out: QueueInfo[] = [];
    for (const e of this.#entries.values()) {
      if (e.holders.size > 0 || e.queue.length > 0) {
        let leased = 0;
        for (const h of e.holders.values()) if (h.lease) leased++;
        out.push({ lock: e.lk, holders: e.holders.size, leased, waiting: e.queue.length });
      }
    }
    return out;
  }

  handle(msg: CoordinatorMsg): void {
    switch (msg.t) {
      case 'acquire':
        this.#onAcquire(msg);
        break;
      case 'release':
        this.#onRelease(msg);
        break;
      case 'decline':
        this.#onDecline(msg);
        break;
      case 'probe':
        this.#onProbe(msg);
        break;
      case 'report':
        this.#onReport(msg);
        break;
      case 'handoff':
        this.#onHandoff(msg);
        break;
      case 'busy':
        this.#onBusy(msg);
        break;
      case 'disown':
        this.#onDisown(msg);
        break;
      case 'reportAll':
        this.#onReportAll(msg);
        return;
    }
    const e = this.#entries.get(msg.lk);
    if (e === undefined) return;
    // A round that waits for nobody (a cluster of one, or every peer answered) ends here.
    if (e.round) this.#maybeFinish(e);
    if (e.round === undefined && e.queue.length > 0 && e.holders.size > 0) this.#afterQueued(e);
    this.#idleIfFree(e);
  }

  // Someone waits behind the holders: revoke the leases among them (once each), and decide
  // the `retries` requests that waited for a lease's answer once no holder may be idle.
  #afterQueued(e: Entry): void {
    // Most of the time (contention included) there is no lease: skip the scan of the holders.
    if (!e.mayHaveLease && !e.undecided) return;
    let leased = false;
    let maybeIdle = false;
    for (const [req, h] of e.holders) {
      if (!h.lease) continue;
      leased = true;
      if (h.busy) continue;
      maybeIdle = true;
      if (h.revoked) continue;
      h.revoked = true;
      this.#stats.revokes++;
      this.#ctx.send(h.node, { t: 'revoke', from: this.#ctx.self, lk: e.lk, req });
    }
    e.mayHaveLease = leased;
    if (maybeIdle || !e.undecided) return;
    e.undecided = false;
    for (let i = 0; i < e.queue.length; i++) {
      const w = e.queue[i]!;
      if (w.retries === null) continue;
      const ahead = e.holders.size + i;
      if (ahead > w.retries) {
        e.queue.splice(i--, 1);
        this.#refuse(e, w.req, w.node, ahead);
      } else {
        w.retries = null;
      }
    }
  }

  // A request that registered here (or refused our grant) while it answered to another
  // coordinator (views that disagreed) is done: forget it as holder, unless we hold a later
  // grant of it.
  #onDisown(m: DisownMsg): void {
    const e = this.#entries.get(m.lk);
    const h = e?.holders.get(m.req);
    if (e === undefined || h === undefined || h.token > m.token) return; // a later grant stays
    e.holders.delete(m.req);
    if (e.round === undefined) this.#grantNext(e, true);
  }

  // A leased lock's node answers our revoke: a call runs under it, released when it settles.
  #onBusy(m: BusyMsg): void {
    const h = this.#entries.get(m.lk)?.holders.get(m.req);
    if (h !== undefined) h.busy = true;
  }

  // A request (or a holder re-registering) arrives.
  #onAcquire(m: AcquireMsg): void {
    if (!this.#ctx.isUp(m.node)) return; // its node went down while the message waited in the mailbox
    const e = this.#entryFor(m);
    if (!e) return;
    if (m.held !== null) {
      // A holder whose coordinator changed: it keeps the lock; we must count it.
      if (e.round?.released.has(m.req)) return;
      e.holders.set(m.req, { node: m.node, token: m.held, since: m.since });
      if (m.held > e.last) e.last = m.held;
      this.#unqueue(e, m.req);
      // Forwarded, it may have been overtaken by the release the requester sent us directly:
      // ask the requester (it answers `release` if it holds it no longer).
      if (m.hops > 0 && m.node !== this.#ctx.self) this.#ctx.send(m.node, { t: 'verify', from: this.#ctx.self, lk: e.lk, req: m.req, token: m.held });
      return;
    }
    const h = e.holders.get(m.req);
    if (h !== undefined) {
      // Counted as holder, but its node re-registers it as waiting: our grant may still be on
      // its way there (then it holds), or it declined the grant to a coordinator that is gone.
      // Ask it: a waiting request answers `decline` to us, and goes back to the head.
      this.#ctx.send(m.node, { t: 'verify', from: this.#ctx.self, lk: e.lk, req: m.req, token: h.token });
      return;
    }
    if (e.queue.some((w) => w.req === m.req)) return; // a re-registration we know
    if (e.round?.released.has(m.req)) return;
    // `retries` is decided now, unless only a lease (maybe held idle) makes the difference:
    // then after the lease's answer to its revoke (#afterQueued), or at its release.
    let decideLater = e.round !== undefined;
    if (m.retries !== null && e.round === undefined) {
      let maybeIdle = 0;
      for (const h of e.holders.values()) if (h.lease && !h.busy) maybeIdle++;
      const ahead = e.holders.size - maybeIdle + e.queue.length;
      if (ahead > m.retries) {
        this.#refuse(e, m.req, m.node, ahead);
        return;
      }
      decideLater = ahead + maybeIdle > m.retries;
      if (decideLater) e.undecided = true;
    }
    e.queue.push({ req: m.req, node: m.node, since: m.since, retries: decideLater ? m.retries : null, queuedAt: monotonicNow(), lease: m.lease });
    if (e.round === undefined) this.#grantNext(e, false);
    else this.#maybeFinish(e);
  }

  // The holder is done, or a waiter gives up.
  #onRelease(m: ReleaseMsg): void {
    const e = this.#entryFor(m);
    if (!e) return;
    e.round?.released.add(m.req);
    if (e.holders.delete(m.req)) {
      if (e.round === undefined) this.#grantNext(e, true);
    } else {
      this.#unqueue(e, m.req);
    }
    this.#maybeFinish(e);
  }

  // A requester refused our grant (it answers to another coordinator now, or had re-registered).
  #onDecline(m: DeclineMsg): void {
    const e = this.#entryFor(m);
    if (!e) return;
    const h = e.holders.get(m.req);
    if (e.round) {
      const d = e.round.declined.get(m.req);
      if (d === undefined || d < m.token) e.round.declined.set(m.req, m.token);
    }
    if (h && h.token === m.token) {
      // It was next when granted, so it goes back to the head of the line: behind those of
      // its run declined before it (granted before it: lower tokens), ahead of every waiter.
      e.holders.delete(m.req);
      let at = 0;
      while (at < e.queue.length && (e.queue[at]!.declined ?? Infinity) < m.token) at++;
      e.queue.splice(at, 0, { req: m.req, node: h.node, since: h.since, retries: null, queuedAt: monotonicNow(), declined: m.token });
      if (e.round === undefined) this.#grantNext(e, true);
    }
    this.#maybeFinish(e);
  }

  // Someone wants to be sure the lock has a coordinator with authority.
  #onProbe(m: ProbeMsg): void {
    const e = this.#entryFor(m);
    if (e) this.#maybeFinish(e);
  }

  // A node answers our recovery round.
  #onReport(m: ReportMsg): void {
    const e = this.#entries.get(m.lk);
    const round = e?.round;
    // A report for a round we abandoned (or a finished one) carries nothing we may trust now.
    if (!e || !round || round.id !== m.round || !round.pending.has(m.from)) {
      // But its sender's requests answer to us now: if we handed the lock on, send them on.
      if (e === undefined && !m.more && this.#handedOn.has(m.lk)) this.#ctx.send(m.from, { t: 'moved', from: this.#ctx.self, lk: m.lk });
      return;
    }
    this.#merge(e, round, m.holders, m.waiters, m.last, m.from);
    if (m.more) return; // the round waits for its last part
    round.pending.delete(m.from);
    this.#maybeFinish(e);
  }

  // An old coordinator pushes its record: the lock is ours now.
  #onHandoff(m: HandoffMsg): void {
    const e = this.#entryFor(m);
    if (!e) return;
    this.#merge(e, e.round, m.holders, m.waiters, m.last, m.from);
    if (e.round === undefined) this.#grantNext(e, true);
  }

  /** Answers another node's recovery round: hands over and drops this node's record of `lk`. */
  surrender(lk: string): { holders: WireHolder[]; waiters: WireWaiter[]; last: number } | undefined {
    // An idle lock has nothing to hand over but its authority, which ends here; its last
    // token is in the node's token memory, which the report carries. Another node runs a
    // round for it: if this node wins it too (views that disagree), its next request here
    // runs a round again rather than trust the survey.
    this.#idle.delete(lk);
    this.#name(lk);
    const e = this.#entries.get(lk);
    if (!e) return undefined;
    this.#drop(e);
    this.#clearUnseen(e);
    const holders: WireHolder[] = [...e.holders].map(([req, h]) => [req, h.node, h.token, h.since]);
    const waiters: WireWaiter[] = e.queue.map((w) => [w.req, w.node, w.since]);
    return { holders, waiters, last: e.last };
  }

  #clearUnseen(e: Entry): void {
    for (const h of e.holders.values()) if (h.unseen) clearTimeout(h.unseen);
  }

  #unseenTimer(e: Entry, req: ReqId): NodeJS.Timeout {
    const timer = setTimeout(() => {
      const h = e.holders.get(req);
      if (!h || h.unseen !== timer || this.#entries.get(e.lk) !== e) return;
      e.holders.delete(req);
      this.#grantNext(e, true);
      this.#idleIfFree(e);
    }, UNSEEN_HOLDER_GRACE_MS);
    timer.unref();
    return timer;
  }

  /** The live view changed: drop what a down node held and waited for, and what we no longer win. */
  viewChanged(up: string | undefined, down: string | undefined): void {
    // The survey's authority was over the old view: until the survey of the new one has
    // ended, every lock without a record here takes a round (the probes below included).
    this.#authority = false;
    this.#survey = undefined;
    // An idle lock that another node wins now has nothing to push there: its authority ends.
    for (const [lk, idle] of this.#idle) {
      if (this.#ctx.winner(lk, idle.set) !== this.#ctx.self) this.#idle.delete(lk);
    }
    for (const e of [...this.#entries.values()]) {
      if (up !== undefined) {
        for (const [req, h] of e.holders) {
          if (h.node === up && h.unseen) {
            // Its node is here now: ask it whether it still holds the lock.
            clearTimeout(h.unseen);
            h.unseen = undefined;
            this.#ctx.send(up, { t: 'verify', from: this.#ctx.self, lk: e.lk, req, token: h.token });
          }
        }
      }
      const w = this.#ctx.winner(e.lk, e.set);
      if (w !== this.#ctx.self) {
        // Another node wins this lock now: push our record there and forget it. Its
        // requesters also re-register there, each on its own view change.
        this.#drop(e);
        this.#clearUnseen(e);
        if (w !== undefined && (e.holders.size > 0 || e.queue.length > 0)) {
          this.#stats.handedOver++;
          const holders: WireHolder[] = [...e.holders]
            .filter(([, h]) => h.node !== down)
            .map(([req, h]) => [req, h.node, h.token, h.since]);
          const waiters: WireWaiter[] = e.queue.filter((x) => x.node !== down).map((x) => [x.req, x.node, x.since]);
          for (const part of recordParts(holders, waiters)) {
            this.#ctx.send(w, { t: 'handoff', from: this.#ctx.self, lk: e.lk, set: e.set, ...part, last: e.last, hops: 0 });
          }
          // Their requests answer to us (a round of ours may have pointed them here): send
          // them on to the winner, which has our record now.
          const nodes = new Set([...holders.map((h) => h[1]), ...waiters.map((x) => x[1])]);
          for (const n of nodes) this.#ctx.send(n, { t: 'moved', from: this.#ctx.self, lk: e.lk });
        }
        if (e.round !== undefined) {
          // Reports to our round may still come: their senders answer to us from then on.
          this.#handedOn.delete(e.lk);
          this.#handedOn.add(e.lk);
          if (this.#handedOn.size > MAX_IDLE) this.#handedOn.delete(this.#handedOn.values().next().value as string);
        }
        continue;
      }
      if (down !== undefined) {
        let freed = false;
        for (const [req, h] of e.holders) {
          if (h.node === down) {
            e.holders.delete(req);
            freed = true;
          }
        }
        e.queue = e.queue.filter((w) => w.node !== down);
        if (e.round?.pending.delete(down)) this.#maybeFinish(e);
        else if (freed && e.round === undefined) this.#grantNext(e, true);
        if (e.round === undefined && e.queue.length > 0 && e.holders.size > 0) this.#afterQueued(e);
      }
      if (up !== undefined && e.round && !e.round.pending.has(up)) {
        // A node that joins during the round may hold the lock from the other side of a
        // partition: hear it too before granting.
        e.round.pending.add(up);
        this.#ctx.send(up, { t: 'inquire', from: this.#ctx.self, lk: e.lk, round: e.round.id });
      }
      this.#idleIfFree(e);
    }
    if (down !== undefined) {
      const watched = this.#watches.get(down);
      this.#watches.delete(down);
      if (watched) {
        for (const [lk, set] of watched) this.handle({ t: 'probe', from: this.#ctx.self, lk, set, hops: 0 });
      }
    }
  }

  /**
   * The entry for a message's lock, starting a recovery round if this node wins the lock and
   * has no record of it; undefined (after forwarding the message) if another node wins it.
   */
  #entryFor(m: AcquireMsg | ReleaseMsg | DeclineMsg | ProbeMsg | HandoffMsg): Entry | undefined {
    const existing = this.#entries.get(m.lk);
    if (existing) return existing;
    const idle = this.#idle.get(m.lk);
    if (idle !== undefined) {
      // Idle here with authority: its entry again, granting at once.
      this.#idle.delete(m.lk);
      const e = this.#newEntry(m.lk, idle.set, undefined);
      e.streakNode = idle.streakNode;
      e.streak = idle.streak;
      return e;
    }
    const ctx = this.#ctx;
    const w = ctx.winner(m.lk, m.set);
    if (w === undefined) return undefined;
    if (w !== ctx.self) {
      // The sender's view differs from ours (a node it has not seen up, or one we have not
      // seen down yet). Forward; if that node then goes down, probe so the state is rebuilt.
      if (m.hops < MAX_HOPS) {
        this.#stats.forwarded++;
        ctx.send(w, { ...m, from: ctx.self, hops: m.hops + 1 });
        let watched = this.#watches.get(w);
        if (!watched) this.#watches.set(w, (watched = new Map()));
        watched.set(m.lk, m.set);
        if (watched.size > MAX_IDLE) watched.delete(watched.keys().next().value as string);
      }
      return undefined;
    }
    if (this.#authority && !this.#named.has(m.lk)) {
      this.#stats.surveyed++;
      return this.#newEntry(m.lk, m.set, undefined);
    }
    return this.#startRound(m.lk, m.set);
  }

  /**
   * Starts the survey of this node's current view (on each view change, after the requester
   * re-registered): authority over the locks nobody names, once every node has answered in
   * this view. Until then, and after any later view change, new locks take a round.
   */
  survey(): void {
    const ctx = this.#ctx;
    this.#authority = false;
    this.#overflowed = false;
    this.#named = new Set();
    for (const lk of ctx.localLocks()) this.#name(lk);
    const s: Survey = { id: ++this.#roundSeq, view: ctx.view(), pending: new Set(ctx.peers()), differed: new Set(), again: false };
    this.#survey = s;
    this.#stats.surveys++;
    for (const peer of s.pending) ctx.send(peer, { t: 'inquireAll', from: ctx.self, lk: '', round: s.id, view: s.view });
    this.#surveyEnded(s);
  }

  /**
   * Another node surveys in `view`: if ours is the same and our survey met a different view at
   * that node (which has caught up since: its answer travelled the same link before this), run
   * ours again, at once or when the one under way ends. Only then: two nodes whose surveys
   * both failed because of a third must not start each other's over and over.
   */
  surveyedBy(node: string, view: string): void {
    if (view !== this.#ctx.view()) return;
    const s = this.#survey;
    if (s !== undefined) {
      if (s.differed.has(node)) s.again = true;
    } else if (!this.#authority && this.#differed.has(node)) {
      this.survey();
    }
  }

  #onReportAll(m: ReportAllMsg): void {
    const s = this.#survey;
    if (s === undefined || s.id !== m.round || !s.pending.has(m.from)) return;
    for (const lk of m.lks) this.#name(lk);
    this.#ctx.tokens.bump(m.last);
    if (m.view !== s.view) s.differed.add(m.from);
    if (m.more) return;
    s.pending.delete(m.from);
    this.#surveyEnded(s);
  }

  #surveyEnded(s: Survey): void {
    if (s.pending.size > 0 || this.#survey !== s) return;
    if (s.differed.size > 0 && s.again) {
      this.survey();
      return;
    }
    this.#survey = undefined;
    this.#differed = s.differed;
    this.#authority = s.differed.size === 0 && !this.#overflowed && s.view === this.#ctx.view();
  }

  /**
   * `lk` takes a recovery round here until the next survey. Beyond MAX_IDLE names every lock
   * does: the names are dropped and no authority is taken (nor kept) until the next survey.
   */
  #name(lk: string): void {
    if (this.#overflowed) return;
    this.#named.add(lk);
    if (this.#named.size > MAX_IDLE) {
      this.#overflowed = true;
      this.#authority = false;
      this.#named = new Set();
    }
  }

  // This node becomes the lock's coordinator: learn from every connected node what it holds
  // and waits for before granting anything.
  #startRound(lk: string, set: string[] | null): Entry {
    const ctx = this.#ctx;
    const round: Round = { id: ++this.#roundSeq, pending: new Set(), released: new Set(), declined: new Map() };
    const e = this.#newEntry(lk, set, round);
    this.#stats.rounds++;
    const own = ctx.localReport(lk, ctx.self);
    this.#merge(e, round, own.holders, own.waiters, 0, ctx.self);
    for (const peer of ctx.peers()) {
      round.pending.add(peer);
      ctx.send(peer, { t: 'inquire', from: ctx.self, lk, round: round.id });
    }
    return e;
  }

  /** Adds what `reporter` says is held and waited for; a holder it reports for another node is verified there. */
  #merge(e: Entry, round: Round | undefined, holders: WireHolder[], waiters: WireWaiter[], last: number, reporter: string): void {
    if (last > e.last) e.last = last;
    for (const [req, node, token, since] of holders) {
      if (token > e.last) e.last = token;
      if (round?.released.has(req)) continue;
      const up = this.#ctx.isUp(node);
      // Seen before and not up now: its node went down, and its lock with it.
      if (!up && this.#ctx.seen(node)) continue;
      const declined = round?.declined.get(req);
      if (declined !== undefined && token <= declined) {
        // That grant was refused by its requester, which still waits.
        if (!e.holders.has(req) && !e.queue.some((w) => w.req === req)) {
          e.queue.push({ req, node, since, retries: null, queuedAt: monotonicNow() });
        }
        continue;
      }
      const known = e.holders.get(req);
      if (!known || known.token < token) {
        if (known?.unseen) clearTimeout(known.unseen);
        // A holder on a node we are not connected to yet (an old coordinator reported it
        // while the mesh is still dialling): it blocks the lock until its node connects and
        // re-registers, or for the grace if it never does.
        e.holders.set(req, { node, token, since, unseen: up ? undefined : this.#unseenTimer(e, req) });
        if (up && node !== reporter) this.#ctx.send(node, { t: 'verify', from: this.#ctx.self, lk: e.lk, req, token });
      }
      this.#unqueue(e, req);
    }
    for (const [req, node, since] of waiters) {
      if (round?.released.has(req) || !this.#ctx.isUp(node) || e.holders.has(req)) continue;
      if (!e.queue.some((w) => w.req === req)) e.queue.push({ req, node, since, retries: null, queuedAt: monotonicNow() });
    }
  }

  // Every connected node has reported: take authority and serve the queue.
  #maybeFinish(e: Entry): void {
    const round = e.round;
    if (!round || round.pending.size > 0) return;
    e.round = undefined;
    // Arrival order across the old coordinator and the requesters' reports: when the
    // requests were made (wall clock; ties by id).
    e.queue.sort((a, b) => a.since - b.since || compareReqIds(a.req, b.req));
    for (let i = 0; i < e.queue.length; i++) {
      const w = e.queue[i]!;
      const ahead = e.holders.size + i;
      if (w.retries !== null && ahead > w.retries) {
        e.queue.splice(i--, 1);
        this.#refuse(e, w.req, w.node, ahead);
      }
      w.retries = null; // decided: it waits its turn
    }
    this.#grantNext(e, false);
  }

  // Grants the head of the queue and, with it, the waiters right behind it that are on the
  // same node (a run, at most MAX_RUN): each is granted `after` the one before it, so their
  // node passes the lock down the run locally, while here they all count as holders and
  // nobody else is granted until every one of them has released. The order of the queue is
  // kept exactly; what a run saves is the round trip through this node between two grants
  // on one node (contenders of one node that asked together are served together).
  #grantNext(e: Entry, handoff: boolean): void {
    if (e.holders.size > 0 || e.round !== undefined) return;
    const first = e.queue[0];
    if (!first) return;
    let n = 1;
    while (n < MAX_RUN && e.queue[n]?.node === first.node) n++;
    const run = n === 1 ? [e.queue.shift()!] : e.queue.splice(0, n);
    if (first.node === e.streakNode) e.streak += n;
    else {
      e.streakNode = first.node;
      e.streak = n;
    }
    // A lease: a lone grant, nobody else waiting, to a node that keeps taking this lock (its
    // own node needs none: its grants cost no message).
    // Its reserved tokens may run at most 1 ms ahead of the clock term (./fencing.ts), so
    // tokens never run far ahead of the clock, which covers the tokens of a dead coordinator.
    const lease =
      n === 1 &&
      e.queue.length === 0 &&
      first.lease === true &&
      first.node !== this.#ctx.self &&
      e.streak >= LEASE_STREAK &&
      e.last + 1 + LEASE_TOKENS <= clockToken() + TOKENS_PER_MS
        ? LEASE_TOKENS
        : 0;
    const now = monotonicNow();
    let after: ReqId | null = null;
    for (const w of run) {
      const token = nextToken(e.last);
      e.last = token + lease; // the lease's tokens are reserved: no later grant can reuse them
      e.holders.set(w.req, lease > 0 ? { node: w.node, token, since: w.since, lease: true } : { node: w.node, token, since: w.since });
      this.#stats.grants++;
      if (lease > 0) {
        this.#stats.leases++;
        e.mayHaveLease = true;
      }
      const waited = handoff || after !== null;
      if (waited) this.#stats.handoffs++;
      this.#ctx.onGrant?.(e.lk, now - w.queuedAt, waited);
      this.#ctx.send(w.node, { t: 'granted', from: this.#ctx.self, lk: e.lk, req: w.req, token, waited, after, lease });
      after = w.req;
    }
    if (n > 1) this.#stats.runs++;
  }

  #refuse(e: Entry, req: ReqId, node: string, ahead: number): void {
    this.#stats.refused++;
    this.#ctx.send(node, { t: 'refused', from: this.#ctx.self, lk: e.lk, req, ahead });
  }

  #unqueue(e: Entry, req: ReqId): void {
    const i = e.queue.findIndex((w) => w.req === req);
    if (i >= 0) e.queue.splice(i, 1);
  }

  /** A new entry for `lk`; its last token is the node's highest, at or above any of its own. */
  #newEntry(lk: string, set: string[] | null, round: Round | undefined): Entry {
    const e: Entry = { lk, set, holders: new Map(), queue: [], last: this.#ctx.tokens.highest, round, streakNode: undefined, streak: 0, undecided: false, mayHaveLease: false };
    this.#entries.set(lk, e);
    return e;
  }

  #isIdle(e: Entry): boolean {
    return e.holders.size === 0 && e.queue.length === 0 && e.round === undefined;
  }

  /** Forgets the entry of `e` (its last token goes to the token memory). */
  #drop(e: Entry): void {
    this.#entries.delete(e.lk);
    this.#warm.delete(e);
    if (this.#youngest === e) this.#youngest = undefined;
    this.#ctx.tokens.bump(e.last);
  }

  /**
   * Nobody holds `e` or waits for it, and no round runs: it joins the warm entries, and the
   * one idle longest beyond WARM_IDLE keeps only its idle record, at the young end of those;
   * the oldest record beyond MAX_IDLE idle locks is dropped (its lock's next request runs a
   * round).
   */
  #idleIfFree(e: Entry): void {
    if (this.#youngest === e || !this.#isIdle(e) || this.#entries.get(e.lk) !== e) return;
    this.#warm.delete(e);
    this.#warm.add(e);
    this.#youngest = e;
    if (this.#warm.size <= WARM_IDLE) return;
    const oldest = this.#warm.values().next().value as Entry;
    this.#warm.delete(oldest);
    if (!this.#isIdle(oldest)) return; // held again since: back here when idle
    this.#drop(oldest);
    this.#idle.set(oldest.lk, this.#idleValue(oldest));
    if (this.#idle.size > MAX_IDLE - WARM_IDLE) this.#idle.delete(this.#idle.keys().next().value as string);
  }

  // The idle value of `e`: shared for the default node set (per grantee node and streak).
  #idleValue(e: Entry): IdleLock {
    const streak = Math.min(e.streak, LEASE_STREAK);
    if (e.set !== null) return { set: e.set, streakNode: e.streakNode, streak };
    if (e.streakNode === undefined) return NO_STREAK;
    let values = this.#idleValues.get(e.streakNode);
    if (values === undefined) {
      if (this.#idleValues.size >= MAX_IDLE_VALUE_NODES) this.#idleValues = new Map(); // only sharing is lost
      this.#idleValues.set(e.streakNode, (values = []));
    }
    return (values[streak] ??= Object.freeze({ set: null, streakNode: e.streakNode, streak }));
  }
}

/**
 * Call order of two request ids (`<node>#<incarnation>.<n>`) made in the same millisecond:
 * by sequence number within one incarnation (so `.9` comes before `.10`), else by prefix.
 */
export function compareReqIds(a: ReqId, b: ReqId): number {
  const i = a.lastIndexOf('.');
  const j = b.lastIndexOf('.');
  const pa = a.slice(0, i);
  const pb = b.slice(0, j);
  if (pa !== pb) return pa < pb ? -1 : 1;
  return Number(a.slice(i + 1)) - Number(b.slice(j + 1));
}
