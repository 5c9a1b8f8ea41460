// The catalogue of wire messages of the mesh, with the protocol version and its history.
// Every frame payload is a msgpack array whose first element is one of the tags below.
//
// Version history:
// - 1: first version (handshake with HMAC-SHA256 challenge-response in both directions,
//   membership gossip, heartbeats, remote call/cast/stop/monitor).
// - 2: the dialer proves first: CHALLENGE no longer carries the acceptor's proof (it gave
//   anyone who sent a HELLO an HMAC of the cookie to crack offline); the acceptor proves
//   itself in WELCOME, after checking the dialer's AUTH. HELLO and CHALLENGE carry the
//   largest frame payload the sender accepts, so the other side checks before sending.
// - 3: the lock service's messages (carried in CAST) are at version 2: a grant can be part
//   of a run (src/mesh/global/messages.ts). Nothing else changed on the wire.
// - 4: the lock service's messages are at version 3: a node that keeps taking a lock may
//   keep it idle between its calls (a lease) until its coordinator revokes it. Nothing else
//   changed on the wire.
// - 5: HELLO and CHALLENGE carry the address the sender is dialled at (its `advertise`
//   address), so a peer knows it before MEMBERS. PING/PONG probe whether a connected node is
//   still alive when another process claims its name (a restart). Refusal reasons renamed:
//   'bad_cookie' is 'cookie', 'duplicate_name' is 'name_in_use'.
// - 6: values arrive as they left (./codec.ts): a Map travels as extension 0x4d (no longer
//   as a msgpack map, which decoded as a plain object), -0 as extension 0x2d, a Set, a typed
//   array other than Buffer, an ArrayBuffer and a BigInt beyond 64 bits as msgpackr's
//   `moreTypes` extensions (a Set was an array, a typed array a Buffer, a large BigInt was
//   refused). Lock names are the canonical text of ./canonical-key.ts (a string resource is
//   its own text; it was JSON-quoted), so the coordinator of a lock is another node than
//   under 4: nodes of 5 and 6 must not share locks.
// - 7: the store's push of a written value (src/store/replication.ts) is one CAST to every
//   connected node's store router, served as delivered, no longer a CALL to each replica's
//   actor and to the router of the others: a node of 6 would not take a node of 7's values.
//   Nothing else changed on the wire.
// - 8: the lock service's messages are at version 4: a node surveys every node once per view
//   change (`inquireAll`/`reportAll`) and takes on a lock nobody named with no recovery round.
//   Nothing else changed on the wire.
//
// Handshake (before authentication; decoded with strict limits, see ./handshake.ts):
// - HELLO      dialer → acceptor  [1, version, name, incarnation, nonce, maxFrameSize, address | null]
// - CHALLENGE  acceptor → dialer  [2, version, name, incarnation, nonce, maxFrameSize, address | null]
// - AUTH       dialer → acceptor  [3, dialerProof]
// - WELCOME    acceptor → dialer  [4, acceptorProof]   (sent only after AUTH checked out)
// - REFUSE     either way         [5, reason, message]  then the link closes
//
// Membership and liveness (authenticated, see ./mesh.ts and ./heartbeat.ts):
// - MEMBERS    [10, [[name, address | null], …]]  nodes the sender is connected to (itself
//              first); sent to a new peer at once, and to every peer when one comes up
// - HEARTBEAT  [11]  sent when nothing else was sent for a heartbeat interval
// - BYE        [12]  the sender is closing: the receiver reports it down, reason 'closed'
// - PING       [13, probeId]  are you alive? (another process claims your name) → PONG
// - PONG       [14, probeId]  answered at once on receipt of PING
//
// Remote actors (authenticated, see ./remote.ts):
// - CALL       [20, callId, actorId, msg]           → REPLY or REPLY_ERROR with the same callId
// - REPLY      [21, callId, value]
// - REPLY_ERROR[22, callId, WireError]
// - CAST       [23, actorId, msg]
// - STOP       [24, callId, actorId, reason]        → REPLY(callId, null) once stopped
// - MONITOR    [25, monitorId, actorId]             → DOWN(monitorId, reason) once, when it goes down
// - DEMONITOR  [26, monitorId]
// - DOWN       [27, monitorId, WireDownReason]

/** Version of the wire protocol; peers of another version are refused. */
export const PROTOCOL_VERSION = 8;

export const Tag = {
  HELLO: 1,
  CHALLENGE: 2,
  AUTH: 3,
  WELCOME: 4,
  REFUSE: 5,
  MEMBERS: 10,
  HEARTBEAT: 11,
  BYE: 12,
  PING: 13,
  PONG: 14,
  CALL: 20,
  REPLY: 21,
  REPLY_ERROR: 22,
  CAST: 23,
  STOP: 24,
  MONITOR: 25,
  DEMONITOR: 26,
  DOWN: 27,
} as const;

/** Reasons carried by REFUSE, and by the 'refused' event. */
export type RefuseReason =
  | 'cookie' // the other side failed the cookie challenge
  | 'version' // other protocol version
  | 'name_in_use' // the name is ours, or a live node of that name is connected
  | 'bad_handshake' // malformed handshake message
  | 'simultaneous' // both dialled at once; the other link wins (quiet)
  | 'already_connected' // a link to that node exists (quiet)
  | 'closing' // this node is closing (quiet)
  | 'self'; // a node dialled itself (a seed list that names it; quiet)

/** Refusals that are normal races, not reported as 'refused' events. */
export const QUIET_REFUSALS: ReadonlySet<string> = new Set(['simultaneous', 'already_connected', 'closing', 'self']);

/** Frame size allowed before authentication: handshake messages are tiny. */
export const HANDSHAKE_MAX_FRAME = 4096;

/** Node names: the same rule as startNode's `name` option. */
export const NAME_PATTERN = /^[\w.@:-]{1,255}$/;

/** A dialable `host:port` (host may be an IPv6 address in brackets or not; the port is checked where it is parsed). */
export const ADDRESS_PATTERN = /^[^\s]{1,253}:\d{1,5}$/;

/** Length of the random nonces of the challenge-response, in bytes. */
export const NONCE_SIZE = 32;
