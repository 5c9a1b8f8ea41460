// The lock protocol's wire messages: every one is a `cast` between the `global` services of two
// nodes (`{ node, id: 'global' }`). Plain data only, so the mesh codec carries them as is.
//
// On the wire each message is a tuple (`encodeLockMsg` / `decodeLockMsg` below): half the
// bytes and a third of the codec time of the same object with its keys, on a path where
// every uncontended `trans` sends three messages. Inside the node they are the typed
// objects below.
//
// A change of shape bumps `LOCK_PROTOCOL_VERSION` (and the mesh's PROTOCOL_VERSION, so nodes
// of different lock protocols never meet) and adds a line here. History:
// - 1: the first.
// - 2: `granted` carries `after`: grants to a run of consecutive waiters of one node go out
//      together, each after the one before it, and that node passes the lock down the run.
//      Messages a node sends to one node in one tick travel as one batch `[0, m1, m2, …]`.
//      `report` and `handoff` travel in parts of at most RECORDS_PER_PART records (every
//      holder in the first part), so a long queue never makes a message larger than a
//      frame; `report` carries `more` until its last part.
// - 3: leases. `acquire` carries `lease` (the caller accepts one); `granted` carries
//      `lease`, the number of fencing tokens reserved for the requester's node after the
//      grant's own (0: no lease). New: `revoke`, `busy`, `disown` and `moved`.
// - 4: one survey per view change. New: `inquireAll` and `reportAll` (`lk` is empty in both).
//      A coordinator that every connected node answered, all in its own view, takes on a lock
//      nobody named with no recovery round of its own (see ./coordinator.ts).
// (Mesh protocol 6 changed what `lk` holds, not these messages: the canonical text of
// ../canonical-key.ts, where a string resource is its own text, and a key of its own for an
// explicit node set. The mesh version keeps nodes that name locks differently apart.)
//
// Requester → coordinator
// - `acquire`  queue request `req` (or, with `held`, re-register a lock the requester
//              already holds, after its coordinator changed).
// - `release`  the holder is done, or a waiter gives up: drop `req` wherever it is.
// - `decline`  a grant came from a node that is not the requester's coordinator any more;
//              if the coordinator counts `req` as holder with that token, `req` waits again
//              at the head of the queue.
// - `disown`   when `req` is done, to each node other than its coordinator that it
//              registered with or whose grant it refused (views that disagreed for a while):
//              if that node counts `req` as holder with a token up to `token`, it forgets it.
//              Sent only when done: tokens of two coordinators are not ordered, so an earlier
//              one could drop a holder the node has learned again meanwhile.
// - `busy`     answer to `revoke`: a call runs under that lease now; its node lets go
//              (`release`) when it settles.
// Coordinator → requester
// - `granted`  `req` holds the lock with fencing token `token`; with `after`, once the
//              request `after` (of the same node, granted just before it) has let go. With
//              `lease > 0` the lock is leased to the requester's node: when the call settles
//              the node keeps the lock, idle, and its next calls on it take it again with no
//              message, with the reserved tokens `token + 1 … token + lease`, until the
//              coordinator revokes it (or the tokens run out, or the lease idles too long).
// - `revoke`   another request waits for a leased lock: an idle lease is released at once
//              (`release`), a busy one when its call settles (`busy` says which).
// - `refused`  `req` asked with `retries` and more holders than that were ahead of it.
// New coordinator → every node, and back (recovery round)
// - `inquire`  "I coordinate `lk` now: tell me what you hold and wait for, hand over your
//              own record of it, and send your later messages about it to me".
// - `report`   the answer: holders, waiters and the highest token the node has seen (in
//              parts: `more` is true on all but the last).
// A node whose view changed → every node, and back (survey)
// - `inquireAll` "my view is `view`: name every lock you hold, wait for or keep leased, and
//              tell me your view and your highest token". Also sent again, once, to a node
//              whose view differed from ours, when its own survey shows our views agree now.
// - `reportAll` the answer: the sender's view, the locks it named (in parts: `more` is true on
//              all but the last) and the highest token it has seen.
// Old coordinator → new one
// - `handoff`  on a view change that makes another node the lock's winner, the old
//              coordinator pushes its record (holders, waiters, token) there and forgets it.
// Old coordinator → the nodes in the record it hands off
// - `moved`    "I do not coordinate `lk` any more": requests of `lk` that answer to the sender
//              answer to the winner of the receiver's view from now on, and re-register there
//              (a node whose own view never changed would otherwise keep answering to a node
//              that no longer coordinates).
// Coordinator → a holder's node
// - `verify`   "do you still hold `req` with `token`?", for a holder learned second-hand (from
//              a handoff or an old coordinator's report): a node that does not answers with
//              `release` (or `decline`, if the request still waits), so no ghost blocks the lock.
// Any node → a coordinator
// - `probe`    "make sure someone coordinates `lk`" (sent when a node forwarded a message
//              to a node that then went down): a winner without a record starts a round.

