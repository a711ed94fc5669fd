/**
 * Session present [MQTT-3.2.2-2]: a client that reconnects with CleanSession = 0 to a session the broker
 * holds must get session-present = 1 in its CONNACK. aedes 1.2 derives the flag from the stored
 * subscriptions alone (lib/handlers/connect.js, restoreSubs), so a persistent session without any
 * subscription (connected once, or unsubscribed from everything) is reported as new.
 *
 * The sessions are recorded here (a `SessionRegistry`: one key per client id in the broker's store, or a
 * Set without persistence), through aedes' persistence interface:
 *
 * - `subscriptionsByClient` (aedes calls it only for a CleanSession = 0 connect, before the CONNACK)
 *   records the session and, when it was known but has no subscriptions, answers with one marker
 *   subscription, so that aedes sets the flag;
 * - aedes then restores that marker through `authorizeSubscribe`, where `refuseSessionMarker` answers
 *   "not granted" for it: nothing is subscribed;
 * - `cleanSubscriptions` (a CleanSession = 1 connect discards the previous session) forgets it.
 */

export interface SessionRegistry {
  has(clientId: string): Promise<boolean>;
  add(clientId: string): Promise<void>;
  remove(clientId: string): Promise<void>;
}

export function memorySessions(): SessionRegistry {
  const ids = new Set<string>();
  return {
    has: async (id) => ids.has(id),
    add: async (id) => {
      ids.add(id);
    },
    remove: async (id) => {
      ids.delete(id);
    },
  };
}

interface Subscription {
  topic: string;
  qos: number;
}

interface SubscriptionStore {
  subscriptionsByClient(client: { id: string }): Promise<Subscription[]>;
  cleanSubscriptions(client: { id: string }): Promise<void>;
}

/** The placeholder handed to aedes for a known session without subscriptions; never subscribed. */
const MARKER_TOPIC = '$clawbox/session-present';
const markers = new WeakSet<object>();

export function trackSessions(aedesInstance: unknown, registry: SessionRegistry): void {
  const store = (aedesInstance as { persistence?: SubscriptionStore }).persistence;
  if (!store || typeof store.subscriptionsByClient !== 'function' || typeof store.cleanSubscriptions !== 'function') {
    throw new Error('aedes persistence has no subscriptionsByClient/cleanSubscriptions; aedes internals changed');
  }
  const byClient = store.subscriptionsByClient.bind(store);
  const clean = store.cleanSubscriptions.bind(store);
  store.subscriptionsByClient = async (client) => {
    const [subs, known] = await Promise.all([byClient(client), registry.has(client.id)]);
    if (!known) await registry.add(client.id);
    if (!known || subs.length > 0) return subs;
    const marker = { topic: MARKER_TOPIC, qos: 0 };
    markers.add(marker);
    return [marker];
  };
  store.cleanSubscriptions = async (client) => {
    await clean(client);
    await registry.remove(client.id);
  };
}

/** True for the marker subscription: the authorizeSubscribe hook must answer (null, null) for it. */
export function isSessionMarker(sub: unknown): boolean {
  return typeof sub === 'object' && sub !== null && markers.has(sub);
}
