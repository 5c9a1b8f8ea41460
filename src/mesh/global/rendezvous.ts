// Which node coordinates a lock: the rendezvous (highest random weight) winner of the lock
// key over the live nodes of its node set. Every node that sees the same live set picks the
// same coordinator without talking; when a node leaves, only the locks it coordinated move,
// and when one joins, only the locks it now wins move to it (about 1/n of them).

/** 53-bit string hash (cyrb53): fast, well mixed, not cryptographic (ids are not secrets). */
export function hash53(s: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** The coordinator of `lockKey` among `nodes` (undefined when `nodes` is empty). Ties go to the smaller name. */
export function rendezvous(lockKey: string, nodes: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const node of nodes) {
    const w = hash53(`${lockKey}\u0000${node}`);
    if (w > bestWeight || (w === bestWeight && best !== undefined && node < best)) {
      best = node;
      bestWeight = w;
    }
  }
  return best;
}
