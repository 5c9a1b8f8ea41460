// Replication protocol of cluster-scope expirables.
//
// Design note
// -----------
// Every node that uses an expirable holds a replica of it (an `Entry`). Each store runs one
// well-known router actor per node (`expirable-store/<namespace>`) that answers for every
// entry of the store on that node, and, while a replica holds a value, the router is a
// member of the process group of that entry (`expirable-store/<namespace>/<name>/<key>`, the
// same text is the lock resource): one actor per store and node, however many keys it holds,
// so a held key costs a group membership, not an actor.
//
// Writes are ordered by the global lock of the entry: a refresh, a state change and a clear
// each run under it, and what they write carries a version: the lock's fencing token, raised
// above the version the writer holds and the newest one the peers asked under the lock
// hold (a new coordinator whose clock is behind may grant tokens below versions replicas
// already hold; a clear asks the peers first for that reason).
// A replica applies a snapshot only if its version is greater than the one it holds, so an
// older value never overwrites a newer one, whatever order messages arrive in.
//
// Messages (calls have a short timeout; a peer that does not answer is skipped):
// - router `ask { n, k }` (call) -> Snapshot | null: what that node holds for the entry,
//   valid or not (its state may be newer even when its value expired). Sent to every
//   connected node, not only to the group's members: a member's join may not have reached
//   us yet when we get the lock right after it (the release and the grant travel other links
//   than the join), and asking every node closes that window. The asker stops waiting at
//   the first answer that would serve its callers (newer than what it holds, a value still
//   valid); only when none does it waits for every node (or its timeout), because then it
//   fetches and the newest version known must raise the version of what it writes.
// - router `put { n, k, snap, from }` (cast, served as delivered: no mailbox hop): the
//   writer's push of what it wrote (value, state) to every other connected node. A node
//   takes it if it holds a replica of the entry, or if callers there wait for a refresh of
//   it: they are answered at once, and their own request for the lock is withdrawn. Nothing
//   is acknowledged and nothing waits: the push is the writer's first frame of its tick to
//   each node, written at once (the transport writes a tick's first frame to a link at once,
//   the rest at the end of the tick); the writer's group join and the lock's release follow,
//   and the writer's callers are answered after those writes (./round.ts). A node the push
//   misses asks on its next miss.
// - router `clear { n, k, v }` -> true: drop value and state if older than `v` (the clear's
//   version); sent to every connected node, members or not, so a node whose refresh is in
//   flight gets it too.
// - router `keys { n }` -> [canon, key][]: the keys a node holds, for clearing every key.
// - router `failed { n, k, error, from }` -> true: the lock holder's fetch for callers who
//   missed failed (error: the ExpirableError in wire form). Sent to every other connected node
//   before the lock is released, and acknowledged: a node whose callers wait for a refresh
//   of that entry answers them with that failure and drops its own turn at the lock. So one
//   round costs the upstream one request, not one per waiting node, and its failure reaches
//   every caller of the round; a call after it starts a new round. Failures are not stored.
// - router `refreshFailed { g, v, retryInMs, failures, from }` -> true, sent to the members
//   of the entry's group `g`: the sender's background refresh of version v failed and it
//   retries in retryInMs. A node that no longer holds `g` ignores it. Receivers move their own timer for v
//   to a while after that retry (a backup, in case the sender dies) and, if they already
//   wait for the lock, give up their turn: so a failing provider sees about one attempt per
//   backoff step from the whole cluster, not one per replica. (`replicas()` lists the nodes of
//   the group's members.)
//
// Refresh (cluster scope), on the node whose callers missed or whose timer fired:
//
//     caller ─ single flight ─┬─> ask the entry's holders (a miss only, while the lock is
//                             │   asked for): a valid value -> adopt, answer, withdraw
//                             └─> trans(resource) ──> granted (token T)
//       1. local replica good enough? (a push or the ask above came first) -> done
//       2. ask every peer; adopt the newest snapshot; good enough now? -> done, no fetch
//       3. fetch; on success apply (version >= T), push to every node, join the group
//     <─ release (the same tick as the push), then the callers here are answered
//
// A cold stampede on N nodes costs one fetch, one lock grant (the nodes answered by the
// push withdraw their requests), N-1 asks and replies from the node granted the lock, and
// N-1 pushes; the callers on the other nodes are answered by the push itself, one message
// after the fetch ends. A node that misses while others hold a valid value takes it from
// its ask to them, with no turn at the lock.
//
// Node down: the lock is released when its holder's node goes down, so a waiter elsewhere
// is granted it, finds no newer value (the dead node pushed nothing, or everything) and
// fetches; nobody hangs on the dead node. A push or ask to a dead node fails at once
// (NodeDownError) or after the short timeout, and is skipped.
//
// Partitions: like `:global`, each side of a partition can grant the lock, so each side may
// fetch once; when the sides meet again the versions decide which value
// every replica keeps. Values are refreshed by whoever holds the lock; nothing merges.
//
// Clock skew: expiry is decided on each node from a monotonic deadline. The fetching node
// turns the fetch's `expiresAt` (Unix ms) into "ms left" with its own wall clock once;
// snapshots carry ms left and `expiresAt`, and each receiver counts the ms left down on its
// own monotonic clock (for an ask, from the moment it sent the question), bounded by
// `expiresAt` read on its own wall clock, whichever comes first (Replica.apply). Both bounds
// only shorten a value's life: a receiver whose wall clock is behind still expires it by the
// ms left; the transit of a push (or a receiver frozen with the push in its socket buffer)
// no longer lengthens it, where host clocks agree (one host, or hosts kept in sync by NTP).
// A receiver whose wall clock is ahead expires values early and refetches sooner.
import type { Behavior } from '../actors/behavior.js';
import { toWire, type WireError } from '../errors.js';
import type { PeerSnapshot, RefreshFailed } from './backend.js';
import type { StoreNode } from './cluster.js';
import type { Snapshot } from './replica.js';