export const LOCK_PROTOCOL_VERSION = 4;

/** A request id, unique in the cluster: `<node>#<incarnation>.<n>`. */
export type ReqId = string;

/** `[req, node, token, since]` */
export type WireHolder = [ReqId, string, number, number];
/** `[req, node, since]` */
export type WireWaiter = [ReqId, string, number];

export interface AcquireMsg {
  t: 'acquire';
  /** The node that sent this copy (the requester, or a node that forwarded it). */
  from: string;
  lk: string;
  req: ReqId;
  /** The requester's node. */
  node: string;
  /** Wall-clock ms when `trans` was called: the order of waiters rebuilt by a recovery round. */
  since: number;
  /** Explicit node set, sorted; null for the default (every connected node). */
  set: string[] | null;
  /** Give up at once when more than this many holders are ahead; null to wait. */
  retries: number | null;
  /** Token of a lock the requester already holds (re-registration); null for a new request. */
  held: number | null;
  /** The caller accepts a lease (TransOptions.lease). */
  lease: boolean;
  hops: number;
}

export interface ReleaseMsg {
  t: 'release';
  from: string;
  lk: string;
  req: ReqId;
  set: string[] | null;
  hops: number;
}

export interface DeclineMsg {
  t: 'decline';
  from: string;
  lk: string;
  req: ReqId;
  token: number;
  set: string[] | null;
  hops: number;
}

export interface DisownMsg {
  t: 'disown';
  from: string;
  lk: string;
  req: ReqId;
  token: number;
}

export interface MovedMsg {
  t: 'moved';
  from: string;
  lk: string;
}

export interface ProbeMsg {
  t: 'probe';
  from: string;
  lk: string;
  set: string[] | null;
  hops: number;
}

export interface GrantedMsg {
  t: 'granted';
  from: string;
  lk: string;
  req: ReqId;
  token: number;
  /** False when the lock was free on arrival; true when the request waited behind a holder or a round. */
  waited: boolean;
  /**
   * A run: the request of the same node granted just before this one, which holds the lock
   * first; this one holds it once that one has let go. Null: it holds the lock now.
   */
  after: ReqId | null;
  /** Tokens reserved for the requester's node after `token` (a lease); 0: no lease. */
  lease: number;
}

export interface RevokeMsg {
  t: 'revoke';
  from: string;
  lk: string;
  req: ReqId;
}

export interface BusyMsg {
  t: 'busy';
  from: string;
  lk: string;
  req: ReqId;
}

export interface RefusedMsg {
  t: 'refused';
  from: string;
  lk: string;
  req: ReqId;
  ahead: number;
}

export interface HandoffMsg {
  t: 'handoff';
  from: string;
  lk: string;
  set: string[] | null;
  holders: WireHolder[];
  waiters: WireWaiter[];
  last: number;
  hops: number;
}

export interface VerifyMsg {
  t: 'verify';
  from: string;
  lk: string;
  req: ReqId;
  token: number;
}

export interface InquireMsg {
  t: 'inquire';
  from: string;
  lk: string;
  round: number;
}

export interface ReportMsg {
  t: 'report';
  from: string;
  lk: string;
  round: number;
  holders: WireHolder[];
  waiters: WireWaiter[];
  /** Highest token this node has seen for `lk` (0 if none). */
  last: number;
  /** More parts of this report follow (the round waits for the last one). */
  more: boolean;
}

export interface InquireAllMsg {
  t: 'inquireAll';
  from: string;
  /** Empty: the survey is about every lock. */
  lk: string;
  round: number;
  /** The sender's view (see `viewKey`). */
  view: string;
}

export interface ReportAllMsg {
  t: 'reportAll';
  from: string;
  lk: string;
  round: number;
  /** The sender's view when it answered. */
  view: string;
  /** Locks the sender holds, waits for or keeps leased (this part's). */
  lks: string[];
  /** Highest token the sender has seen. */
  last: number;
  /** More parts follow (the survey waits for the last one). */
  more: boolean;
}

