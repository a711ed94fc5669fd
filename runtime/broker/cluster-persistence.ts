/**
 * The broker's shared state in cluster mode: the aedes project's own Redis packages.
 *
 * - `mqemitter-redis` carries every message between the replicas (Redis pub/sub), so a client on one
 *   replica receives what is published on another;
 * - `aedes-persistence-redis` keeps retained messages, subscriptions, offline-session queues and wills in
 *   Redis, so they follow a client to whichever replica it reconnects to;
 * - the session registry (session-present.ts) is a Redis set beside them.
 *
 * What "durable" means here: aedes calls back a QoS 1 publish only after the persistence's writes (the
 * retained copy, the queue of every persistent session that subscribed) were answered by Redis, and the
 * broker sends the PUBACK only then (durable-acks.ts). An answered write survives kill -9 of any replica.
 * It survives a crash of Redis itself as far as Redis' own policy goes: with `appendonly yes` and
 * `appendfsync always` Redis fsyncs its log before answering (the guarantee of a single box); with
 * `everysec` the last second can be lost on a power cut of the Redis host. `wait_replicas` > 0 adds Redis'
 * WAIT after every such write: the PUBACK then also waits until that many Redis replicas have the write.
 * The policy Redis reports is in the broker's status (`durability`) and a weaker one is logged at start.
 *
 * Live delivery between replicas is Redis pub/sub, which is at most once: a message published while a
 * replica's subscription connection is down is not delivered live. Persistent sessions lose nothing (the
 * message is in their queue until acknowledged); so after Redis comes back each replica closes its MQTT
 * connections, and reconnecting clients get their queues replayed.
 *
 * aedes names stored packets `packet:<broker id>:<counter>` with a counter that starts at 0 in every
 * process, so the broker id is the replica id plus a per-process suffix: a restarted replica must not
 * overwrite the queued packets of its previous life.
 */
import { randomBytes } from 'node:crypto';
import type { Aedes } from 'aedes';
import redisPersistence from 'aedes-persistence-redis';
import type { Redis } from 'ioredis';
import MQEmitterRedis from 'mqemitter-redis';
import type { Logger } from '../logging.js';
import type { BrokerPersistence } from './persistence.js';
import { type RedisEndpoint, connectRedis, createRedis, describeEndpoint, redactedMessage, redisReady } from './redis-connection.js';
import type { SessionRegistry } from './session-present.js';
import { redisSessionOwners } from './session-owners.js';

export interface ClusterBrokerOptions {
  redis: RedisEndpoint;
  /** This replica's name (the pod name in Kubernetes). */
  replicaId: string;
  /** Redis replicas that must have a write before the broker acknowledges it (WAIT); 0: the primary only. */
  waitReplicas: number;
  waitTimeoutMs: number;
}

/** Redis' own persistence policy as it reports it: what an acknowledgement survives (see the file comment). */
export type RedisDurability = 'fsync-always' | 'fsync-everysec' | 'no-fsync' | 'not-persisted' | 'unknown';

export interface ClusterPersistence extends BrokerPersistence {
  readonly kind: 'redis';
  /** The aedes broker id: unique per process (see the file comment). */
  readonly brokerId: string;
  /** Passed to aedes as `mq`. */
  readonly mq: unknown;
  readonly durability: RedisDurability;
  /** False while any of the connections is down (readiness). */
  ready(): boolean;
  /** Watches the connections for the running aedes: after an outage, clients reconnect and replay. */
  attach(aedes: Aedes, logger: Logger): () => void;
}

const SESSIONS_KEY = 'clawbox:sessions';

function redisSessions(db: Redis): SessionRegistry {
  return {
    has: async (id) => (await db.sismember(SESSIONS_KEY, id)) === 1,
    add: async (id) => {
      await db.sadd(SESSIONS_KEY, id);
    },
    remove: async (id) => {
      await db.srem(SESSIONS_KEY, id);
    },
  };
}

async function readDurability(db: Redis): Promise<RedisDurability> {
  try {
    const [, appendonly] = (await db.config('GET', 'appendonly')) as string[];
    const [, fsync] = (await db.config('GET', 'appendfsync')) as string[];
    if (appendonly !== 'yes') return 'not-persisted';
    if (fsync === 'always') return 'fsync-always';
    if (fsync === 'everysec') return 'fsync-everysec';
    return 'no-fsync';
  } catch {
    // Managed Redis services often rename or refuse CONFIG.
    return 'unknown';
  }
}

