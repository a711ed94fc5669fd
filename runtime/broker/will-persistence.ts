/**
 * MQTT 5 delayed wills across a broker restart. aedes stores every will (so it survives a crash) but
 * times a Will Delay Interval in memory only; after a restart its periodic sweep publishes the wills of
 * the "dead" earlier broker whenever it next runs (minutes later), ignoring the delay. So:
 *
 * - when a will with a delay is stored at CONNECT, the session's expiry interval is stored with it;
 * - when such a client's connection ends (also when the broker stops and ends it, and aedes cannot time
 *   the will at all), the moment is stored with it too;
 * - at start, before clients connect and before expired sessions are swept, every stored will of an
 *   earlier run with a delay is timed again: it is published at disconnect + delay, or when the session
 *   ends if that is sooner [MQTT-3.1.3-9], and it is made this broker's own so aedes' sweep leaves it
 *   alone. After `kill -9` the disconnect is taken to be the restart (the broker learns of it then).
 *   A client that reconnects first replaces its will (aedes), and the timer is dropped.
 *
 * Single node only: in cluster mode other replicas' wills are theirs (aedes' sweep handles dead ones).
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes';
import type { ExpiringClient } from './session-expiry.js';

interface StoredWill extends Omit<AedesPublishPacket, 'brokerId' | 'properties'> {
  clientId: string;
  brokerId?: string;
  properties?: { willDelayInterval?: number } & Record<string, unknown>;
  /** clawbox: the session's expiry interval (seconds) when the will was stored. */
  clawboxSessionExpiry?: number;
  /** clawbox: when the connection ended (ms), if the broker stopped while it was open. */
  clawboxDisconnectedAt?: number;
}

interface WillStore {
  putWill(client: { id: string }, packet: StoredWill): Promise<void>;
  getWill(client: { id: string }): Promise<StoredWill | undefined>;
  delWill(client: { id: string }): Promise<unknown>;
  streamWill(brokers?: Record<string, unknown>): AsyncIterable<StoredWill>;
}

type WillClient = ExpiringClient;

interface AedesInternals {
  closed: boolean;
  clients: Record<string, unknown>;
  persistence: WillStore;
  scheduleWill(client: WillClient, will: StoredWill, delaySeconds: number): void;
  publish(packet: AedesPublishPacket, done: (error?: Error) => void): void;
}

/** 0xFFFFFFFF: the session never expires. */
const NEVER = 0xffffffff;

export class DelayedWills {
  readonly #aedes: AedesInternals;
  readonly #onError: (error: unknown) => void;
  /** Wills of an earlier run still waiting, by client id. */
  readonly #timers = new Map<string, { timer: NodeJS.Timeout; will: StoredWill }>();
  readonly #writes = new Set<Promise<unknown>>();

  constructor(aedes: Aedes, onError: (error: unknown) => void) {
    this.#aedes = aedes as unknown as AedesInternals;
    this.#onError = onError;
    const internals = this.#aedes;
    const store = internals.persistence;
    if (typeof internals.scheduleWill !== 'function' || typeof store.putWill !== 'function' || typeof store.streamWill !== 'function') {
      throw new Error('aedes has no scheduleWill/putWill/streamWill; aedes internals changed');
    }
    const putWill = store.putWill.bind(store);
    store.putWill = (client, packet) => {
      const session = client as unknown as WillClient;
      if (session.version === 5 && packet.properties?.willDelayInterval) packet.clawboxSessionExpiry = session.sessionExpiryInterval;
      return putWill(client, packet);
    };
    const scheduleWill = internals.scheduleWill.bind(aedes);
    internals.scheduleWill = (client, will, delaySeconds) => {
      // Noted for the next start, which must time the rest of the delay (a closing broker cannot time it at all).
      if (client.id) this.#track(putWill({ id: client.id }, { ...will, clawboxDisconnectedAt: Date.now() }));
      scheduleWill(client, will, delaySeconds);
    };
    aedes.on('client', (client: Client) => this.cancel(client.id));
  }

  /**
   * At start: times the delayed wills of an earlier run. `sessionEnds` are the stored session deadlines
   * (session-expiry.ts), which may be sooner than the delay. Returns how many were published at once and
   * how many are timed.
   */
  async restore(sessionEnds: Map<string, number>): Promise<{ published: number; pending: number }> {
    const store = this.#aedes.persistence;
    const now = Date.now();
    let published = 0;
    let pending = 0;
    const wills: StoredWill[] = [];
    for await (const will of store.streamWill()) wills.push(will);
    for (const will of wills) {
      const delay = will.properties?.willDelayInterval;
      if (!delay) continue; // aedes' own sweep publishes wills without a delay
      const disconnectedAt = will.clawboxDisconnectedAt ?? now;
      let publishAt = disconnectedAt + delay * 1000;
      const sessionEnd = sessionEnds.get(will.clientId) ?? sessionEndFrom(will.clawboxSessionExpiry, disconnectedAt);
      if (sessionEnd !== undefined) publishAt = Math.min(publishAt, sessionEnd);
      // This broker's own from now on (aedes' sweep skips live brokers' wills); the disconnect time is kept.
      await store.putWill({ id: will.clientId }, { ...will, clawboxDisconnectedAt: disconnectedAt });
      if (publishAt <= now) {
        await this.#publish(will);
        published++;
      } else {
        pending++;
        const timer = setTimeout(() => {
          this.#timers.delete(will.clientId);
          if (this.#aedes.closed || this.#aedes.clients[will.clientId]) return;
          this.#publish(will).catch(this.#onError);
        }, Math.min(publishAt - now, 2 ** 31 - 1));
        timer.unref();
        this.#timers.set(will.clientId, { timer, will });
      }
    }
    return { published, pending };
  }

  /**
   * The session of an earlier run ends now (session-expiry.ts, which then deletes the will): its will,
   * still waiting for its delay, is due [MQTT-3.1.3-9].
   */
  async sessionEnds(clientId: string): Promise<void> {
    const pending = this.#timers.get(clientId);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.#timers.delete(clientId);
    await this.#publish(pending.will).catch(this.#onError);
  }

  /** The broker stops: drops the timers; resolves once the disconnect times noted while closing are stored. */
  async stop(): Promise<void> {
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    await Promise.all(this.#writes);
  }

  /** Drops the timer of a will of an earlier run: its client came back, or its session was erased. */
  cancel(clientId: string): void {
    const pending = this.#timers.get(clientId);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.#timers.delete(clientId);
  }

  async #publish(will: StoredWill): Promise<void> {
    const { clientId, brokerId: _b, clawboxDisconnectedAt: _d, clawboxSessionExpiry: _s, ...packet } = will;
    await new Promise<void>((resolve, reject) => this.#aedes.publish(packet as AedesPublishPacket, (error) => (error ? reject(error) : resolve())));
    await this.#aedes.persistence.delWill({ id: clientId });
  }

  #track(write: Promise<unknown>): void {
    const tracked = write.catch(this.#onError).finally(() => this.#writes.delete(tracked));
    this.#writes.add(tracked);
  }
}

function sessionEndFrom(interval: number | undefined, from: number): number | undefined {
  if (interval === undefined || interval >= NEVER) return undefined;
  return from + interval * 1000;
}
