/**
 * Security fixes that aedes 1.1.3–1.2.0 shipped and the 2.0.0 beta (MQTT 5) lost, put back from outside:
 *
 * - GHSA-52qw-whmv-87c5: `aedes.clients` and each `client.subscriptions` are keyed by client-chosen
 *   strings (client ids, topic filters), so they must have no prototype: a client id or filter such as
 *   `__proto__` or `constructor` must not reach Object.prototype.
 * - GHSA-p8r9-qf8w-p73r: the inbound QoS 2 dedup store (`incoming:` keys) is session state too. A clean
 *   session must not leave it behind, or a client that publishes QoS 2 and never completes it grows the
 *   store without bound with each fresh client id. It is cleared when a clean session connects (aedes
 *   calls `cleanSubscriptions` then) and when a clean session's connection ends.
 * - GHSA-5jvp-3p2v-5qgf (the inbound in-flight cap) is inbound-window.ts.
 */
import type { Aedes, Client } from 'aedes';

interface IncomingStore {
  cleanSubscriptions(client: { id: string }): Promise<void>;
  cleanIncoming?(client: { id: string }): Promise<void>;
}

/** A plain object with the same own entries and no prototype. */
function withoutPrototype<T extends object>(value: T): T {
  return Object.assign(Object.create(null) as T, value);
}

/** Right after Aedes.createBroker(). */
export function hardenBroker(aedes: Aedes): void {
  const internals = aedes as unknown as { clients: Record<string, Client>; brokers: Record<string, unknown>; persistence?: IncomingStore };
  internals.clients = withoutPrototype(internals.clients);
  internals.brokers = withoutPrototype(internals.brokers);
  const store = internals.persistence;
  if (!store || typeof store.cleanSubscriptions !== 'function') throw new Error('aedes persistence has no cleanSubscriptions; aedes internals changed');
  if (typeof store.cleanIncoming !== 'function') return;
  const cleanIncoming = store.cleanIncoming.bind(store);
  const cleanSubscriptions = store.cleanSubscriptions.bind(store);
  store.cleanSubscriptions = async (client) => {
    await cleanSubscriptions(client);
    await cleanIncoming(client);
  };
  aedes.on('clientDisconnect', (client) => {
    if (client.clean && client.id) cleanIncoming({ id: client.id }).catch(() => {});
  });
}

/** Right after aedes.handle(), before the client can subscribe. */
export function hardenClient(client: Client): void {
  const internals = client as unknown as { subscriptions: Record<string, unknown> };
  internals.subscriptions = withoutPrototype(internals.subscriptions);
}
