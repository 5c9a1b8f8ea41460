// What a held key of a cluster-scope expirable costs a node in actors: the store's router is
// its place in the key's group (`replicas()`), so holding 300 keys spawns no actor per key.
// (That the other replicas' failed refreshes still reach a key's replica through the router is
// store-mesh.test.ts 6: the cluster retries once per backoff step, not once per replica.)
import { describe, expect, it } from 'vitest';
import { defineExpirables } from '../src/dsl/define.js';
import { expirable } from '../src/dsl/definition.js';
import type { Node } from '../src/node.js';
import { localCluster } from './fixtures/store-mesh.js';
import { ok } from '../src/store/result.js';
import { uniqueNamespace } from './fixtures/store-tools.js';

const actors = (n: Node): number => [...n.system.localIds()].length;

describe('a held key costs a group membership, not an actor', () => {
  it('300 keys held on two nodes: no actor per key; each key lists both nodes; closing the store leaves every group', async () => {
    await using c = await localCluster(2);
    const [a, b] = c.nodes as [Node, Node];
    const namespace = uniqueNamespace('footprint');
    const defs = { tenant: expirable({ keyed: true, fetch: async (k: string) => ok(`v-${k}`, Date.now() + 60_000) }) };
    const A = defineExpirables(defs, { node: a, namespace });
    const B = defineExpirables(defs, { node: b, namespace });
    // One key each, so both routers and anything a first call starts exist before counting.
    await A.tenantOrThrow('warm');
    await B.tenantOrThrow('warm');
    const beforeA = actors(a);
    const beforeB = actors(b);
    const keys = Array.from({ length: 300 }, (_, i) => `t-${i}`);
    for (const k of keys) expect(await A.tenantOrThrow(k)).toBe(`v-${k}`);
    for (const k of keys) expect(await B.tenantOrThrow(k)).toBe(`v-${k}`);
    expect(A.stats().tenant).toMatchObject({ fetches: 301 });
    expect(B.stats().tenant).toMatchObject({ fetches: 0 });
    // Per-key actors would add 300 here; the bound leaves room for a few actors of other jobs.
    expect(actors(a) - beforeA).toBeLessThan(10);
    expect(actors(b) - beforeB).toBeLessThan(10);
    await expect.poll(() => A.replicas('tenant', 't-299'), { timeout: 5_000 }).toEqual([a.name, b.name].sort());
    expect(B.replicas('tenant', 't-0')).toEqual([a.name, b.name].sort());
    await B.close();
    await expect.poll(() => A.replicas('tenant', 't-0'), { timeout: 5_000 }).toEqual([a.name]);
    expect(keys.some((k) => A.replicas('tenant', k).includes(b.name))).toBe(false);
    await A.close();
  });
});
