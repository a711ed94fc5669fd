/**
 * Stops aedes 1.2 from silently dropping messages that reach a client out of number order.
 *
 * aedes numbers each message when publish() is called (`brokerCounter`), but stores a retained one in the
 * persistence (asynchronously) before forwarding it, so a later, non-retained message can be forwarded
 * first. Each client's `dedupe` (lib/client.js) then drops any message numbered lower than the highest it
 * has seen from that broker id (`client.duplicates[brokerId]`): the retained state message is lost.
 *
 * That "highest number seen" rule exists for broker clusters (mqemitter-redis & co.), where one message
 * can come back to a broker through another. We run one broker with a local mqemitter, so a message
 * reaches a client's listeners exactly once per matching subscription; the only real duplicates left are
 * the copies of one message for overlapping subscriptions, which MQTT allows but aedes (and our
 * overlapping-subscription test) reduce to one copy. So:
 *
 * - `client.duplicates` becomes inert (every lookup reads 0, nothing is recorded): aedes' dedupe always
 *   forwards;
 * - in front of deliver0/deliverQoS, a copy of a message (same brokerId and brokerCounter, another
 *   packet object) already delivered to this client is dropped. The recent-message window is bounded: the copies of one message
 *   are delivered by the same mqemitter emit, right after each other.
 *
 * Must run on a fresh client (right after aedes.handle), before enforceDeliveryQos wraps the same two
 * functions, and before any SUBSCRIBE captures them.
 */
import type { AedesPublishPacket, Client } from 'aedes';

type Deliver = (packet: AedesPublishPacket, done: () => void) => void;

interface ClientInternals {
  duplicates: Record<string, number>;
  deliver0: Deliver;
  deliverQoS: Deliver;
  broker?: { id?: string };
}

interface NumberedPacket {
  brokerId?: string | null;
  brokerCounter?: number;
  /** MQTT 5 no local: set by aedes' subscription wrapper; with `clientId`, the publisher. */
  nl?: boolean;
  clientId?: string;
  properties?: { subscriptionIdentifier?: number | number[] } & Record<string, unknown>;
}

/** How many recent message numbers each client remembers to drop overlapping-subscription copies. */
const RECENT_WINDOW = 256;

/** Reads 0 and records nothing, whatever the key (other brokers' ids: never seen with a local mqemitter). */
const INERT = new Proxy(Object.create(null) as Record<string, number>, {
  get: () => 0,
  set: () => true,
  has: () => false,
  deleteProperty: () => true,
});

/**
 * An inert `client.duplicates`. aedes reads and writes it once per delivery, nearly always under this
 * broker's own id: an accessor for that id keeps the hot path off the Proxy traps (a visible share of the
 * broker's CPU at QoS 0 in a profile; bench/README.md, "Broker"); any other id falls through to the inert Proxy in the prototype.
 */
function inertDuplicates(localId: string | undefined): Record<string, number> {
  const duplicates = Object.create(INERT) as Record<string, number>;
  if (localId) {
    Object.defineProperty(duplicates, localId, { get: () => 0, set: () => {}, enumerable: false, configurable: false });
  }
  return duplicates;
}

export function keepDeliveryOrder(client: Client): void {
  const internals = client as unknown as ClientInternals;
  const { deliver0, deliverQoS } = internals;
  if (typeof deliver0 !== 'function' || typeof deliverQoS !== 'function' || typeof internals.duplicates !== 'object') {
    throw new Error('aedes client has no deliver0/deliverQoS/duplicates; aedes internals changed');
  }
  const localId = internals.broker?.id;
  internals.duplicates = inertDuplicates(localId);
  const self = client as unknown as { id: string | null };

  // aedes wraps a message in a new packet object per subscription, while its deliverQoS hands a QoS 0
  // packet on to deliver0 as the same object, synchronously: that re-entry is not a copy. Only the last
  // admitted packet can re-enter, so it is the only one remembered.
  let lastAdmitted: AedesPublishPacket | undefined;
  let lastKey: number | string | undefined;
  // The recent message numbers: a Set for lookups and a ring for evicting the oldest. Messages of this
  // broker (all of them with a local mqemitter) are keyed by their number alone, a small integer that
  // hashes without allocating; others by `brokerId:number`.
  const recent = new Set<number | string>();
  // Grown as messages arrive (most clients never receive RECENT_WINDOW messages), then reused in a circle.
  const ring: (number | string)[] = [];
  let next = 0;
  /** True when this message was already delivered to the client (an overlapping subscription's copy). */
  const isCopy = (packet: AedesPublishPacket): boolean => {
    if (packet === lastAdmitted) return false;
    const numbered = packet as unknown as NumberedPacket;
    const { brokerId, brokerCounter } = numbered;
    if (!brokerId || !brokerCounter) return false; // retained-on-subscribe: aedes never dedupes these either
    // A no-local subscription's copy of the client's own message: aedes drops it after this guard, so it
    // must not count as delivered, or an overlapping subscription without no local loses the message.
    if (numbered.nl && numbered.clientId === self.id) return false;
    const key = brokerId === localId ? brokerCounter : `${brokerId}:${brokerCounter}`;
    if (recent.has(key)) {
      if (key === lastKey && lastAdmitted) mergeSubscriptionIdentifiers(lastAdmitted as unknown as NumberedPacket, numbered);
      return true;
    }
    lastKey = key;
    const evicted = ring[next];
    if (evicted !== undefined) recent.delete(evicted);
    ring[next] = key;
    next = (next + 1) % RECENT_WINDOW;
    recent.add(key);
    lastAdmitted = packet;
    return false;
  };
  const guard =
    (deliver: Deliver): Deliver =>
    (packet, done) => {
      if (isCopy(packet)) setImmediate(done);
      else deliver(packet, done);
    };
  internals.deliver0 = guard(deliver0);
  internals.deliverQoS = guard(deliverQoS);
}

/**
 * MQTT 5 [MQTT-3.3.4-4]: the one copy delivered for overlapping subscriptions carries the subscription
 * identifiers of all of them. The admitted copy is still waiting for its write (aedes writes in a
 * setImmediate), so its identifiers can be extended; its properties object is replaced, never changed in
 * place (aedes shares properties objects between the copies of a message).
 */
function mergeSubscriptionIdentifiers(admitted: NumberedPacket, copy: NumberedPacket): void {
  const extra = copy.properties?.subscriptionIdentifier;
  if (extra === undefined) return;
  const current = admitted.properties?.subscriptionIdentifier;
  const ids = current === undefined ? [] : Array.isArray(current) ? [...current] : [current];
  for (const id of Array.isArray(extra) ? extra : [extra]) if (!ids.includes(id)) ids.push(id);
  admitted.properties = { ...admitted.properties, subscriptionIdentifier: ids.length === 1 ? ids[0]! : ids };
}
