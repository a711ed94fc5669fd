/** The cluster feature's public surface (see README.md in this folder). */
export { ClusterComponent, type ClusterDeps, type ClusterStatus } from './cluster.js';
export {
  type ClusterConfig,
  clusterBrokerOptions,
  clusterConfigSchema,
  clusterCrossCheck,
  redisEndpointOf,
  replicaIdOf,
} from './config-schema.js';
export { AgentWorkSharing } from './work-sharing.js';
