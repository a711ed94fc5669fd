/**
 * MQTT 5 Maximum Packet Size toward the client: a client may say in its CONNECT how large a packet it
 * accepts, and the broker must not send it a larger one; it discards the message and carries on as if it
 * had been sent [MQTT-3.1.2-25]. aedes 2.0 beta records the limit (`client.maximumPacketSize`) but sends
 * anyway, so this sits in front of each client's deliver functions (like delivery-qos.ts).
 *
 * The exact size is only computed (by serialising the packet) when a cheap upper bound says it might not
 * fit, so clients with a roomy limit, and every MQTT 3.1.1 client, pay one property read per message.
 */
import { createRequire } from 'node:module';
import type { AedesPublishPacket, Client } from 'aedes';

type Deliver = (packet: AedesPublishPacket, done: () => void) => void;

interface ClientInternals {
  maximumPacketSize?: number;
  clean: boolean;
  deliver0: Deliver;
  deliverQoS: Deliver;
  broker: { persistence: { outgoingClearMessageId(client: unknown, packet: unknown): Promise<unknown> } };
}

const mqttPacket = createRequire(createRequire(import.meta.url).resolve('aedes'))('mqtt-packet') as {
  generate(packet: unknown, options: { protocolVersion: number }): Buffer;
};

/** An upper bound of the PUBLISH's size without serialising it: 4 bytes of properties per entry, generously. */
function sizeBound(packet: AedesPublishPacket): number {
  const properties = (packet as { properties?: Record<string, unknown> }).properties;
  let bound = 5 + 2 + 2 + Buffer.byteLength(packet.topic) + packet.payload.length + 5;
  if (properties) bound += Buffer.byteLength(JSON.stringify(properties)) * 2 + 64;
  return bound;
}

function fits(packet: AedesPublishPacket, limit: number): boolean {
  if (sizeBound(packet) <= limit) return true;
  try {
    return mqttPacket.generate({ ...packet, cmd: 'publish', messageId: packet.qos > 0 ? 1 : undefined }, { protocolVersion: 5 }).length <= limit;
  } catch {
    return true; // not ours to judge: aedes' own write reports it
  }
}

export function limitOutgoingPackets(client: Client): void {
  const internals = client as unknown as ClientInternals;
  const { deliver0, deliverQoS } = internals;
  if (typeof deliver0 !== 'function' || typeof deliverQoS !== 'function') throw new Error('aedes client has no deliver0/deliverQoS; aedes internals changed');
  internals.deliver0 = (packet, done) => {
    const limit = internals.maximumPacketSize;
    if (limit !== undefined && !fits(packet, limit)) setImmediate(done);
    else deliver0(packet, done);
  };
  internals.deliverQoS = (packet, done) => {
    const limit = internals.maximumPacketSize;
    if (limit !== undefined && !fits(packet, limit)) {
      // As aedes does for a message it decides not to forward: a queued copy must not come back later.
      if (!internals.clean) internals.broker.persistence.outgoingClearMessageId(client, packet).catch(() => {});
      setImmediate(done);
    } else deliverQoS(packet, done);
  };
}