/** Every write of the store waits for `replicas` Redis replicas before it resolves (see the file comment). */
function waitForReplicas(persistence: { asyncPersistence: Record<string, unknown> }, db: Redis, replicas: number, timeoutMs: number, logger: Logger): void {
  const store = persistence.asyncPersistence;
  for (const name of ['storeRetained', 'outgoingEnqueueCombi', 'incomingStorePacket']) {
    const original = store[name];
    if (typeof original !== 'function') throw new Error(`aedes-persistence-redis has no ${name}; its internals changed`);
    const write = (original as (...args: unknown[]) => Promise<unknown>).bind(store);
    store[name] = async (...args: unknown[]) => {
      const result = await write(...args);
      const acked = await db.wait(replicas, timeoutMs);
      if (acked < replicas) {
        logger.warn({ replicas, acked }, `only ${acked} of ${replicas} Redis replicas confirmed a write within ${timeoutMs} ms`);
        throw new Error(`only ${acked} of ${replicas} Redis replicas confirmed the write`);
      }
      return result;
    };
  }
}

export async function openClusterPersistence(options: ClusterBrokerOptions, logger: Logger): Promise<ClusterPersistence> {
  const { redis } = options;
  const names = ['store', 'pub', 'sub'] as const;
  const conns = Object.fromEntries(names.map((n) => [n, createRedis(redis, `clawbox:${options.replicaId}:broker-${n}`)])) as Record<
    (typeof names)[number],
    Redis
  >;
  try {
    await Promise.all(names.map((n) => connectRedis(conns[n], redis)));
  } catch (error) {
    for (const n of names) conns[n].disconnect();
    throw error;
  }
  // A connection that drops later reconnects on its own; without a listener its error would crash us.
  const down = new Set<string>();
  const reported = new Set<string>();
  for (const n of names) {
    conns[n].on('error', (error: Error) => {
      if (!reported.has(n)) logger.warn({ connection: n, err: redactedMessage(error) }, `lost the cluster's Redis (${describeEndpoint(redis)})`);
      reported.add(n);
      down.add(n);
    });
    conns[n].on('ready', () => reported.delete(n));
    // A Redis that stops and is back before this connection's next try leaves no error behind, yet what was
    // published meanwhile never reached this replica's pub/sub: a closed connection counts as an outage too.
    conns[n].on('close', () => down.add(n));
  }
  const durability = await readDurability(conns.store);
  if (durability !== 'fsync-always') {
    logger.warn(
      { durability },
      'Redis does not fsync every write (appendonly yes, appendfsync always): acknowledged messages survive a replica crash, not necessarily a crash of the Redis host',
    );
  }
  const persistence = redisPersistence({ conn: conns.store });
  if (options.waitReplicas > 0) waitForReplicas(persistence, conns.store, options.waitReplicas, options.waitTimeoutMs, logger);
  const mq = MQEmitterRedis({ pubConn: conns.pub, subConn: conns.sub });
  // mqemitter-redis re-emits its connections' errors on `state`, an EventEmitter that would throw them
  // (and stop the process) without a listener; the connections above already log the outage.
  (mq as unknown as { state: NodeJS.EventEmitter }).state.on('error', () => {});
  const brokerId = `${options.replicaId}-${randomBytes(4).toString('hex')}`;
  return {
    aedesPersistence: persistence,
    kind: 'redis',
    brokerId,
    mq,
    durability,
    sessions: redisSessions(conns.store),
    sessionOwners: redisSessionOwners(conns.store),
    ready: () => names.every((n) => redisReady(conns[n])),
    attach(aedes, log) {
      const reconnected = (name: string) => () => {
        if (!down.delete(name)) return;
        log.warn({ connection: name }, 'the cluster\'s Redis is back: closing MQTT connections so that sessions replay what they missed');
        const clients = (aedes as unknown as { clients: Record<string, { close(): void }> }).clients;
        for (const id of Object.keys(clients)) clients[id]!.close();
      };
      const listeners = names.map((n) => {
        const listener = reconnected(n);
        conns[n].on('ready', listener);
        return () => conns[n].off('ready', listener);
      });
      return () => {
        for (const off of listeners) off();
      };
    },
    // aedes.close() has closed the pub/sub pair (mq.close); the store's connection goes with the persistence.
    close: async () => {
      await persistence.destroy();
      for (const n of names) conns[n].disconnect();
    },
  };
}
