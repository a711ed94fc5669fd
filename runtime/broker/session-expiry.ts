/**
 * MQTT 5 Session Expiry across restarts. aedes keeps the expiry of a disconnected session as a timer in
 * memory: after a restart a session with a finite Session Expiry Interval would never expire, and its
 * subscriptions and queued messages would stay forever. So the deadline is also written to the broker's
 * store when aedes arms it (also for the clients still connected when the broker stops), removed when the
 * client comes back, and at start the stored deadlines are swept: a passed one ends the session now
 * (subscriptions, queue, QoS 2 state, will), a future one gets its timer again.
 */
import type { Aedes } from 'aedes';
import { type QueueStore, clearQueuedMessages } from './queued-messages.js';

/** Where the deadlines live (LevelDB beside the session registry; see persistence.ts). */
export interface SessionExpiryStore {
  set(clientId: string, expiresAt: number): Promise<void>;
  remove(clientId: string): Promise<void>;
  list(): Promise<{ clientId: string; expiresAt: number }[]>;
}

/** 0xFFFFFFFF: the session never expires. */
const NEVER = 0xffffffff;

/** What aedes 2 keeps on a client about its session's lifetime (also read by will-persistence.ts). */
export interface ExpiringClient {
  id: string;
  version: number | null;
  sessionExpiryInterval: number;
}

interface AedesInternals {
  closed: boolean;
  clients: Record<string, unknown>;
  _takingOver: Set<string>;
  scheduleSessionExpiry(client: ExpiringClient): void;
  clearSessionExpiry(clientId: string): void;
  persistence: QueueStore & {
    cleanSubscriptions(client: { id: string }): Promise<void>;
    delWill(client: { id: string; brokerId?: string }): Promise<unknown>;
  };
}

export class SessionExpiry {
  readonly #aedes: AedesInternals;
  readonly #store: SessionExpiryStore;
  readonly #onError: (error: Error) => void;
  /** Ids with a stored deadline (so a reconnect costs a store write only when there is one to remove). */
  readonly #stored = new Set<string>();
  /** Deadlines from an earlier run, timed here (aedes knows nothing of them). */
  readonly #timers = new Map<string, NodeJS.Timeout>();

  /** Runs before a session of an earlier run is ended here (its delayed will is due: will-persistence.ts). */
  readonly #beforeEnd: ((clientId: string) => Promise<void>) | undefined;

  constructor(aedes: Aedes, store: SessionExpiryStore, onError: (error: Error) => void, beforeEnd?: (clientId: string) => Promise<void>) {
    this.#aedes = aedes as unknown as AedesInternals;
    this.#store = store;
    this.#onError = onError;
    this.#beforeEnd = beforeEnd;
    const internals = this.#aedes;
    if (typeof internals.scheduleSessionExpiry !== 'function' || typeof internals.clearSessionExpiry !== 'function') {
      throw new Error('aedes has no scheduleSessionExpiry/clearSessionExpiry; aedes internals changed');
    }
    const schedule = internals.scheduleSessionExpiry.bind(aedes);
    const clear = internals.clearSessionExpiry.bind(aedes);
    internals.scheduleSessionExpiry = (client) => {
      const interval = client.sessionExpiryInterval;
      const finite = client.version === 5 && interval > 0 && interval < NEVER && client.id && !internals._takingOver.has(client.id);
      schedule(client); // first: it clears any earlier deadline of this id (clearSessionExpiry below)
      // Also while the broker closes (aedes arms nothing then): the session must still end after a restart.
      if (finite) this.#remember(client.id, Date.now() + interval * 1000);
    };
    internals.clearSessionExpiry = (clientId) => {
      clear(clientId);
      this.#forget(clientId);
    };
  }

  /** At start, before clients connect: ends the sessions whose deadline passed, times the others. */
  async sweep(): Promise<{ ended: number; pending: number }> {
    let ended = 0;
    let pending = 0;
    const now = Date.now();
    for (const { clientId, expiresAt } of await this.#store.list()) {
      this.#stored.add(clientId);
      if (expiresAt <= now) {
        await this.#end(clientId);
        ended++;
      } else {
        pending++;
        const timer = setTimeout(() => {
          this.#timers.delete(clientId);
          if (!this.#aedes.clients[clientId] && !this.#aedes.closed) this.#end(clientId).catch(this.#onError);
        }, Math.min(expiresAt - now, 2 ** 31 - 1));
        timer.unref();
        this.#timers.set(clientId, timer);
      }
    }
    return { ended, pending };
  }

  /** Stops the timers of earlier runs' sessions (the broker stops). */
  stop(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  #remember(clientId: string, expiresAt: number): void {
    this.#stored.add(clientId);
    this.#store.set(clientId, expiresAt).catch(this.#onError);
  }

  #forget(clientId: string): void {
    const timer = this.#timers.get(clientId);
    if (timer) clearTimeout(timer);
    this.#timers.delete(clientId);
    if (!this.#stored.delete(clientId)) return;
    this.#store.remove(clientId).catch(this.#onError);
  }

  /** What aedes' own expiry does (`_wipeSession`), for a session no client object exists for. */
  async #end(clientId: string): Promise<void> {
    const store = this.#aedes.persistence;
    const client = { id: clientId };
    await this.#beforeEnd?.(clientId);
    await clearQueuedMessages(store, client); // before the subscriptions: see queued-messages.ts
    await store.cleanSubscriptions(client);
    await store.delWill(client);
    this.#forget(clientId);
  }
}
