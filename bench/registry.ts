// Every benchmark, in the order `npm run bench -- all` runs them.
import actorCall from './actor-call.js';
import codec from './codec.js';
import meshRtt from './mesh-rtt.js';
import type { BenchModule } from './lib/types.js';

export const BENCHES: readonly BenchModule[] = [actorCall as BenchModule, codec as BenchModule, meshRtt as BenchModule];
