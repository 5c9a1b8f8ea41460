// The Lua scripts of the Redis backend. Each runs atomically on the Redis server (or on the
// one Cluster node that owns the namespace's slot: every key a script touches carries the
// namespace's hash tag, see ./keys.ts), so a check and the write it guards can never be
// split by another process.
//
// Data, per namespace (hash tag `{es:<ns>}`):
// - `seq`    (string): the last version handed out. Versions are fencing tokens and write
//   versions at once: `next = max(seq + 1, Redis TIME in ms)`. Tied to the server's clock,
//   a counter lost with a restart of Redis starts again above every version issued before
//   (as long as fewer than one version per millisecond was issued on average); the resync
//   of every process also raises it above the versions the process holds (READ below).
// - `floors` (hash): name -> version of the last `clearAll(name)`; `*` -> version of the
//   last clear of the whole namespace. An entry whose version is not above its floor is
//   cleared (a tombstone at the floor's version), whatever it stores.
// - entry    (hash): v (version), t (token of the lease that wrote it; 0 for a clear),
//   has ('1' with a value), at (expiry in Redis ms, or 'inf'), val (encoded value),
//   hs ('1' with a state), st (encoded state).
// - lease    (string, PX): the token of the fetch lease of an entry.
// - holders  (sorted set): process name -> Redis ms until which it holds a replica.
//
// A snapshot travels as the array { v, has, ttl, val, hs, st }: ttl is the ms left by the
// Redis clock (-1: never expires), val and st are '' when absent.
//
// Every write publishes on the namespace's channel, in the same script, a message that
// carries the snapshot itself: a 4-byte big-endian header length, the header (msgpack array
// `[kind, name, canon, origin, v, has, ttl, hs, valLength, stLength]`), val, st.
// Kinds: 'w' a write (value or state), 'c' a clear of one entry, 'C' a clear of every key
// of `name` ('*': every expirable), 'f' a lease released without a write (waiters retry),
// 'x' the fetch under lease `v` failed for callers who missed (val: the error, msgpack; sent
// only while that lease holds, before its release), 'r' a replica's background refresh of
// version `v` failed (val: `{ r: retry in ms or -1, f: failures }`, msgpack), 'h' a process
// began or stopped holding the entry (readers of its holders read them again). Failures are
// never stored: 'x' and 'r' are messages only.
import { createHash } from 'node:crypto';

