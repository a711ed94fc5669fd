/**
 * An MQTT 5 client that resumes its session (Clean Start 0) gets the messages queued for it, whatever
 * Session Expiry Interval its new CONNECT asks for [MQTT-3.1.2-5]. That interval says when the session will
 * end (0: with this connection), not that the existing one is dropped: only Clean Start 1 discards it
 * [MQTT-3.1.2-4].
 *
 * aedes 2.0.0-beta.1 drops the queue instead: it keeps "this session ends with the connection" as
 * `client.clean` (Session Expiry 0) and its connect step that replays the queue (`emptyQueue`) clears
 * every message while `client.clean` is set. Found by the Paho interoperability suite
 * (test_offline_message_queueing and test_publication_expiry reconnect with Clean Start 0 and no Session
 * Expiry property): 0 of the queued messages arrived. The upstream fix is one condition in
 * lib/handlers/connect.js (`client._cleanStart` alone decides); until then, while aedes replays the queue
 * to such a client, `client.clean` reads false. The session still ends with the connection: for an MQTT 5
 * client aedes decides that at close from the Session Expiry Interval, not from `client.clean`.
 */
import type { Aedes } from 'aedes';

interface ResumingClient {
  version: number | null;
  connecting: boolean;
  clean: boolean;
  _cleanStart?: boolean;
  conn: NodeJS.EventEmitter;
  once(event: 'connected', listener: () => void): unknown;
}

type OutgoingStream = (client: ResumingClient) => unknown;

/** Right after Aedes.createBroker(). */
export function deliverQueueOnResume(aedes: Aedes): void {
  const store = (aedes as unknown as { persistence?: { outgoingStream?: OutgoingStream } }).persistence;
  if (!store || typeof store.outgoingStream !== 'function') throw new Error('aedes persistence has no outgoingStream; aedes internals changed');
  const outgoingStream = store.outgoingStream.bind(store);
  store.outgoingStream = (client) => {
    // Only aedes' connect step, for a v5 session resumed by a connection that will not outlive it.
    if (client.version === 5 && client.connecting && client._cleanStart === false && client.clean) {
      client.clean = false;
      // Until the connect step is over (aedes reads the queue ahead of writing it, so not when the stream
      // ends), or the connection is gone.
      const restore = (): void => {
        client.clean = true;
      };
      client.once('connected', restore);
      client.conn.once('close', restore);
    }
    return outgoingStream(client);
  };
}
