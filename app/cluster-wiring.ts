/**
 * Cluster mode, wired: one `cluster:` config section turns on the broker's shared state on Redis
 * (runtime/broker/cluster-persistence.ts), device leases (the device layer's driver loader is wrapped),
 * agent work sharing (the agent's handler is wrapped) and the cluster component (membership, leases,
 * calls between replicas, the `cluster` status section). Only the composition root (app.ts) uses this.
 *
 * The cluster's code is imported when its component starts (before the broker and the devices), so a box
 * that is not in a cluster never loads it.
 */
import type { AgentRequest } from '../agent/agent.js';
import type { ClusterComponent } from '../cluster/index.js';
// Not cluster/index.js: the broker's options are needed before the cluster's code is loaded.
import { clusterBrokerOptions } from '../cluster/config-schema.js';
import type { ClusterBrokerOptions } from '../runtime/broker/cluster-persistence.js';
import type { Config } from '../runtime/config/schema.js';
import type { Component, RuntimeContext } from '../runtime/context.js';
import type { Logger } from '../runtime/logging.js';

export interface ClusterFigures {
  agentLoad: () => { queued: number; running: number } | null;
  /** A model is loaded for the agent, so shared requests can be served here. */
  modelReady: () => boolean;
  mqttClients: () => number;
}

/** The cluster component, made when it starts; what the rest of the app calls on it works from then on. */
export class ClusterOnStart implements Component {
  readonly name = 'cluster';
  #component: ClusterComponent | null = null;

  constructor(private readonly make: () => Promise<ClusterComponent>) {}

  async start(ctx: RuntimeContext): Promise<void> {
    this.#component ??= await this.make();
    await this.#component.start(ctx);
  }

  async stop(): Promise<void> {
    await this.#component?.stop();
  }

  /** The shared Redis reachable (false before start). */
  ready(): boolean {
    return this.#component?.ready() ?? false;
  }

  /** The device layer's driver loader, each driver leased (drivers load after this component started). */
  readonly wrapLoader: ClusterComponent['leasedDrivers']['wrapLoader'] = (load) => async (name) => this.#started().leasedDrivers.wrapLoader(load)(name);

  /** The agent's handler, shared with other replicas when work sharing is on (the agent starts after this). */
  shareWork<R extends AgentRequest & { source?: string; deadline_ms?: number }, A>(handle: (request: R) => Promise<A>): (request: R) => Promise<A> {
    const sharing = this.#started().workSharing;
    return sharing ? sharing.wrap(handle) : handle;
  }

  #started(): ClusterComponent {
    if (!this.#component) throw new Error('the cluster component has not started');
    return this.#component;
  }
}

export interface ClusterWiring {
  component: ClusterOnStart;
  brokerOptions: ClusterBrokerOptions;
}

/** Null outside cluster mode. `figures` are read later (at heartbeats), so they may refer to parts built after this. */
export function clusterWiring(config: Config, logger: Logger, figures: ClusterFigures): ClusterWiring | null {
  const cluster = config.cluster;
  if (!cluster?.enabled) return null;
  const component = new ClusterOnStart(async () => {
    const { ClusterComponent } = await import('../cluster/index.js');
    return new ClusterComponent(
      {
        config: cluster,
        load: () => {
          const agent = figures.agentLoad();
          return { agent_running: agent?.running ?? 0, agent_queued: agent?.queued ?? 0, mqtt_clients: figures.mqttClients() };
        },
        agentCapacity: () => figures.modelReady() && (figures.agentLoad()?.queued ?? 1) === 0,
        defaultDeadlineMs: config.scheduler?.default_deadline_ms ?? 200,
      },
      logger,
    );
  });
  return { component, brokerOptions: clusterBrokerOptions(cluster) };
}