export interface Script {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

const PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function fmt(n) return string.format('%d', n) end
local function next_version(seq, now)
  local v = math.max(tonumber(redis.call('GET', seq) or '0') + 1, now)
  redis.call('SET', seq, fmt(v))
  return v
end
local function floor_of(floors, name)
  local f = redis.call('HMGET', floors, name, '*')
  return math.max(tonumber(f[1] or '0'), tonumber(f[2] or '0'))
end
local function snap(key, floor, now)
  local e = redis.call('HMGET', key, 'v', 'has', 'at', 'val', 'hs', 'st')
  local v = tonumber(e[1] or '0')
  if v <= floor then
    if floor > 0 then return {floor, 0, 0, '', 0, ''} end
    return nil
  end
  local has, ttl = 0, 0
  if e[2] == '1' then
    if e[3] == 'inf' then has, ttl = 1, -1
    else
      local left = tonumber(e[3]) - now
      if left > 0 then has, ttl = 1, left end
    end
  end
  local hs = 0
  if e[5] == '1' then hs = 1 end
  local val, st = '', ''
  if has == 1 then val = e[4] or '' end
  if hs == 1 then st = e[6] or '' end
  return {v, has, ttl, val, hs, st}
end
local function publish(cmd, channel, kind, name, canon, origin, s)
  local v, has, ttl, val, hs, st = 0, 0, 0, '', 0, ''
  if s then v, has, ttl, val, hs, st = s[1], s[2], s[3], s[4], s[5], s[6] end
  local h = cmsgpack.pack({kind, name, canon, origin, v, has, ttl, hs, #val, #st})
  redis.call(cmd, channel, struct.pack('>I4', #h) .. h .. val .. st)
end
`;

function script(name: string, body: string): Script {
  const source = `${PRELUDE}\n${body}`;
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * KEYS: entry, lease, seq, floors. ARGV: name, leaseMs, mode ('value' | 'lease'), replace.
 * mode 'value': a valid stored value whose version is not `replace` is returned as it is:
 *   { 'value', snapshot... }.
 * Otherwise, while another lease runs: { 'busy', ms left of it, its token }.
 * Otherwise the lease is taken: { 'lease', token, snapshot... } (snapshot absent when
 * nothing is stored), the token above every version of the namespace.
 */
export const CLAIM = script(
  'claim',
  `
local now = now_ms()
local floor = floor_of(KEYS[4], ARGV[1])
local s = snap(KEYS[1], floor, now)
if ARGV[3] == 'value' and s and s[2] == 1 and s[1] ~= tonumber(ARGV[4]) then
  return {'value', s[1], s[2], s[3], s[4], s[5], s[6]}
end
local left = redis.call('PTTL', KEYS[2])
if left ~= -2 then return {'busy', math.max(left, 0), redis.call('GET', KEYS[2]) or '0'} end
local token = next_version(KEYS[3], now)
redis.call('SET', KEYS[2], fmt(token), 'PX', ARGV[2])
if s then return {'lease', token, s[1], s[2], s[3], s[4], s[5], s[6]} end
return {'lease', token}
`,
);

/** KEYS: lease. ARGV: token, leaseMs. 1 if the lease still held this token (and now runs leaseMs more). */
export const RENEW = script(
  'renew',
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`,
);

/** KEYS: lease. ARGV: token, pubcmd, channel, name, canon, origin. Drops the lease if it holds token; tells waiters. */
export const RELEASE = script(
  'release',
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  publish(ARGV[2], ARGV[3], 'f', ARGV[4], ARGV[5], ARGV[6], nil)
  return 1
end
return 0
`,
);

/**
 * KEYS: entry, lease, seq, floors.
 * ARGV: name, canon, token, mode ('value' | 'state'), has, ttl (-1: never), val, hs, st,
 *       release ('1' | '0'), pubcmd, channel, origin [, proposed version].
 * Refused ({ 'fenced', why }) when a clear or another lease's write is newer than the token,
 * or another lease runs now (a refused write with release = '1' still ends its own lease).
 * Otherwise writes (mode 'state' keeps the value as stored), publishes, and answers
 * { 'ok', snapshot... }.
 * The version: the proposed one when no other write can have it — the lease's own token for
 * the lease's first write (issued once, to this lease alone), or one above every version
 * issued (above seq) — so the writer's version and the stored one agree; otherwise a fresh
 * one. Either way above the token's floor, the entry's version and the clear floors.
 * Every field is written with one HSET, and the snapshot of a value write is built from the
 * arguments (a state write reads the value it keeps): as few calls as the checks allow.
 */
export const WRITE = script(
  'write',
  `
local now = now_ms()
local token = tonumber(ARGV[3])
local floor = floor_of(KEYS[4], ARGV[1])
local held = redis.call('GET', KEYS[2])
local function refuse(why)
  -- A refused write that was to end its lease still ends it: its holder is done.
  if ARGV[10] == '1' and held == ARGV[3] then
    redis.call('DEL', KEYS[2])
    publish(ARGV[11], ARGV[12], 'f', ARGV[1], ARGV[2], ARGV[13], nil)
  end
  return {'fenced', why}
end
if token <= floor then return refuse('cleared') end
local cur = redis.call('HMGET', KEYS[1], 'v', 't')
local curV = tonumber(cur[1] or '0')
if curV >= token and cur[2] ~= ARGV[3] then return refuse('newer') end
if held and held ~= ARGV[3] then return refuse('lease') end
local v
local proposed = tonumber(ARGV[14] or '0')
local seqNow = tonumber(redis.call('GET', KEYS[3]) or '0')
if proposed >= token and proposed > curV and ((proposed == token and cur[2] ~= ARGV[3]) or proposed > seqNow) then
  v = proposed
  if v > seqNow then redis.call('SET', KEYS[3], fmt(v)) end
else
  v = math.max(seqNow + 1, now)
  redis.call('SET', KEYS[3], fmt(v))
end
local f = {'v', fmt(v), 't', ARGV[3]}
local gone = {}
local s
if ARGV[4] == 'value' then
  local has, ttl, val = 0, 0, ''
  if ARGV[5] == '1' then
    local at = 'inf'
    if ARGV[6] ~= '-1' then at = fmt(now + tonumber(ARGV[6])) end
    f[#f + 1] = 'has'; f[#f + 1] = '1'; f[#f + 1] = 'at'; f[#f + 1] = at; f[#f + 1] = 'val'; f[#f + 1] = ARGV[7]
    if ARGV[6] == '-1' then has, ttl, val = 1, -1, ARGV[7]
    elseif tonumber(ARGV[6]) > 0 then has, ttl, val = 1, tonumber(ARGV[6]), ARGV[7] end
  else
    f[#f + 1] = 'has'; f[#f + 1] = '0'
    gone[#gone + 1] = 'at'; gone[#gone + 1] = 'val'
  end
  s = {v, has, ttl, val, 0, ''}
end
if ARGV[8] == '1' then
  f[#f + 1] = 'hs'; f[#f + 1] = '1'; f[#f + 1] = 'st'; f[#f + 1] = ARGV[9]
else
  f[#f + 1] = 'hs'; f[#f + 1] = '0'
  gone[#gone + 1] = 'st'
end
redis.call('HSET', KEYS[1], unpack(f))
if #gone > 0 then redis.call('HDEL', KEYS[1], unpack(gone)) end
if ARGV[10] == '1' and held then redis.call('DEL', KEYS[2]) end
if s then
  if ARGV[8] == '1' then s[5], s[6] = 1, ARGV[9] end
else
  s = snap(KEYS[1], floor, now)
end
publish(ARGV[11], ARGV[12], 'w', ARGV[1], ARGV[2], ARGV[13], s)
return {'ok', s[1], s[2], s[3], s[4], s[5], s[6]}
`,
);

/**
 * KEYS: lease. ARGV: pubcmd, channel, kind ('x' | 'r'), name, canon, origin, v, payload.
 * Publishes a failure message (see the kinds above). Kind 'x' is sent only while the lease
 * holds token `v` (a lost lease's failure would answer callers waiting on another one).
 * 1 if published.
 */
export const TELL = script(
  'tell',
  `
if ARGV[3] == 'x' and redis.call('GET', KEYS[1]) ~= ARGV[7] then return 0 end
publish(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], {tonumber(ARGV[7]), 0, 0, ARGV[8], 0, ''})
return 1
`,
);

/** KEYS: entry, seq. ARGV: name, canon, pubcmd, channel, origin. A tombstone with a fresh version; returns it. */
export const CLEAR = script(
  'clear',
  `
local v = next_version(KEYS[2], now_ms())
redis.call('HSET', KEYS[1], 'v', fmt(v), 't', '0', 'has', '0', 'hs', '0')
redis.call('HDEL', KEYS[1], 'at', 'val', 'st')
publish(ARGV[3], ARGV[4], 'c', ARGV[1], ARGV[2], ARGV[5], {v, 0, 0, '', 0, ''})
return v
`,
);

/** KEYS: seq, floors. ARGV: name ('*': every expirable), pubcmd, channel, origin. Raises the floor; returns it. */
export const CLEAR_ALL = script(
  'clearAll',
  `
local v = next_version(KEYS[1], now_ms())
redis.call('HSET', KEYS[2], ARGV[1], fmt(v))
publish(ARGV[2], ARGV[3], 'C', ARGV[1], '', ARGV[4], {v, 0, 0, '', 0, ''})
return v
`,
);

/**
 * KEYS: seq, floors, entry... ARGV: (name, held version) per entry.
 * For each entry, what Redis holds if it is newer than the held version ({} otherwise).
 * Raises seq above every held version: after a restart of Redis that lost every key, the
 * next versions are above what the processes still hold.
 */
export const READ = script(
  'read',
  `
local now = now_ms()
local out = {}
local maxHeld = 0
for i = 3, #KEYS do
  local name, held = ARGV[(i - 3) * 2 + 1], tonumber(ARGV[(i - 3) * 2 + 2])
  if held > maxHeld then maxHeld = held end
  local s = snap(KEYS[i], floor_of(KEYS[2], name), now)
  if s and s[1] > held then out[#out + 1] = s else out[#out + 1] = {} end
end
if maxHeld > tonumber(redis.call('GET', KEYS[1]) or '0') then redis.call('SET', KEYS[1], fmt(maxHeld)) end
return out
`,
);

/**
 * KEYS: holders sets. ARGV: process name, leaseMs [, pubcmd, channel, name, canon]. Registers
 * (or refreshes) the process in each; with the last four (one entry), a new registration is
 * published ('h').
 */
export const HOLD = script(
  'hold',
  `
local until_ms = now_ms() + tonumber(ARGV[2])
for _, k in ipairs(KEYS) do
  local added = redis.call('ZADD', k, fmt(until_ms), ARGV[1])
  redis.call('PEXPIRE', k, fmt(tonumber(ARGV[2]) * 2))
  if added == 1 and #ARGV >= 6 then publish(ARGV[3], ARGV[4], 'h', ARGV[5], ARGV[6], ARGV[1], nil) end
end
return #KEYS
`,
);

/**
 * KEYS: holders sets. ARGV: process name [, pubcmd, channel, name, canon]. Unregisters the
 * process from each; with the last four (one entry), the change is published ('h').
 */
export const UNHOLD = script(
  'unhold',
  `
for _, k in ipairs(KEYS) do
  local removed = redis.call('ZREM', k, ARGV[1])
  if removed == 1 and #ARGV >= 5 then publish(ARGV[2], ARGV[3], 'h', ARGV[4], ARGV[5], ARGV[1], nil) end
end
return #KEYS
`,
);

/** KEYS: holders set. The processes whose registration has not expired, by name. */
export const HOLDERS = script(
  'holders',
  `
return redis.call('ZRANGE', KEYS[1], '(' .. fmt(now_ms()), '+inf', 'BYSCORE')
`,
);
