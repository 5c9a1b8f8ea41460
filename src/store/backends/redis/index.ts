// The Redis coordination backend: `redisBackend(options)` and the types the store drives.
export { redisBackend, RedisBackend, REDIS_CLIENT_PACKAGE, type RedisBackendOptions } from './backend.js';
export { RedisNamespace, Lease, type BackendListener, type Claim, type ClaimOptions, type WriteResult } from './namespace.js';
export { RedisCoordination } from './coordination.js';