/** Messages a coordinator handles. */
export type CoordinatorMsg = AcquireMsg | ReleaseMsg | DeclineMsg | ProbeMsg | ReportMsg | HandoffMsg | BusyMsg | DisownMsg | ReportAllMsg;
/** Messages a requester handles. */
export type RequesterMsg = GrantedMsg | RefusedMsg | VerifyMsg | RevokeMsg | MovedMsg;
export type LockMsg = CoordinatorMsg | RequesterMsg | InquireMsg | InquireAllMsg;

/** A view as one text: the live nodes (self included), sorted, one per line. */
export function viewKey(nodes: Iterable<string>): string {
  return [...nodes].sort().join('\n');
}

/** Lock keys in one `reportAll` message at most. */
export const LOCKS_PER_PART = 256;

/** Holder and waiter records in one `report` or `handoff` message at most. */
export const RECORDS_PER_PART = 128;

/**
 * A lock's record in parts of at most RECORDS_PER_PART records: every holder in the first
 * part (a coordinator must know them all before it grants), then the waiters in order.
 */
export function recordParts(holders: WireHolder[], waiters: WireWaiter[]): { holders: WireHolder[]; waiters: WireWaiter[] }[] {
  const room = Math.max(0, RECORDS_PER_PART - holders.length);
  const parts = [{ holders, waiters: waiters.slice(0, room) }];
  for (let i = room; i < waiters.length; i += RECORDS_PER_PART) {
    parts.push({ holders: [], waiters: waiters.slice(i, i + RECORDS_PER_PART) });
  }
  return parts;
}

/** Forwarding stops after this many hops (views disagree for longer than a message trip). */
export const MAX_HOPS = 3;

// ---- wire form: tuples, tag first ----

/** Tag of a batch: `[BATCH, tuple, tuple, …]`, the messages in send order. */
const BATCH = 0;

const ACQUIRE = 1;
const RELEASE = 2;
const DECLINE = 3;
const PROBE = 4;
const GRANTED = 5;
const REFUSED = 6;
const INQUIRE = 7;
const REPORT = 8;
const HANDOFF = 9;
const VERIFY = 10;
const REVOKE = 11;
const BUSY = 12;
const DISOWN = 13;
const MOVED = 14;
const INQUIRE_ALL = 15;
const REPORT_ALL = 16;

/** The tuple that travels for `m`. */
export function encodeLockMsg(m: LockMsg): unknown[] {
  switch (m.t) {
    case 'acquire':
      return [ACQUIRE, m.from, m.lk, m.req, m.node, m.since, m.set, m.retries, m.held, m.hops, m.lease];
    case 'release':
      return [RELEASE, m.from, m.lk, m.req, m.set, m.hops];
    case 'decline':
      return [DECLINE, m.from, m.lk, m.req, m.token, m.set, m.hops];
    case 'probe':
      return [PROBE, m.from, m.lk, m.set, m.hops];
    case 'granted':
      return [GRANTED, m.from, m.lk, m.req, m.token, m.waited, m.after, m.lease];
    case 'refused':
      return [REFUSED, m.from, m.lk, m.req, m.ahead];
    case 'inquire':
      return [INQUIRE, m.from, m.lk, m.round];
    case 'report':
      return [REPORT, m.from, m.lk, m.round, m.holders, m.waiters, m.last, m.more];
    case 'handoff':
      return [HANDOFF, m.from, m.lk, m.set, m.holders, m.waiters, m.last, m.hops];
    case 'verify':
      return [VERIFY, m.from, m.lk, m.req, m.token];
    case 'revoke':
      return [REVOKE, m.from, m.lk, m.req];
    case 'busy':
      return [BUSY, m.from, m.lk, m.req];
    case 'disown':
      return [DISOWN, m.from, m.lk, m.req, m.token];
    case 'moved':
      return [MOVED, m.from, m.lk];
    case 'inquireAll':
      return [INQUIRE_ALL, m.from, m.lk, m.round, m.view];
    case 'reportAll':
      return [REPORT_ALL, m.from, m.lk, m.round, m.view, m.lks, m.last, m.more];
  }
}

/** One cast carrying several encoded messages (from encodeLockMsg), in order. */
export function encodeLockBatch(tuples: unknown[]): unknown[] {
  return [BATCH, ...tuples];
}

/** The tuples of a batch, or undefined if `w` is not a batch (a single message, or garbage). */
export function lockBatchOf(w: unknown): unknown[] | undefined {
  return Array.isArray(w) && w[0] === BATCH ? w.slice(1) : undefined;
}

