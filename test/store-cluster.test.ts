// The store across real node processes, with real faults, coordinating through the mesh:
// the shared scenario list of test/scenarios/store-cluster.ts.
import { describe } from 'vitest';
import { storeClusterScenarios } from './scenarios/store-cluster.js';

describe('the store across processes (mesh)', () => {
  storeClusterScenarios({ config: () => ({}) });
});
