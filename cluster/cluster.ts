/**
 * The cluster component: this replica's membership and load in Redis, the device leases, calls between
 * replicas, and the `cluster` status section. The broker's own shared state (fan-out, retained, sessions)
 * is the broker's (runtime/broker/cluster-persistence.ts); the composition root wires both from the one
 * `cluster:` config section. See README.md in this folder.
 */
import type { Redis } from 'ioredis';
import { connectRedis, createRedis, describeEndpoint, redactedMessage, redisReady } from '../runtime/broker/redis-connection.js';
import type { Component, RuntimeContext } from '../runtime/context.js';
import type { Logger } from '../runtime/logging.js';
import { type ClusterConfig, redisEndpointOf, replicaIdOf } from './config-schema.js';
import { LeasedDrivers } from './leased-drivers.js';
import { LeaseTable } from './leases.js';
import { type ReplicaInfo, type ReplicaLoad, announce, listReplicas, withdraw } from './membership.js';
import { ClusterRpc } from './rpc.js';
import { AgentWorkSharing } from './work-sharing.js';

export interface ClusterStatus {
  replica_id: string;
  redis: { url: string; connected: boolean };
  lease_ttl_ms: number;
  heartbeat_ms: number;
  replicas: (ReplicaInfo & { self: boolean })[];
  /** Device id -> the replica that drives it (null: nobody right now). */
  devices: Record<string, string | null>;
  /** Agent requests served here from this replica's callers, handed out, and taken from others. */
  work_sharing?: AgentWorkSharing['figures'];
}

export interface ClusterDeps {
  config: ClusterConfig;
  /** This replica's load figures, read at every heartbeat. */
  load: () => Omit<ReplicaLoad, 'devices_owned' | 'remote_running'>;
  /** Whether this replica may take another replica's agent request now (work-sharing.ts). */
  agentCapacity: () => boolean;
  /** The scheduler's default deadline, for shared requests that name none. */
  defaultDeadlineMs: number;
  /** Where this replica's HTTP server is, for the status (optional). */
  httpAddress?: () => string | undefined;
}

export class ClusterComponent implements Component {
  readonly name = 'cluster';
  readonly replicaId: string;
  readonly leasedDrivers: LeasedDrivers;
  readonly rpc: ClusterRpc;
  /** Null when work_sharing.enabled is false. */
  readonly workSharing: AgentWorkSharing | null;
  readonly #deps: ClusterDeps;
  readonly #db: Redis;
  readonly #pub: Redis;
  readonly #sub: Redis;
  #logger: Logger | null = null;
  #timer: NodeJS.Timeout | null = null;
  #startedAt = 0;
  #cleanups: (() => void)[] = [];
  #lastReplicas: ReplicaInfo[] = [];
  #lastOwners: Record<string, string | null> = {};

