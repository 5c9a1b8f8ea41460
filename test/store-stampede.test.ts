// The order of what a node sends when its fetch for a cold stampede ends, over real TCP
// between nodes of this process: the push of the value answers the callers waiting on the
// other nodes, so it goes first on every link; the writer's group join follows it.
import diagnostics_channel from 'node:diagnostics_channel';
import { describe, expect, it, vi } from 'vitest';
import { defineExpirables } from '../src/dsl/define.js';
import { expirable } from '../src/dsl/definition.js';
import { ok } from '../src/store/result.js';
import { localCluster } from './fixtures/store-mesh.js';
import { EventLog, gate, uniqueNamespace } from './fixtures/store-tools.js';

describe('the end of a stampede fetch (TCP, one process)', () => {
  // Pins: the writer joined the entry's group before it pushed, so the join took the write
  // the transport makes at once for the first frame of a tick, and the push, which is what
  // answers the callers over there, waited for the end of the tick behind it.
  it('a node whose callers wait takes the pushed value before it learns of the writer joining the group', async () => {
    await using c = await localCluster(2);
    const [A, B] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
    const namespace = uniqueNamespace('push-first');
    const resource = `expirable-store/${namespace}/token/`;
    const g = gate();
    let fetches = 0;
    const defs = () => ({
      token: expirable({
        fetch: async () => {
          fetches++;
          await g.promise;
          return ok('tok-1', Date.now() + 60_000);
        },
      }),
    });
    const SA = defineExpirables(defs(), { node: A, namespace });
    const SB = defineExpirables(defs(), { node: B, namespace });
    using events = new EventLog(namespace);
    // B's view of the group when A's push is applied there (synchronously, in its handler).
    let groupAtPush: string[] | undefined;
    const onReplicate = (m: unknown): void => {
      const e = m as { namespace: string; node: string; how: string };
      if (e.namespace === namespace && e.node === B.name && e.how === 'push') groupAtPush ??= B.pg.getMembers(resource).map((r) => r.node);
    };
    diagnostics_channel.subscribe('expirable-store:replicate', onReplicate);
    try {
      const a = SA.token();
      await events.next((e) => e.channel === 'fetchStart' && e.node === A.name);
      // B misses while A holds the lock: its callers wait for A's push.
      const lockAsked = new Promise<void>((resolve) => {
        const onAcquire = (m: unknown): void => {
          if ((m as { node: string }).node === B.name && (m as { resource: unknown }).resource === resource) {
            diagnostics_channel.unsubscribe('expirable-store:lock:acquire', onAcquire);
            resolve();
          }
        };
        diagnostics_channel.subscribe('expirable-store:lock:acquire', onAcquire);
      });
      const b = SB.token();
      await lockAsked;
      g.open();
      expect(await a).toMatchObject({ ok: true, value: 'tok-1' });
      expect(await b).toMatchObject({ ok: true, value: 'tok-1' });
      expect(fetches).toBe(1);
      expect(SB.stats().token).toMatchObject({ fetches: 0, replicated: 1 });
      // The push came first on the link: A's join had not been read at B yet...
      expect(groupAtPush).toEqual([]);
      // ...and it was sent: B sees A among the holders soon after.
      await vi.waitFor(() => expect(B.pg.getMembers(resource).map((r) => r.node)).toContain(A.name));
    } finally {
      diagnostics_channel.unsubscribe('expirable-store:replicate', onReplicate);
      await SA.close();
      await SB.close();
    }
  });
});
