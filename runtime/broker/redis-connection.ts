/**
 * Connections to the shared Redis of an edge cluster (ioredis). Every part that talks to Redis (the
 * broker's fan-out and store, the cluster's leases and work queue) opens its connections here, so that
 * address, credentials, TLS and the "wait while Redis is down" policy are the same everywhere.
 *
 * While Redis is down a connection keeps reconnecting and queues its commands (maxRetriesPerRequest:
 * null): a write resolves only once Redis has it, so nothing the broker acknowledges depends on a
 * connection that was lost. What queues is bounded by back-pressure upstream: aedes reads a client's
 * socket again only when its last packets are done.
 */
import { createRequire } from 'node:module';
import type { Redis, RedisOptions } from 'ioredis';
import { ClawboxError } from '../errors.js';

const requireCjs = createRequire(import.meta.url);

/** Where the shared Redis is, and how to log in. `password` is a secret: never logged (see describe()). */
export interface RedisEndpoint {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; servername?: string; rejectUnauthorized: boolean };
  /** How long the first connection may take before the start fails with REDIS_UNREACHABLE. */
  connectTimeoutMs: number;
}

/** The endpoint for logs and errors: no credentials. */
export function describeEndpoint(endpoint: RedisEndpoint): string {
  return `${endpoint.tls ? 'rediss' : 'redis'}://${endpoint.host}:${endpoint.port}/${endpoint.db}`;
}

/** A connection that has not connected yet; `connectRedis` opens it. `name` shows in Redis' CLIENT LIST. */
/**
 * `failFast`: while disconnected, fail commands at once instead of queueing them until Redis is back (the
 * cluster's leases must know at once that they cannot be renewed, and nothing piles up meanwhile).
 */
export function createRedis(endpoint: RedisEndpoint, name: string, options: { failFast?: boolean } = {}): Redis {
  const settings: RedisOptions = {
    host: endpoint.host,
    port: endpoint.port,
    db: endpoint.db,
    ...(endpoint.username ? { username: endpoint.username } : {}),
    ...(endpoint.password ? { password: endpoint.password } : {}),
    ...(endpoint.tls ? { tls: { ...endpoint.tls } } : {}),
    connectionName: name,
    lazyConnect: true,
    connectTimeout: endpoint.connectTimeoutMs,
    maxRetriesPerRequest: null,
    ...(options.failFast ? { enableOfflineQueue: false } : {}),
    // Reconnect quickly at first, then every second: a restarted Redis is back within a second or two.
    retryStrategy: (times) => Math.min(50 * times, 1000),
  };
  // ioredis is loaded here, on the first connection, so a box outside cluster mode never pays for it.
  const { Redis: RedisClient } = requireCjs('ioredis') as typeof import('ioredis');
  return new RedisClient(settings);
}

/** Opens a connection made by createRedis; an unreachable Redis or refused credentials is REDIS_UNREACHABLE. */
export async function connectRedis(client: Redis, endpoint: RedisEndpoint): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let lastError: Error | undefined;
  const noteError = (error: Error) => {
    lastError = error;
  };
  client.on('error', noteError);
  try {
    await Promise.race([
      client.connect(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(lastError ?? new Error(`no answer within ${endpoint.connectTimeoutMs} ms`)), endpoint.connectTimeoutMs);
      }),
    ]);
    // A password Redis refuses surfaces on the first command, not always on connect.
    await client.ping();
  } catch (error) {
    client.disconnect();
    // ioredis rejects a refused login with "Connection is closed"; the reason came as an error event.
    const why = redactedMessage(lastError ?? error);
    throw new ClawboxError('REDIS_UNREACHABLE', `cannot reach the cluster's Redis at ${describeEndpoint(endpoint)}: ${why}`, {
      redis: describeEndpoint(endpoint),
    });
  } finally {
    if (timer) clearTimeout(timer);
    client.off('error', noteError);
  }
}

/** An error's message without anything that could be the password. */
export function redactedMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\/\/[^@/\s]*@/g, '//[redacted]@');
}

/** True while the connection can carry commands. */
export function redisReady(client: Redis): boolean {
  return client.status === 'ready';
}
