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
}

interface NumberedPacket {
  brokerId?: string | null;
  brokerCounter?: number;
}

/** How many recent message numbers each client remembers to drop overlapping-subscription copies. */
const RECENT_WINDOW = 256;

function inertDuplicates(): Record<string, number> {
  return new Proxy(Object.create(null) as Record<string, number>, {
    get: () => 0,
    set: () => true,
    has: () => false,
    deleteProperty: () => true,
  });
}

export function keepDeliveryOrder(client: Client): void {
  const internals = client as unknown as ClientInternals;
  const { deliver0, deliverQoS } = internals;
  if (typeof deliver0 !== 'function' || typeof deliverQoS !== 'function' || typeof internals.duplicates !== 'object') {
    throw new Error('aedes client has no deliver0/deliverQoS/duplicates; aedes internals changed');
  }
  internals.duplicates = inertDuplicates();

  // aedes wraps a message in a new packet object per subscription, while its deliverQoS hands a QoS 0
  // packet on to deliver0 as the same object: that re-entry is not a copy. (WeakSet: keeps no payloads.)
  const admitted = new WeakSet<AedesPublishPacket>();
  const recent = new Set<string>();
  /** True when this message was already delivered to the client (an overlapping subscription's copy). */
  const isCopy = (packet: AedesPublishPacket): boolean => {
    if (admitted.has(packet)) return false;
    const { brokerId, brokerCounter } = packet as unknown as NumberedPacket;
    if (!brokerId || !brokerCounter) return false; // retained-on-subscribe: aedes never dedupes these either
    const key = `${brokerId}:${brokerCounter}`;
    if (recent.has(key)) return true;
    recent.add(key);
    admitted.add(packet);
    if (recent.size > RECENT_WINDOW) recent.delete(recent.values().next().value as string);
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
