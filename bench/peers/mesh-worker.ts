// The worker-thread node of the mesh-rtt benchmark: started by `node.startWorker` in a
// mesh-peer process, it links to that node and serves an echo actor named 'bench-echo'.
import { startNode } from '../../src/index.js';

const node = await startNode();
node.spawn({ init: () => null, handleCall: (msg: unknown, state: null) => ({ reply: msg, state }) }, { name: 'bench-echo' });
