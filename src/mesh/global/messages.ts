// The lock protocol's wire messages: every one is a `cast` between the `global` actors of two
// nodes (`{ node, id: 'global' }`). Plain data only, so the mesh codec carries them as is.
//
// Protocol version 1 (the first). History: none yet. A change of shape bumps
// `LOCK_PROTOCOL_VERSION` and adds a line here.
//
// Requester → coordinator
// - `acquire`  queue request `req` (or, with `held`, re-register a lock the requester
//              already holds, after its coordinator changed).
// - `release`  the holder is done, or a waiter gives up: drop `req` wherever it is.
// - `decline`  a grant came from a node that is not the requester's coordinator any more;
//              if the coordinator counts `req` as holder with that token, `req` waits again
//              at the head of the queue.
// Coordinator → requester
// - `granted`  `req` holds the lock with fencing token `token`.
// - `refused`  `req` asked with `retries` and more holders than that were ahead of it.
// New coordinator → every node, and back (recovery round)
// - `inquire`  "I coordinate `lk` now: tell me what you hold and wait for, hand over your
//              own record of it, and send your later messages about it to me".
// - `report`   the answer: holders, waiters and the highest token the node has seen.
// Any node → a coordinator
// - `probe`    "make sure someone coordinates `lk`" (sent when a node forwarded a message
//              to a node that then went down): a winner without a record starts a round.

export const LOCK_PROTOCOL_VERSION = 1;

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
}

export interface RefusedMsg {
  t: 'refused';
  from: string;
  lk: string;
  req: ReqId;
  ahead: number;
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
}

/** Messages a coordinator handles. */
export type CoordinatorMsg = AcquireMsg | ReleaseMsg | DeclineMsg | ProbeMsg | ReportMsg;
/** Messages a requester handles. */
export type RequesterMsg = GrantedMsg | RefusedMsg;
export type LockMsg = CoordinatorMsg | RequesterMsg | InquireMsg;

/** Forwarding stops after this many hops (views disagree for longer than a message trip). */
export const MAX_HOPS = 3;
