/**
 * Delivery QoS as MQTT 3.1.1 requires it, which aedes 1.2 gets wrong for wildcard subscriptions:
 *
 * - a message goes out at min(publish QoS, subscription QoS) [MQTT-3.8.4-6]; aedes only looks up a
 *   subscription by the exact topic, so `a/+` at QoS 1 receives a QoS 2 publish at QoS 2 (and retained
 *   messages at their stored QoS);
 * - with overlapping subscriptions the one copy aedes sends must have the highest QoS of all matching
 *   subscriptions [MQTT-3.3.5-1]; aedes sends whichever subscription's listener runs first.
 *
 * Every subscription captures `client.deliver0` or `client.deliverQoS` when it is made, so replacing the
 * two on a fresh client (right after aedes.handle) puts this check in front of every delivery. The cost is
 * one topic match per subscription of the receiving client, only for QoS 1/2 messages.
 */
import type { AedesPublishPacket, Client } from 'aedes';
import { topicMatches } from './topics.js';

type Deliver = (packet: AedesPublishPacket, done: () => void) => void;

interface ClientInternals {
  subscriptions: Record<string, { qos: number }>;
  deliver0: Deliver;
  deliverQoS: Deliver;
}

/** Highest QoS among the client's subscriptions that match `topic`, or -1 when none does. */
function grantedQos(subscriptions: ClientInternals['subscriptions'], topic: string): number {
  const exact = subscriptions[topic];
  let max = exact ? exact.qos : -1;
  for (const filter in subscriptions) {
    if (max === 2) break;
    const qos = subscriptions[filter]!.qos;
    if (qos > max && filter !== topic && topicMatches(filter, topic)) max = qos;
  }
  return max;
}

export function enforceDeliveryQos(client: Client): void {
  const internals = client as unknown as ClientInternals;
  const { deliver0, deliverQoS } = internals;
  if (typeof deliver0 !== 'function' || typeof deliverQoS !== 'function') {
    throw new Error('aedes client has no deliver0/deliverQoS; aedes internals changed');
  }
  internals.deliver0 = (packet, done) => {
    if (packet.qos > 0) {
      // Another matching subscription may grant more than this QoS 0 one.
      const qos = Math.min(packet.qos, grantedQos(internals.subscriptions, packet.topic));
      if (qos > 0) {
        packet.qos = qos as 1 | 2;
        deliverRaised(packet, done);
        return;
      }
    }
    deliver0(packet, done);
  };
  /**
   * aedes' deliverQoS also lowers the QoS to that of a subscription on exactly this topic, in a
   * setImmediate callback. When a wildcard subscription grants more, the exact one's QoS is raised until
   * that callback has run (setImmediate runs callbacks in order, so the restore comes after it).
   */
  const deliverRaised: Deliver = (packet, done) => {
    const exact = internals.subscriptions[packet.topic];
    if (!exact || exact.qos >= packet.qos) {
      deliverQoS(packet, done);
      return;
    }
    const saved = exact.qos;
    exact.qos = packet.qos;
    deliverQoS(packet, done);
    setImmediate(() => {
      if (exact.qos === packet.qos) exact.qos = saved;
    });
  };
  internals.deliverQoS = (packet, done) => {
    if (packet.qos > 0) {
      const granted = grantedQos(internals.subscriptions, packet.topic);
      if (granted >= 0 && granted < packet.qos) packet.qos = granted as 0 | 1;
    }
    deliverRaised(packet, done);
  };
}
