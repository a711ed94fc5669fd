/**
 * Cluster mode, wired: one `cluster:` config section turns on the broker's shared state on Redis
 * (runtime/broker/cluster-persistence.ts), device leases (the device layer's driver loader is wrapped),
 * agent work sharing (the agent's handler is wrapped) and the cluster component (membership, leases,
 * calls between replicas, the `cluster` status section). Only the composition root (app.ts) uses this.
 */
import { ClusterComponent, clusterBrokerOptions } from '../cluster/index.js';
import type { ClusterBrokerOptions } from '../runtime/broker/cluster-persistence.js';
import type { Config } from '../runtime/config/schema.js';
import type { Logger } from '../runtime/logging.js';

export interface ClusterFigures {
  agentLoad: () => { queued: number; running: number } | null;
  /** A model is loaded for the agent, so shared requests can be served here. */
  modelReady: () => boolean;
  mqttClients: () => number;
}

export interface ClusterWiring {
  component: ClusterComponent;
  brokerOptions: ClusterBrokerOptions;
}

/** Null outside cluster mode. `figures` are read later (at heartbeats), so they may refer to parts built after this. */
export function clusterWiring(config: Config, logger: Logger, figures: ClusterFigures): ClusterWiring | null {
  if (!config.cluster?.enabled) return null;
  const component = new ClusterComponent(
    {
      config: config.cluster,
      load: () => {
        const agent = figures.agentLoad();
        return { agent_running: agent?.running ?? 0, agent_queued: agent?.queued ?? 0, mqtt_clients: figures.mqttClients() };
      },
      agentCapacity: () => figures.modelReady() && (figures.agentLoad()?.queued ?? 1) === 0,
      defaultDeadlineMs: config.scheduler?.default_deadline_ms ?? 200,
    },
    logger,
  );
  return { component, brokerOptions: clusterBrokerOptions(config.cluster) };
}
