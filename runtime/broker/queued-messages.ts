/**
 * Deleting every message queued for a session from aedes' store. aedes' persistence clears a queued
 * message by its packet id, which a message never sent to the client does not have yet: aedes' own
 * `emptyOutgoingQueue` (what it runs when an MQTT 5 session expires or ends with its connection) leaves
 * those in LevelDB, and a client that later resumes the same client id with Clean Start 0 got them
 * delivered from a session that had ended. Here such a message is given a packet id first, as aedes'
 * connect step does before it sends or drops a queued message; the sent ones go first, so the id is free.
 */
import type { Aedes } from 'aedes';

export interface QueuedPacket {
  messageId?: number | null;
  brokerId?: string;
  brokerCounter?: number;
}

export interface QueueStore {
  outgoingStream(client: { id: string }): AsyncIterable<QueuedPacket>;
  outgoingUpdate(client: { id: string }, packet: QueuedPacket): Promise<unknown>;
  outgoingClearMessageId(client: { id: string }, packet: { messageId?: number | null }): Promise<unknown>;
}

/** Read and cleared this many at a time (a long queue in rounds). */
const BATCH = 1000;
const PLACEHOLDER_ID = 1;

/** Never sent to the client: no packet id yet (msgpack stores a missing one as null). */
function unsent(packet: QueuedPacket): boolean {
  return packet.messageId === undefined || packet.messageId === null;
}

export async function clearQueuedMessages(store: QueueStore, client: { id: string }, signal?: AbortSignal): Promise<void> {
  let left = Number.POSITIVE_INFINITY;
  for (;;) {
    const batch: QueuedPacket[] = [];
    for await (const packet of store.outgoingStream({ id: client.id })) {
      batch.push(packet);
      if (batch.length >= BATCH) break;
    }
    if (batch.length === 0) return;
    if (batch.length >= left && batch.length < BATCH) throw new Error(`could not clear the queued messages of an MQTT session (${batch.length} stay)`);
    left = batch.length;
    batch.sort((a, b) => Number(unsent(a)) - Number(unsent(b)));
    for (const packet of batch) {
      signal?.throwIfAborted();
      if (unsent(packet)) {
        await store.outgoingUpdate({ id: client.id }, { ...packet, messageId: PLACEHOLDER_ID });
        await store.outgoingClearMessageId({ id: client.id }, { messageId: PLACEHOLDER_ID });
      } else {
        await store.outgoingClearMessageId({ id: client.id }, packet);
      }
    }
  }
}

interface WipingAedes {
  id: string;
  persistence: QueueStore & {
    cleanSubscriptions(client: { id: string }): Promise<void>;
    delWill(client: { id: string; brokerId: string }): Promise<unknown>;
  };
  _wipeSession(client: { id: string }): void;
  emit(event: 'error', error: Error): boolean;
}

/**
 * Right after Aedes.createBroker(): aedes' `_wipeSession` (an MQTT 5 session that expired, or ended with
 * its connection) does what it did, with the queue cleared by clearQueuedMessages.
 */
export function wipeWholeSessions(aedes: Aedes): void {
  const internals = aedes as unknown as WipingAedes;
  if (typeof internals._wipeSession !== 'function') throw new Error('aedes has no _wipeSession; aedes internals changed');
  const store = internals.persistence;
  const onError = (error: Error): void => {
    internals.emit('error', error);
  };
  internals._wipeSession = (client) => {
    store.delWill({ id: client.id, brokerId: internals.id }).catch(onError);
    // The queue before the subscriptions: aedes-persistence-redis drops a client's queue list with its last
    // subscription, leaving the queued messages themselves behind.
    clearQueuedMessages(store, client)
      .then(() => store.cleanSubscriptions(client))
      .catch(onError);
  };
}
