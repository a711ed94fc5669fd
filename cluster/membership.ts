/**
 * Who is in the cluster: each replica writes `clawbox:replica:<id>` (its load figures, JSON) with an
 * expiry of lease_ttl_ms at every heartbeat, and adds its id to a set. A replica whose key expired is
 * gone; readers drop it from the set.
 */
import type { Redis } from 'ioredis';
import { KEYS } from './keys.js';

export interface ReplicaLoad {
  /** Agent requests this replica is working on (its own and others'). */
  agent_running: number;
  agent_queued: number;
  /** Other replicas' agent requests served here now. */
  remote_running: number;
  mqtt_clients: number;
  devices_owned: number;
}

export interface ReplicaInfo {
  id: string;
  started_at: number;
  http?: string;
  load: ReplicaLoad;
  /** When it last renewed (its own clock). */
  seen_at: number;
}

/** Replicas listed at most (a bound on what a reader pulls from Redis). */
const MAX_REPLICAS = 256;

export async function announce(db: Redis, info: ReplicaInfo, ttlMs: number): Promise<void> {
  await db.multi().set(KEYS.replica(info.id), JSON.stringify(info), 'PX', ttlMs).sadd(KEYS.replicaIds, info.id).exec();
}

export async function withdraw(db: Redis, id: string): Promise<void> {
  await db.multi().del(KEYS.replica(id)).srem(KEYS.replicaIds, id).exec();
}

export async function listReplicas(db: Redis): Promise<ReplicaInfo[]> {
  const ids = (await db.srandmember(KEYS.replicaIds, MAX_REPLICAS)) as string[];
  if (ids.length === 0) return [];
  const values = await db.mget(...ids.map((id) => KEYS.replica(id)));
  const alive: ReplicaInfo[] = [];
  const gone: string[] = [];
  ids.forEach((id, i) => {
    const value = values[i];
    if (value) alive.push(JSON.parse(value) as ReplicaInfo);
    else gone.push(id);
  });
  if (gone.length > 0) await db.srem(KEYS.replicaIds, ...gone);
  return alive.sort((a, b) => a.id.localeCompare(b.id));
}