/** Calls answered by a store's router actor. */
export type RouterCall =
  | { readonly t: 'ask'; readonly n: string; readonly k: string }
  | { readonly t: 'clear'; readonly n: string; readonly k: string; readonly v: number }
  | { readonly t: 'keys'; readonly n: string }
  | { readonly t: 'failed'; readonly n: string; readonly k: string; readonly error: WireError; readonly from: string }
  | RefreshFailedCall;

/** Another replica's failed background refresh, to the routers in the entry's group `g`. */
export type RefreshFailedCall = Omit<RefreshFailed, 't'> & { readonly t: 'refreshFailed'; readonly g: string };

/** Casts to a store's router id, handled as they are delivered (no mailbox). */
export type RouterCast = { readonly t: 'put'; readonly n: string; readonly k: string; readonly snap: Snapshot; readonly from: string };

/** What the router needs from the store on its node. */
export interface RouterHandlers {
  ask(name: string, canon: string): Snapshot | null;
  clear(name: string, canon: string, version: number): void;
  keys(name: string): [string, unknown][];
  failed(name: string, canon: string, error: WireError, from: string): void;
  put(name: string, canon: string, snap: Snapshot, from: string): void;
  /** Another replica of the entry whose group is `group` failed to refresh it. */
  refreshFailed(group: string, msg: RefreshFailed): void;
}

/** Well-known id of a store's router on every node. */
export const routerId = (namespace: string): string => `expirable-store/${namespace}`;

/** The router: answers from the local replicas at once, never waiting behind a refresh. */
export function routerBehavior(h: RouterHandlers): Behavior<null, RouterCall, unknown> {
  return {
    init: () => null,
    handleCall: (msg, state) => {
      switch (msg.t) {
        case 'ask':
          return { reply: h.ask(msg.n, msg.k), state };
        case 'clear':
          h.clear(msg.n, msg.k, msg.v);
          return { reply: true, state };
        case 'keys':
          return { reply: h.keys(msg.n), state };
        case 'failed':
          h.failed(msg.n, msg.k, msg.error, msg.from);
          return { reply: true, state };
        case 'refreshFailed':
          if (typeof msg.g !== 'string' || typeof msg.v !== 'number' || typeof msg.from !== 'string') return { reply: false, state };
          h.refreshFailed(msg.g, { t: 'failed', v: msg.v, retryInMs: msg.retryInMs ?? undefined, failures: msg.failures, from: msg.from });
          return { reply: true, state };
        default:
          return { reply: false, state };
      }
    },
  };
}

/**
 * The handler of the casts to the router id (a `put`), run as each is delivered: synchronous,
 * and it never throws (a malformed message is dropped, as a cast nobody handles).
 */
export function routerCasts(h: RouterHandlers): (msg: unknown) => void {
  return (msg) => {
    const m = msg as Partial<RouterCast> | null;
    if (m === null || typeof m !== 'object' || m.t !== 'put' || typeof m.n !== 'string' || typeof m.k !== 'string' || typeof m.from !== 'string') return;
    const snap = m.snap as Partial<Snapshot> | undefined;
    if (snap === null || typeof snap !== 'object' || typeof snap.v !== 'number' || typeof snap.ttl !== 'number') return;
    try {
      h.put(m.n, m.k, m.snap!, m.from);
    } catch {
      // a replica that cannot take it keeps what it holds; the next ask or push brings it
    }
  };
}