const str = (v: unknown): v is string => typeof v === 'string';
const num = (v: unknown): v is number => typeof v === 'number';
const count = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const numOrNull = (v: unknown): v is number | null => v === null || typeof v === 'number';
const setOrNull = (v: unknown): v is string[] | null => v === null || (Array.isArray(v) && v.every(str));
const tuples = (v: unknown, check: (t: unknown[]) => boolean): boolean =>
  Array.isArray(v) && v.every((t) => Array.isArray(t) && check(t));
const holderList = (v: unknown): boolean => tuples(v, (t) => str(t[0]) && str(t[1]) && num(t[2]) && num(t[3]));
const waiterList = (v: unknown): boolean => tuples(v, (t) => str(t[0]) && str(t[1]) && num(t[2]));

/** The message a tuple from the wire carries, or undefined if it is not a well-formed one. */
export function decodeLockMsg(w: unknown): LockMsg | undefined {
  if (!Array.isArray(w) || !str(w[1]) || !str(w[2])) return undefined;
  const from = w[1];
  const lk = w[2];
  switch (w[0]) {
    case ACQUIRE:
      if (!str(w[3]) || !str(w[4]) || !num(w[5]) || !setOrNull(w[6]) || !numOrNull(w[7]) || !numOrNull(w[8]) || !num(w[9]) || typeof w[10] !== 'boolean') return undefined;
      return { t: 'acquire', from, lk, req: w[3], node: w[4], since: w[5], set: w[6], retries: w[7], held: w[8], hops: w[9], lease: w[10] };
    case RELEASE:
      if (!str(w[3]) || !setOrNull(w[4]) || !num(w[5])) return undefined;
      return { t: 'release', from, lk, req: w[3], set: w[4], hops: w[5] };
    case DECLINE:
      if (!str(w[3]) || !num(w[4]) || !setOrNull(w[5]) || !num(w[6])) return undefined;
      return { t: 'decline', from, lk, req: w[3], token: w[4], set: w[5], hops: w[6] };
    case PROBE:
      if (!setOrNull(w[3]) || !num(w[4])) return undefined;
      return { t: 'probe', from, lk, set: w[3], hops: w[4] };
    case GRANTED:
      if (!str(w[3]) || !num(w[4]) || typeof w[5] !== 'boolean' || !(w[6] === null || str(w[6])) || !count(w[7])) return undefined;
      return { t: 'granted', from, lk, req: w[3], token: w[4], waited: w[5], after: w[6], lease: w[7] };
    case REFUSED:
      if (!str(w[3]) || !num(w[4])) return undefined;
      return { t: 'refused', from, lk, req: w[3], ahead: w[4] };
    case INQUIRE:
      if (!num(w[3])) return undefined;
      return { t: 'inquire', from, lk, round: w[3] };
    case REPORT:
      if (
        !num(w[3]) ||
        !holderList(w[4]) ||
        !waiterList(w[5]) ||
        !num(w[6]) ||
        typeof w[7] !== 'boolean'
      ) {
        return undefined;
      }
      return { t: 'report', from, lk, round: w[3], holders: w[4] as WireHolder[], waiters: w[5] as WireWaiter[], last: w[6], more: w[7] };
    case HANDOFF:
      if (!setOrNull(w[3]) || !holderList(w[4]) || !waiterList(w[5]) || !num(w[6]) || !num(w[7])) return undefined;
      return { t: 'handoff', from, lk, set: w[3], holders: w[4] as WireHolder[], waiters: w[5] as WireWaiter[], last: w[6], hops: w[7] };
    case VERIFY:
      if (!str(w[3]) || !num(w[4])) return undefined;
      return { t: 'verify', from, lk, req: w[3], token: w[4] };
    case REVOKE:
      if (!str(w[3])) return undefined;
      return { t: 'revoke', from, lk, req: w[3] };
    case BUSY:
      if (!str(w[3])) return undefined;
      return { t: 'busy', from, lk, req: w[3] };
    case DISOWN:
      if (!str(w[3]) || !num(w[4])) return undefined;
      return { t: 'disown', from, lk, req: w[3], token: w[4] };
    case MOVED:
      return { t: 'moved', from, lk };
    case INQUIRE_ALL:
      if (!num(w[3]) || !str(w[4])) return undefined;
      return { t: 'inquireAll', from, lk, round: w[3], view: w[4] };
    case REPORT_ALL:
      if (!num(w[3]) || !str(w[4]) || !(Array.isArray(w[5]) && w[5].every(str)) || !num(w[6]) || typeof w[7] !== 'boolean') return undefined;
      return { t: 'reportAll', from, lk, round: w[3], view: w[4], lks: w[5] as string[], last: w[6], more: w[7] };
    default:
      return undefined;
  }
}