  /** Built before the device layer, which takes `leasedDrivers.wrapLoader` as its driver loader. */
  constructor(deps: ClusterDeps, logger: Logger) {
    this.#deps = deps;
    this.replicaId = replicaIdOf(deps.config);
    const endpoint = redisEndpointOf(deps.config);
    this.#db = createRedis(endpoint, `clawbox:${this.replicaId}:cluster`, { failFast: true });
    this.#pub = createRedis(endpoint, `clawbox:${this.replicaId}:cluster-pub`, { failFast: true });
    this.#sub = createRedis(endpoint, `clawbox:${this.replicaId}:cluster-sub`);
    this.rpc = new ClusterRpc(this.#pub, this.#sub, this.replicaId);
    const leases = new LeaseTable(this.#db, this.replicaId, deps.config.lease_ttl_ms);
    this.leasedDrivers = new LeasedDrivers(leases, this.#pub, this.#sub, this.rpc, this.replicaId, deps.config.heartbeat_ms, logger);
    const sharing = deps.config.work_sharing;
    this.workSharing = sharing.enabled
      ? new AgentWorkSharing({
          replicaId: this.replicaId,
          db: this.#db,
          sub: this.#sub,
          rpc: this.rpc,
          maxRemote: sharing.max_remote,
          maxQueue: sharing.max_queue,
          heartbeatMs: deps.config.heartbeat_ms,
          logger,
          hasCapacity: deps.agentCapacity,
          othersAlive: () => this.#lastReplicas.some((r) => r.id !== this.replicaId),
          defaultDeadlineMs: deps.defaultDeadlineMs,
        })
      : null;
  }

  /** The command connection, for other parts of the cluster feature (the agent work queue). */
  get redis(): Redis {
    return this.#db;
  }

  /** False while this replica's Redis connections are down. */
  ready(): boolean {
    return redisReady(this.#db) && redisReady(this.#pub) && redisReady(this.#sub);
  }

  async start(ctx: RuntimeContext): Promise<void> {
    const logger = ctx.logger('cluster');
    this.#logger = logger;
    const endpoint = redisEndpointOf(this.#deps.config);
    await Promise.all([this.#db, this.#pub, this.#sub].map((c) => connectRedis(c, endpoint)));
    for (const conn of [this.#db, this.#pub, this.#sub]) {
      conn.on('error', (error: Error) => logger.debug({ err: redactedMessage(error) }, 'cluster Redis connection error'));
    }
    this.#startedAt = Date.now();
    await this.rpc.start();
    await this.leasedDrivers.start();
    await this.workSharing?.start();
    await this.#heartbeat();
    this.#timer = setInterval(() => void this.#heartbeat(), this.#deps.config.heartbeat_ms);
    this.#timer.unref();
    this.#cleanups.push(ctx.status.register('cluster', () => this.status()));
    logger.info(
      { replica: this.replicaId, redis: describeEndpoint(endpoint), lease_ttl_ms: this.#deps.config.lease_ttl_ms },
      `cluster member ${this.replicaId} on ${describeEndpoint(endpoint)}`,
    );
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    for (const cleanup of this.#cleanups.splice(0)) cleanup();
    // Leases go back at once, so another replica takes the devices in one heartbeat, not a lease ttl.
    await this.leasedDrivers.stop();
    this.workSharing?.stop();
    this.rpc.stop();
    await withdraw(this.#db, this.replicaId).catch(() => {});
    for (const conn of [this.#db, this.#pub, this.#sub]) conn.disconnect();
  }

  status(): ClusterStatus {
    return {
      replica_id: this.replicaId,
      redis: { url: describeEndpoint(redisEndpointOf(this.#deps.config)), connected: this.ready() },
      lease_ttl_ms: this.#deps.config.lease_ttl_ms,
      heartbeat_ms: this.#deps.config.heartbeat_ms,
      replicas: this.#lastReplicas.map((r) => ({ ...r, self: r.id === this.replicaId })),
      devices: this.#lastOwners,
      ...(this.workSharing ? { work_sharing: this.workSharing.figures } : {}),
    };
  }

  /** The live replicas as of the last heartbeat. */
  replicas(): readonly ReplicaInfo[] {
    return this.#lastReplicas;
  }

  #beating = false;

  async #heartbeat(): Promise<void> {
    if (this.#beating) return;
    this.#beating = true;
    const http = this.#deps.httpAddress?.();
    const info: ReplicaInfo = {
      id: this.replicaId,
      started_at: this.#startedAt,
      ...(http ? { http } : {}),
      load: { ...this.#deps.load(), remote_running: this.workSharing?.remoteRunning ?? 0, devices_owned: this.leasedDrivers.owned().length },
      seen_at: Date.now(),
    };
    try {
      await announce(this.#db, info, this.#deps.config.lease_ttl_ms);
      this.#lastReplicas = await listReplicas(this.#db);
      this.#lastOwners = await this.leasedDrivers.leases.owners(this.leasedDrivers.ids());
    } catch (error) {
      this.#logger?.debug({ err: redactedMessage(error) }, 'cluster heartbeat failed');
    } finally {
      this.#beating = false;
    }
  }
}
