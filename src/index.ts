// The public entry of expirable-store: everything exported here is public, nothing else is.
export { startNode, Node, REFUSED_WARNING_CODE, DISCOVERY_WARNING_CODE } from './node.js';
export type { NodeOptions, NodeEvents, NodeListeners, TlsOptions } from './node.js';
export type { DiscoveryOptions } from './mesh/discovery.js';
export { startClusterNode, CLUSTER_MESSAGE_KEY } from './node-cluster.js';
export type { ClusterNodeOptions } from './node-cluster.js';
export type { WorkerNode, WorkerNodeOptions } from './mesh/worker.js';
export type { RefusedInfo } from './mesh/mesh.js';
export { ActorRef, sameRef } from './actors/ref.js';
export type { ActorRefData } from './actors/ref.js';
export type { Behavior, Reply, NoReply, From, CallOptions, SpawnOptions } from './actors/behavior.js';
export { Agent } from './actors/agent.js';
export { ProcessGroups } from './mesh/pg.js';
export type { PgEvent } from './mesh/pg.js';
export { GlobalLocks, lockChannels } from './mesh/global/index.js';
export type {
  Lock,
  LockStats,
  TransOptions,
  CoordinatorStats,
  QueueInfo,
  LockAcquireEvent,
  LockGrantEvent,
  LockReleaseEvent,
  LockFailEvent,
} from './mesh/global/index.js';
export { defineExpirables } from './dsl/define.js';
export { redisBackend, RedisBackend } from './store/backends/redis/backend.js';
export type { RedisBackendOptions } from './store/backends/redis/backend.js';
export type { DefineOptions } from './dsl/define.js';
export { expirable } from './dsl/definition.js';
export type {
  ExpirableDefinition,
  CommonOptions as ExpirableCommonOptions,
  RefreshOption,
  ScopeOption,
  UnkeyedOptions,
  UnkeyedRequiredStateOptions,
  KeyedOptions,
  KeyedRequiredStateOptions,
} from './dsl/definition.js';
export { ok, fail } from './store/result.js';
export type { Ok, Fail, FetchOutcome, ExpirableResult } from './store/result.js';
export type { Expirables, ExpirableStats, Definitions } from './dsl/types.js';
export { expirableChannels } from './store/diagnostics.js';
export {
  ExpirableStoreError,
  CallTimeoutError,
  ActorDownError,
  NodeDownError,
  SerializationError,
  ExpirableSerializationError,
  LockNotAcquiredError,
  ExpirableError,
  InvalidOptionError,
  InvalidDefinitionError,
  ProtocolError,
  RemoteError,
  DiscoveryError,
  NotReadyError,
} from './errors.js';
export type { DownReason, ErrorCode, ExpirableFailure, LockFailure } from './errors.js';
