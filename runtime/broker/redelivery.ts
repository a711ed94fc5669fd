/**
 * DUP on redelivery [MQTT-3.3.1-1]: when a persistent session reconnects, aedes resends the QoS 1/2
 * messages it had sent but not seen acknowledged, but with DUP 0. A queued message that was already sent
 * has a packet identifier in the store (aedes assigns it when it sends), so those get DUP 1 here; queued
 * messages that were never sent keep DUP 0.
 */
import { Readable } from 'node:stream';
import type { Aedes } from 'aedes';

interface StoredPacket {
  cmd?: string;
  messageId?: number;
  dup?: boolean;
}

interface OutgoingStore {
  outgoingStream(client: unknown): AsyncIterable<StoredPacket>;
}

export function markRedeliveries(aedes: Aedes): void {
  const store = (aedes as unknown as { persistence?: OutgoingStore }).persistence;
  if (!store || typeof store.outgoingStream !== 'function') {
    throw new Error('aedes persistence has no outgoingStream; aedes internals changed');
  }
  const outgoingStream = store.outgoingStream.bind(store);
  store.outgoingStream = (client) =>
    Readable.from(
      (async function* marked() {
        for await (const packet of outgoingStream(client)) {
          if (packet.cmd === 'publish' && packet.messageId) packet.dup = true;
          yield packet;
        }
      })(),
    );
}
