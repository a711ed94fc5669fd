/**
 * One person's MQTT sessions, for their data rights (runtime/privacy): what the broker keeps of the
 * persistent sessions that belong to them (session-owners.ts) and of their connected clients, exported or
 * erased.
 *
 * Erasing disconnects their connected clients first, without publishing their wills (a will is theirs
 * too), then deletes each session through aedes' persistence interface: subscriptions, queued messages,
 * will, QoS 2 state, and its expiry deadline and delayed-will timer; then the store is compacted, so the
 * deleted records leave the disk as well. A reconnect with Clean Start 0 then finds no session (session
 * present 0) and nothing queued.
 */
import type { Aedes, Client } from 'aedes';
import { type QueueStore, type QueuedPacket, clearQueuedMessages } from './queued-messages.js';
import { isSessionMarker } from './session-present.js';
import type { SessionOwners } from './session-owners.js';

export interface MqttSessionExport {
  client_id: string;
  connected: boolean;
  /** Outlives its connection (subscriptions and queued messages are kept in the broker's store). */
  persistent: boolean;
  subscriptions: { topic: string; qos: number }[];
  /** Messages waiting for the client (queued while it was away, or sent and not yet acknowledged). */
  queued_messages: { topic: string; qos: number; payload: string }[];
  /** False when there were more queued messages than an export lists. */
  queued_complete: boolean;
  will: { topic: string; payload: string; retain: boolean } | null;
}

/** A bound on what one export lists per session. */
const MAX_QUEUED_LISTED = 1000;

interface StoredPacket extends QueuedPacket {
  topic: string;
  qos?: number;
  payload?: unknown;
  retain?: boolean;
}

interface SessionStore extends QueueStore {
  subscriptionsByClient(client: { id: string }): Promise<{ topic: string; qos: number }[]>;
  cleanSubscriptions(client: { id: string }): Promise<void>;
  outgoingStream(client: { id: string }): AsyncIterable<StoredPacket>;
  getWill(client: { id: string }): Promise<StoredPacket | undefined | null>;
  delWill(client: { id: string; brokerId?: string }): Promise<unknown>;
  cleanIncoming?(client: { id: string }): Promise<void>;
}

interface AedesInternals {
  id: string;
  clients: Record<string, Client & { clean: boolean; will?: unknown; _will?: unknown }>;
  persistence: SessionStore;
  clearSessionExpiry(clientId: string): void;
  clearDelayedWill?(clientId: string): void;
}

export interface SessionErasureOptions {
  owners: SessionOwners;
  /** Who a connected client is (null: not authenticated yet). */
  ownerOf(client: Client): string | null;
  /** Drops the timer of a delayed will of an earlier run (will-persistence.ts), if any. */
  cancelDelayedWill?(clientId: string): void;
  /** Makes the deletions reach the disk (persistence.ts). */
  compact?(): Promise<void>;
}

export class SessionErasure {
  readonly #aedes: AedesInternals;
  readonly #options: SessionErasureOptions;

  constructor(aedes: Aedes, options: SessionErasureOptions) {
    this.#aedes = aedes as unknown as AedesInternals;
    this.#options = options;
  }

  async export(owner: string, signal: AbortSignal): Promise<MqttSessionExport[]> {
    const store = this.#aedes.persistence;
    const connected = this.#connectedOf(owner);
    const persistent = new Set(await this.#options.owners.clientsOf(owner));
    const ids = [...new Set([...connected.map((c) => c.id), ...persistent])].sort();
    const out: MqttSessionExport[] = [];
    for (const id of ids) {
      signal.throwIfAborted();
      const client = { id };
      const subscriptions = (await store.subscriptionsByClient(client)).filter((sub) => !isSessionMarker(sub)).map(({ topic, qos }) => ({ topic, qos }));
      const live = connected.find((c) => c.id === id);
      // A clean session's subscriptions live on its connection only.
      if (live && subscriptions.length === 0) {
        for (const [topic, sub] of Object.entries((live as unknown as { subscriptions: Record<string, { qos: number }> }).subscriptions ?? {})) {
          subscriptions.push({ topic, qos: sub.qos });
        }
      }
      const queued: MqttSessionExport['queued_messages'] = [];
      let complete = true;
      for await (const packet of store.outgoingStream(client)) {
        if (queued.length >= MAX_QUEUED_LISTED) {
          complete = false;
          break;
        }
        queued.push({ topic: packet.topic, qos: packet.qos ?? 0, payload: text(packet.payload) });
      }
      const will = await store.getWill(client);
      out.push({
        client_id: id,
        connected: live !== undefined,
        persistent: persistent.has(id),
        subscriptions,
        queued_messages: queued,
        queued_complete: complete,
        will: will ? { topic: will.topic, payload: text(will.payload), retain: will.retain === true } : null,
      });
    }
    return out;
  }

  /** Disconnects the owner's clients and deletes their sessions; how many client ids went. */
  async erase(owner: string, signal: AbortSignal): Promise<number> {
    const ids = new Set<string>();
    for (const client of this.#connectedOf(owner)) {
      signal.throwIfAborted();
      ids.add(client.id);
      await this.#disconnect(client);
    }
    for (const id of await this.#options.owners.clientsOf(owner)) ids.add(id);
    for (const id of ids) {
      signal.throwIfAborted();
      await this.#wipe(id, signal);
    }
    if (ids.size > 0) await this.#options.compact?.();
    return ids.size;
  }

  #connectedOf(owner: string): AedesInternals['clients'][string][] {
    return Object.values(this.#aedes.clients).filter((client) => this.#options.ownerOf(client) === owner);
  }

  /** Closes the connection without its will; resolves once aedes has let the client go. */
  #disconnect(client: AedesInternals['clients'][string]): Promise<void> {
    client.will = null;
    client._will = null;
    return new Promise((resolve) => client.close(() => resolve()));
  }

  async #wipe(clientId: string, signal: AbortSignal): Promise<void> {
    const aedes = this.#aedes;
    const store = aedes.persistence;
    const client = { id: clientId };
    aedes.clearSessionExpiry(clientId); // also the stored deadline (session-expiry.ts)
    aedes.clearDelayedWill?.(clientId);
    this.#options.cancelDelayedWill?.(clientId);
    // The queue first: aedes-persistence-redis drops a client's queue list with its last subscription,
    // leaving the queued messages themselves behind.
    await clearQueuedMessages(store, client, signal);
    await store.cleanSubscriptions(client); // also the session registry and the owner record
    await store.delWill({ id: clientId, brokerId: aedes.id });
    await store.cleanIncoming?.(client);
  }
}

function text(payload: unknown): string {
  if (Buffer.isBuffer(payload)) return payload.toString('utf8');
  if (payload instanceof Uint8Array) return Buffer.from(payload).toString('utf8');
  return typeof payload === 'string' ? payload : '';
}
