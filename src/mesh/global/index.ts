// Global locks: `node.global.trans(resource, fn, options)`, as Erlang's `:global.trans`, but
// fair (FIFO), without polling, and with fencing tokens.
//
// DESIGN NOTE (for the maintainer; the user-facing version is docs/locks.md)
//
// Where `:global` sets the lock on every node of the set and, when any refuses, sleeps a
// random time and tries again (slow and unfair under contention), each lock here has one
// coordinator that queues its requesters in arrival order and hands the lock to the next
// one in a single message when the holder lets go.
//
// Who coordinates: the rendezvous winner of the lock key over the live nodes of its node
// set (./rendezvous.ts). Nodes that see the same members agree without talking; a node
// leaving moves only the locks it coordinated, a node joining only those it now wins.
// Lock key = canonical text of the resource (../canonical-key.ts, the one the store's keys
// use; equal values, one lock), and for an explicit node set a key of its own that names
// the set (so `nodes: [node.name]` is a lock of its own and never blocks another node).
//
// Messages (catalogue and version in ./messages.ts), all casts to the `global` service of
// each node (ActorSystem.serve: handled as delivered, no mailbox hop):
//
//   requester                      coordinator
//     acquire(req) ──────────────────▶ queue.push(req); if free: grant
//     ◀────────────────────────────── granted(req, token)      (0 messages if self)
//     release(req) ──────────────────▶ holders.delete(req); granted(next) ──▶ next waiter
//
// Runs: when the next waiters in the queue are several requests of one node in a row (its
// contenders asked together, say in one turn of its event loop), they are granted together,
// each `after` the one before it. The coordinator counts them all as holders; their node lets
// one hold at a time and passes the lock down the run itself, with no message, and each
// releases to the coordinator as it finishes. The queue order is kept exactly; what a run
// saves is the trip through the coordinator between two holders on the same node, which is
// what bounds grants/s under contention. Each gets its own token, in order.
//
// Leases: a lock that one node keeps taking costs a round trip per call without them. When
// the last LEASE_STREAK (3) grants of a lock went to one node (not the coordinator's own),
// nobody waits, and the caller accepts it (TransOptions.lease, default true), the grant is a
// lease: it reserves LEASE_TOKENS (256) fencing tokens after its own (the coordinator's `last`
// jumps past them), and when the call settles its node keeps the lock, idle, instead of
// releasing it. A later call there takes it again with no message, under the same request
// id, with the next reserved token.
//
//   requester B                    coordinator                    requester C
//     (lease idle) ◀─────────────── revoke ◀────────────────────── acquire
//     release ─────────────────────▶ granted ──────────────────────▶
//   (a call running under the lease answers `busy` and releases when it settles)
//
// The coordinator revokes a lease (once) as soon as anyone queues behind it; a `retries`
// request that only an idle lease would refuse waits for the answer (`busy`: refuse; release:
// grant). An idle lease ends at once, released, when its tokens run out, after 1 s idle, on
// close, when the lock's winner changes in the node's view, on a `verify` from a node that
// is not its coordinator, and on any recovery round's `inquire` (reports carry no leases, so
// the new record holds it by nobody); a busy one then releases when its call settles. A
// lease's tokens may run at most 1 ms ahead of the clock term (see Fencing tokens), so the
// clock still covers the tokens of a dead coordinator. Locks that move between nodes never
// get one, so they never pay a revoke; a lease that another node wants costs that node one
// extra round trip (revoke, release) before its grant.
//
// - trans = acquire; run fn in an AsyncLocalStorage context that records the lock
//   (re-entrance); release in `finally`, as `:global.trans` does in its `after`.
// - Giving up (timeout, signal) sends `release` for the queued request: no ghost waiter.
//   `retries: n` is decided by the coordinator once: refused if more than n are ahead.
// - A grant that finds its request given up is sent straight back (release).
//
// Holder's node down: the coordinator drops every holder and waiter of that node on its
// `nodedown` and grants the next waiter at once (detection time = the mesh's).
//
// Coordinator change (its node died, or a joining node wins the lock now): every requester
// whose lock's winner changed re-registers with the new winner (a holder with its token).
// A node that receives a message for a lock it wins but has no record of runs a RECOVERY
// ROUND before granting anything:
//
//   new coordinator C                      every other connected node N
//     inquire(lk, round) ────────────────────▶ hand over own record of lk (if any) and drop it;
//                                              from now on N's requests for lk answer to C
//     ◀──────────────────── report(holders, waiters, highest token seen)
//   when all have reported (or gone down): holders = union, queue = waiters by call time,
//   token base = highest reported; grant only if no holder.
// Unless the node's SURVEY of its view says no node has anything of that lock: on every view
// change each node asks every node once (`inquireAll`) for the locks it holds, waits for or
// keeps leased, its highest token and its view; once all answered in the same view, a lock
// nobody named starts with authority and no round (./coordinator.ts has the invariants).
//
// Old coordinator alive (a node joined and wins the lock now): on its view change it pushes
// its record to the new winner (`handoff`) and forgets it, so it grants nothing more. The
// push matters while the joining node is not yet connected to the holder's node: it cannot
// learn the holder from the holder itself. Such a holder (on a node the coordinator has
// never been connected to) blocks the lock until its node connects, or for
// UNSEEN_HOLDER_GRACE_MS (10 s) if it never does (a dead node never joins).
//
// Races, each handled where noted:
// - A record that crossed a release on its way (the holder released to the new winner
//   before the old one pushed its record): a holder learned second-hand is verified with
//   its own node (`verify`), which answers `release` if it does not hold it any more.
// - A grant from the old coordinator still in flight after N answered C: N accepts grants
//   only from its current coordinator; it sends `decline` to C, which, if it counts N's
//   request as holder with that token (learned from the old coordinator's report), puts it
//   back at the head of the queue (requester.ts onGranted, coordinator.ts #onDecline).
// - A release or decline that reaches C during the round before the report that lists the
//   request: remembered in the round (`released`, `declined`), so the late report cannot
//   bring the holder back.
// - A message sent to C while C still sees the dead coordinator as winner: C forwards it
//   there and watches; when that node goes down at C, C probes the lock, and the round
//   rebuilds the state from the requesters themselves (coordinator.ts #entryFor).
// - A node that joins during a round is inquired too (it may hold the lock from the other
//   side of a partition).
// - A decline (or release) sent to a coordinator that is gone: a view change on the
//   requester's side (a node joining) can point it back at the dead node before it sees the
//   death. When it re-registers the request as waiting, the new coordinator, which counts
//   it as holder, asks it (`verify`) instead of ignoring it; its `decline` comes back. And a
//   release sent there is lost too: each requester keeps the latest releases and declines it
//   sent to each peer and, when it sees that peer go down, sends them again to each lock's
//   coordinator in its view (requester.ts #tell / peerDown); a second copy does nothing.
// - A long queue: `report` and `handoff` go in parts (all holders first), and a tick's
//   messages to one node in casts of at most 64, so no message outgrows a frame.
// - Views that disagree for a while (a link between two nodes drops and comes back while
//   both still see the others): two nodes may each take themselves for the coordinator.
//   Three rules keep either from blocking the lock for good once the views agree again.
//   A request remembers every node it registered with (acquire, re-registration, report) or
//   whose grant it refused; when it is done, and only then (tokens of two coordinators are
//   not ordered, so an earlier `disown` could drop a holder learned again meanwhile), those
//   other than its coordinator are told (`disown`: forget it as holder, up to the highest
//   token it saw). A revoke for a live request is not answered with a release. An old
//   coordinator that hands its record on (`handoff`) tells the nodes in it (`moved`), and so
//   does one that gets a report for a round it gave up: their requests answer to the winner
//   of their own view and re-register there. A holder's re-registration that reached the
//   coordinator forwarded (so possibly after the release sent to it directly) is verified
//   with its node.
// Requesters report facts (what they hold, what they wait for), never beliefs about
// others, so a round's result does not depend on which old coordinator survived.
//
// Fencing tokens (./fencing.ts): token = max(highest known + 1, wall-clock ms × 1024), read
// from a monotonic clock. Strictly increasing per lock on one coordinator; across a change,
// the new coordinator starts above every token a surviving node saw, and the clock term
// covers tokens that died with the old coordinator and its holder, assuming host clocks
// agree to within the takeover time minus 1 ms (failure detection, seconds; NTP gives
// milliseconds; the 1 ms is how far a lease's reserved tokens may run ahead of the clock).
// A lease's retakes use its reserved tokens, which no later grant reuses. Each node keeps
// one highest token for all locks (not one per lock): a lock it starts to coordinate, or
// whose record it dropped, starts above it, so a forgotten lock never goes back either.
//
// Memory per lock: a lock costs its coordinator an entry (holders, queue) only while held,
// waited for or in a round, and for the WARM_IDLE (64) most recently idle; any other idle
// lock, a compact record (its key and a value shared by all idle locks granted last to the
// same node) up to MAX_IDLE (10,000) idle locks, then nothing (its next request runs a
// round). A requester keeps nothing per lock once its call is done, apart from its idle
// leases, a winners cache and resend lists, each of fixed size. `lockMemory(node.global)` (./diagnostics.ts) counts them.
//
// GUARANTEES
// - Mutual exclusion among the nodes of the set while their views of the cluster agree
//   (every node connected to every other, the mesh's steady state): at most one `fn` per
//   lock runs, including across a holder's or a coordinator's death.
// - Fairness: waiters are granted in the order their requests reached the coordinator (a run
//   is consecutive requests of that order); after a coordinator change, in the order the
//   calls were made (wall clock of each node). One exception, bounded: a node holding an
//   idle lease may take it again while the revoke is on its way (one message time).
// - Liveness: a lock held by a node that goes down is granted to the next waiter as soon as
//   the coordinator sees that node down; close() releases at once.
//
// NON-GUARANTEES: PARTITIONS
// As with `:global`, a network partition (or a node connected to some peers but to neither
// the lock's old coordinator nor its holder) gives each side its own coordinator, and each
// side can grant the same lock: two `fn`s may
// run at once, one per side. There is no quorum: we keep the cluster available on both
// sides, as Erlang does. What protects the protected resource is the fencing token: a store
// that remembers the highest token it has accepted and refuses lower ones makes a stale
// holder's writes fail. When the partition heals, the holders re-register with the one
// winner, which lets nobody else in until all of them have released. A holder's `fn` is
// never interrupted: the library cannot stop code that runs.
export { GlobalLocks, GLOBAL_ACTOR } from './service.js';
export type { Lock, LockStats, TransOptions } from './service.js';
export type { CoordinatorStats, QueueInfo } from './coordinator.js';
export type { LockAcquireEvent, LockGrantEvent, LockReleaseEvent, LockFailEvent, LockMemory } from './diagnostics.js';
export { lockChannels, lockMemory } from './diagnostics.js';
export { resourceKey } from './service.js';
