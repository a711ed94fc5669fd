/**
 * Hands client publishes on request topics to the front door's MQTT adapter, with the sender. Runs in
 * the broker's publish entry point after the access policy accepted the packet, so a message refused by
 * the ACL never becomes a request, and a retained message replayed at start (no live sender) never does.
 */
import type { Client, PublishPacket } from 'aedes';
import type { Logger } from '../logging.js';
import type { ClientMessageHandler, MessageProperties } from '../messaging.js';
import type { AccessPolicy } from './access.js';
import { topicFilterProblem, topicMatches } from './topics.js';

interface Route {
  filter: string;
  handler: ClientMessageHandler;
}

export class ClientRequestRouter {
  readonly #routes = new Set<Route>();

  add(filter: string, handler: ClientMessageHandler): () => void {
    const problem = topicFilterProblem(filter);
    if (problem) throw new Error(`bad request filter "${filter}": ${problem}`);
    const route = { filter, handler };
    this.#routes.add(route);
    return () => {
      this.#routes.delete(route);
    };
  }

  dispatch(packet: PublishPacket, client: Client, policy: AccessPolicy, logger: Logger): void {
    if (this.#routes.size === 0 || packet.topic.charCodeAt(0) === 36 /* $ */) return;
    let message: Parameters<ClientMessageHandler>[0] | undefined;
    for (const route of this.#routes) {
      if (!topicMatches(route.filter, packet.topic)) continue;
      message ??= {
        topic: packet.topic,
        payload: Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload),
        retain: packet.retain === true,
        client: { id: client.id, ...policy.describe(client) },
        ...requestProperties(packet),
        mayPublish: (topic) => policy.mayPublish(client, topic),
      };
      try {
        route.handler(message);
      } catch (error) {
        logger.error({ err: error, topic: packet.topic }, 'request handler threw');
      }
    }
  }
}

/** The MQTT 5 properties a request may carry (aedes passes them on the packet); none for MQTT 3.1.1. */
function requestProperties(packet: PublishPacket): { properties?: MessageProperties } {
  const given = (packet as { properties?: MessageProperties }).properties;
  if (!given) return {};
  const properties: MessageProperties = {};
  if (typeof given.responseTopic === 'string') properties.responseTopic = given.responseTopic;
  if (Buffer.isBuffer(given.correlationData)) properties.correlationData = given.correlationData;
  if (typeof given.contentType === 'string') properties.contentType = given.contentType;
  if (given.userProperties && typeof given.userProperties === 'object') properties.userProperties = given.userProperties;
  return { properties };
}
