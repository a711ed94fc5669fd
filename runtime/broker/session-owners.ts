/**
 * Whose persistent sessions the broker keeps. aedes' store knows a session (subscriptions, queued
 * messages, will, QoS 2 state) by client id only; a person's data rights name them by who they logged in
 * as: the MQTT username, or `anonymous@<address>` for a client let in without one (the same id the MQTT
 * principal has, runtime/operations/mqtt-adapter.ts). So the owner of every session that outlives its
 * connection is recorded beside it in the same store, when such a client connects, and removed when the
 * session ends (aedes' cleanSubscriptions: a clean connect, expiry, erasure). A client id taken over by
 * another user belongs to the last one.
 */
import type { Aedes, Client } from 'aedes';

/** One record per client id with a persistent session (bounded by those sessions); LevelDB's is in persistence.ts. */
export interface SessionOwnerStore {
  /** Shared with other brokers (cluster mode): what this one remembers is not the whole truth. */
  readonly shared?: boolean;
  set(clientId: string, owner: string): Promise<void>;
  remove(clientId: string): Promise<void>;
  list(): Promise<{ clientId: string; owner: string }[]>;
}

export function memorySessionOwners(): SessionOwnerStore {
  const owners = new Map<string, string>();
  return {
    set: async (id, owner) => {
      owners.set(id, owner);
    },
    remove: async (id) => {
      owners.delete(id);
    },
    list: async () => [...owners].map(([clientId, owner]) => ({ clientId, owner })),
  };
}

/** The part of an ioredis client the records need (cluster-persistence.ts). */
interface RedisHash {
  hset(key: string, field: string, value: string): Promise<unknown>;
  hdel(key: string, field: string): Promise<unknown>;
  hgetall(key: string): Promise<Record<string, string>>;
}

const REDIS_KEY = 'clawbox:session-owners';

export function redisSessionOwners(db: RedisHash): SessionOwnerStore {
  return {
    shared: true,
    set: async (id, owner) => {
      await db.hset(REDIS_KEY, id, owner);
    },
    remove: async (id) => {
      await db.hdel(REDIS_KEY, id);
    },
    list: async () => Object.entries(await db.hgetall(REDIS_KEY)).map(([clientId, owner]) => ({ clientId, owner })),
  };
}

interface CleaningStore {
  cleanSubscriptions(client: { id: string }): Promise<void>;
}

export class SessionOwners {
  readonly #store: SessionOwnerStore;
  /** The store's records, read once at start: a connect writes only when its owner changes. */
  readonly #owners = new Map<string, string>();
  readonly #onError: (error: Error) => void;
  /** Records being written: a lookup waits for them. */
  readonly #writes = new Set<Promise<void>>();

  private constructor(store: SessionOwnerStore, onError: (error: Error) => void) {
    this.#store = store;
    this.#onError = onError;
  }

  /**
   * Right after Aedes.createBroker(), before clients connect. `ownerOf` names a connected client's owner
   * (null: not known, e.g. not authenticated).
   */
  static async attach(aedes: Aedes, store: SessionOwnerStore, ownerOf: (client: Client) => string | null, onError: (error: Error) => void): Promise<SessionOwners> {
    const owners = new SessionOwners(store, onError);
    for (const { clientId, owner } of await store.list()) owners.#owners.set(clientId, owner);
    const persistence = (aedes as unknown as { persistence?: CleaningStore }).persistence;
    if (!persistence || typeof persistence.cleanSubscriptions !== 'function') throw new Error('aedes persistence has no cleanSubscriptions; aedes internals changed');
    const clean = persistence.cleanSubscriptions.bind(persistence);
    persistence.cleanSubscriptions = async (client) => {
      await clean(client);
      await owners.forget(client.id);
    };
    aedes.on('client', (client) => {
      // aedes' `clean`: the session ends with this connection (MQTT 5: Session Expiry Interval 0).
      if (client.clean) return;
      const owner = ownerOf(client);
      if (owner !== null) owners.#remember(client.id, owner);
    });
    return owners;
  }

  /** The client ids of the persistent sessions that belong to `owner`, as the store has them (all replicas'). */
  async clientsOf(owner: string): Promise<string[]> {
    await Promise.all(this.#writes);
    return (await this.#store.list()).filter((record) => record.owner === owner).map((record) => record.clientId);
  }

  async forget(clientId: string): Promise<void> {
    if (!this.#owners.delete(clientId) && !this.#store.shared) return;
    await this.#store.remove(clientId);
  }

  #remember(clientId: string, owner: string): void {
    if (this.#owners.get(clientId) === owner && !this.#store.shared) return;
    this.#owners.set(clientId, owner);
    const write = this.#store.set(clientId, owner).catch(this.#onError);
    this.#writes.add(write);
    void write.finally(() => this.#writes.delete(write));
  }
}
