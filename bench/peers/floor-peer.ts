// A fresh process for the read benchmark: measures the `await` floor where nothing of ours
// was loaded, so no AsyncLocalStorage has run. (Once one has, Node 20 tracks every promise
// of the process, and every `await` costs more; the read bench shows by how much.)
import { serve } from '../lib/child.js';
import { interleaveAsync } from '../lib/loop.js';

serve({
  async floor({ durationMs, value }: { durationMs: number; value: unknown }): Promise<number> {
    const floor = async (): Promise<unknown> => value;
    const ns = await interleaveAsync([{ name: 'floor', op: () => floor() }], { durationMs, batch: 1000 });
    return ns.floor!;
  },
});
