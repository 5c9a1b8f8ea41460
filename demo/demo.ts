// `npm run demo`: the seed README's story on a 3-node cluster on this machine (see
// ./cluster.ts). `npm run demo -- actors` shows the actor runtime alone.
import { actorsDemo } from './actors.js';
import { clusterDemo } from './cluster.js';

if (process.argv[2] === 'actors') await actorsDemo();
else await clusterDemo();
