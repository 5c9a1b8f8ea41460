// A node process of bench/deploy-times.ts: starts a node from the JSON options in argv[2]
// and prints one JSON line { startedAt, address } (startedAt: Date.now() just before
// startNode), then runs until killed.
import { startNode, type NodeOptions } from '../../src/index.js';

const options = JSON.parse(process.argv[2]!) as NodeOptions;
const startedAt = Date.now();
const node = await startNode(options);
process.stdout.write(`${JSON.stringify({ startedAt, address: node.address })}\n`);
setInterval(() => {}, 60_000);
