// Every benchmark, in the order `npm run bench -- all` runs them.
import actorCall from './actor-call.js';
import codec from './codec.js';
import lock from './lock.js';
import meshRtt from './mesh-rtt.js';
import pg from './pg.js';
import scale from './scale.js';
import read from './read.js';
import replication from './replication.js';
import stampede from './stampede.js';
import type { BenchModule } from './lib/types.js';

export const BENCHES: readonly BenchModule[] = [actorCall as BenchModule, codec as BenchModule, meshRtt as BenchModule, lock as BenchModule, read as BenchModule, stampede as BenchModule, replication as BenchModule, pg as BenchModule, scale as BenchModule];