/** Tells the routers in `group` on the other nodes that this replica's refresh failed (acknowledged, not awaited). */
export function tellFailure(node: StoreNode, group: string, msg: RefreshFailed, timeout: number): void {
  const call: RefreshFailedCall = { t: 'refreshFailed', g: group, v: msg.v, retryInMs: msg.retryInMs, failures: msg.failures, from: msg.from };
  for (const m of node.pg.getMembers(group)) {
    if (m.node !== node.name) node.ref<RouterCall, unknown>(m).call(call, { timeout }).catch(() => undefined);
  }
}

/**
 * Asks every connected node (or those of them in `only`) for its snapshot of the entry;
 * resolves with the newest (or undefined) once every node asked answered or failed, or at
 * once with the first answer for which `enough` is true (the answers still on their way
 * are not waited for: one slow or silent node costs nothing when another holds what is
 * needed). `since` is the store clock's time now: the snapshots' time left counts from it.
 */
export function askPeers(
  node: StoreNode,
  namespace: string,
  name: string,
  canon: string,
  timeout: number,
  since: number,
  enough?: (s: PeerSnapshot) => boolean,
  only?: readonly string[],
): Promise<PeerSnapshot | undefined> {
  const peers = only ? node.nodes().filter((peer) => only.includes(peer)) : node.nodes();
  if (peers.length === 0) return Promise.resolve(undefined);
  const id = routerId(namespace);
  return new Promise((resolve) => {
    let best: PeerSnapshot | undefined;
    let left = peers.length;
    let done = false;
    const settle = (r: PeerSnapshot | undefined): void => {
      if (done) return;
      if (r && (!best || r.snap.v > best.snap.v)) best = r;
      if (r && enough?.(r)) {
        done = true;
        resolve(r);
        return;
      }
      if (--left === 0) {
        done = true;
        resolve(best);
      }
    };
    for (const peer of peers) {
      node
        .ref<RouterCall, Snapshot | null>({ node: peer, id })
        .call({ t: 'ask', n: name, k: canon }, { timeout })
        .then(
          (snap) => settle(snap ? { from: peer, snap, since } : undefined),
          () => settle(undefined), // a node without this store, down, or slow: it has nothing for us
        );
    }
  });
}

/**
 * Pushes `snap` (what the entry `canon` holds now) to the router of every other connected
 * node, as one cast each, sent at once in this call: the first frame of this tick to each
 * node is written at once, what the tick sends after it (the lock's release) at its end. A node
 * takes it if it holds a replica of the entry or callers there wait for it. Nothing is
 * acknowledged: a node it does not reach takes the value from the next push, or asks for it
 * on its next miss. Returns how many nodes it was sent to.
 */
export function pushToAll(node: StoreNode, namespace: string, name: string, canon: string, snap: Snapshot): number {
  const msg: RouterCast = { t: 'put', n: name, k: canon, snap, from: node.name };
  const id = routerId(namespace);
  let sent = 0;
  for (const peer of node.nodes()) {
    try {
      node.ref({ node: peer, id }).cast(msg);
      sent++;
    } catch {
      // too large for that node's frames (it asks on its next miss and gets the same refusal)
    }
  }
  return sent;
}

/**
 * Tells every connected node's router that the fetch of this round failed with `error`;
 * resolves when each answered or failed (before the lock is released: see `failed` above).
 */
export async function tellRoundFailed(node: StoreNode, namespace: string, name: string, canon: string, error: Error, timeout: number): Promise<void> {
  const id = routerId(namespace);
  const msg: RouterCall = { t: 'failed', n: name, k: canon, error: toWire(error), from: node.name };
  await Promise.all(
    node.nodes().map((peer) =>
      node
        .ref<RouterCall, unknown>({ node: peer, id })
        .call(msg, { timeout })
        .catch(() => undefined), // a node we cannot reach fetches on its own turn
    ),
  );
}

/** Tells every connected node's router to drop the entry if older than `version`. */
export async function broadcastClear(node: StoreNode, namespace: string, name: string, canon: string, version: number, timeout: number): Promise<void> {
  const id = routerId(namespace);
  await Promise.all(
    node.nodes().map((peer) =>
      node
        .ref<RouterCall, unknown>({ node: peer, id })
        .call({ t: 'clear', n: name, k: canon, v: version }, { timeout })
        .catch(() => undefined), // a node we cannot reach keeps its copy; versions protect the rest
    ),
  );
}

/** The keys every connected node holds for `name` (canonical text -> key). */
export async function collectKeys(node: StoreNode, namespace: string, name: string, timeout: number): Promise<Map<string, unknown>> {
  const id = routerId(namespace);
  const out = new Map<string, unknown>();
  const lists = await Promise.all(
    node.nodes().map((peer) =>
      node
        .ref<RouterCall, [string, unknown][]>({ node: peer, id })
        .call({ t: 'keys', n: name }, { timeout })
        .catch(() => [] as [string, unknown][]),
    ),
  );
  for (const list of lists) for (const [canon, key] of list) out.set(canon, key);
  return out;
}

