/**
 * The `cluster:` section of the config file. Owned by the cluster feature; the runtime's config schema
 * composes it. Off by default: a box on its own needs no Redis. See cluster/README.md.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { ClusterBrokerOptions } from '../runtime/broker/cluster-persistence.js';
import type { RedisEndpoint } from '../runtime/broker/redis-connection.js';
import { ClawboxError } from '../runtime/errors.js';

const ms = (min: number, max: number, fallback: number, description: string) =>
  ({ type: 'integer', minimum: min, maximum: max, default: fallback, description }) as const;
const path = { type: 'string', minLength: 1, maxLength: 4096 } as const;

export const REPLICA_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$';

export const clusterConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description: 'Edge cluster: several replicas share the broker state, device leases and agent work on one Redis.',
  properties: {
    enabled: { type: 'boolean', default: false },
    replica_id: {
      type: 'string',
      pattern: REPLICA_ID_PATTERN,
      description: "This replica's name, unique in the cluster. Default: the host name (a Kubernetes pod's name).",
    },
    redis: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        url: {
          type: 'string',
          maxLength: 1024,
          // Credentials belong in `password` (a secret that is redacted), never in a URL that ends up in logs.
          pattern: '^rediss?://[^@/\\s]+(/[0-9]{1,2})?$',
          default: 'redis://127.0.0.1:6379/0',
          description: 'redis://host:port/db, or rediss:// for TLS. No credentials here: use password (and username).',
        },
        username: { type: 'string', minLength: 1, maxLength: 128, description: 'Redis 6 ACL user; default: the default user.' },
        password: { type: 'string', minLength: 1, maxLength: 1024, description: 'Secret; set it from the environment: CLAWBOX_CLUSTER_REDIS_PASSWORD.' },
        tls: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description: 'TLS to Redis (also switched on by a rediss:// URL).',
          properties: {
            enabled: { type: 'boolean', default: false },
            ca: { ...path, description: 'PEM CA bundle path.' },
            cert: { ...path, description: 'PEM client certificate path (mutual TLS).' },
            key: { ...path, description: 'PEM client key path.' },
            servername: { type: 'string', minLength: 1, maxLength: 253 },
            reject_unauthorized: { type: 'boolean', default: true },
          },
        },
        connect_timeout_ms: ms(100, 120_000, 5000, 'How long the start waits for Redis before failing with REDIS_UNREACHABLE.'),
        wait_replicas: {
          type: 'integer',
          minimum: 0,
          maximum: 16,
          default: 0,
          description: 'Redis replicas that must confirm a stored message (WAIT) before the broker acknowledges it. 0: the primary only.',
        },
        wait_timeout_ms: ms(10, 60_000, 1000, 'How long WAIT may take; fewer confirmations fail the publish (the client resends).'),
      },
    },
    heartbeat_ms: ms(100, 60_000, 1000, 'How often a replica renews its membership, its load figures and its device leases.'),
    lease_ttl_ms: ms(300, 600_000, 5000, 'A device lease (and a replica) expires this long after its last renewal: the failover bound.'),
    work_sharing: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: true, description: 'Hand agent requests this replica cannot serve to another replica.' },
        max_remote: { type: 'integer', minimum: 0, maximum: 1024, default: 4, description: "Other replicas' requests served here at once, at most." },
        max_queue: { type: 'integer', minimum: 1, maximum: 100_000, default: 256, description: 'Requests waiting in the shared queue, at most (BUSY beyond).' },
      },
    },
  },
} as const;

export interface ClusterConfig {
  enabled: boolean;
  replica_id?: string;
  redis: {
    url: string;
    username?: string;
    password?: string;
    tls: { enabled: boolean; ca?: string; cert?: string; key?: string; servername?: string; reject_unauthorized: boolean };
    connect_timeout_ms: number;
    wait_replicas: number;
    wait_timeout_ms: number;
  };
  heartbeat_ms: number;
  lease_ttl_ms: number;
  work_sharing: { enabled: boolean; max_remote: number; max_queue: number };
}

declare module '../runtime/config/schema.js' {
  interface ConfigSections {
    cluster: ClusterConfig;
  }
}

/** The cross-field rules the schema cannot say. */
export function clusterCrossCheck(config: { cluster?: ClusterConfig }): { path: string; message: string }[] {
  const cluster = config.cluster;
  if (!cluster?.enabled) return [];
  const problems: { path: string; message: string }[] = [];
  if (cluster.heartbeat_ms * 2 > cluster.lease_ttl_ms) {
    problems.push({ path: 'cluster.lease_ttl_ms', message: `must be at least twice heartbeat_ms (${cluster.heartbeat_ms}), so one late renewal does not drop a lease` });
  }
  return problems;
}

/** This replica's id: the configured one, else the host name (made to fit the pattern). */
export function replicaIdOf(cluster: ClusterConfig): string {
  if (cluster.replica_id) return cluster.replica_id;
  const name = hostname().replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 63);
  return /^[A-Za-z0-9]/.test(name) ? name : `r${name}`.slice(0, 63);
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new ClawboxError('TLS_INVALID', `cannot read the Redis TLS ${what} ${file}: ${(error as Error).message}`, { file });
  }
}

/** The Redis connection settings of the config (TLS files read now, so a bad path fails the start). */
export function redisEndpointOf(cluster: ClusterConfig): RedisEndpoint {
  const url = new URL(cluster.redis.url);
  const { tls } = cluster.redis;
  const useTls = url.protocol === 'rediss:' || tls.enabled;
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : 6379,
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
    ...(cluster.redis.username ? { username: cluster.redis.username } : {}),
    ...(cluster.redis.password ? { password: cluster.redis.password } : {}),
    ...(useTls
      ? {
          tls: {
            ...(tls.ca ? { ca: readPem(tls.ca, 'CA bundle') } : {}),
            ...(tls.cert ? { cert: readPem(tls.cert, 'certificate') } : {}),
            ...(tls.key ? { key: readPem(tls.key, 'key') } : {}),
            ...(tls.servername ? { servername: tls.servername } : {}),
            rejectUnauthorized: tls.reject_unauthorized,
          },
        }
      : {}),
    connectTimeoutMs: cluster.redis.connect_timeout_ms,
  };
}

/** What the broker needs to share its state (runtime/broker/cluster-persistence.ts). */
export function clusterBrokerOptions(cluster: ClusterConfig): ClusterBrokerOptions {
  return {
    redis: redisEndpointOf(cluster),
    replicaId: replicaIdOf(cluster),
    waitReplicas: cluster.redis.wait_replicas,
    waitTimeoutMs: cluster.redis.wait_timeout_ms,
  };
}
