/**
 * The runtime's own MQTT client, without a socket: publishes go straight into aedes (no ACL, no CONNECT)
 * and subscriptions are aedes/mqemitter listeners. Subscribing also delivers the retained messages that
 * match, as for any MQTT client, so a component can read the last state on start.
 */
import type { Aedes, AedesPublishPacket } from 'aedes';
import { ClawboxError } from '../errors.js';
import type { Logger } from '../logging.js';
import type { MessageHandler, PublishOptions } from '../messaging.js';
import { topicFilterProblem, topicMatches, topicNameProblem } from './topics.js';

type Deliver = (packet: AedesPublishPacket, done: () => void) => void;

interface Listener {
  filter: string;
  deliver: Deliver;
}

interface RetainedPersistence {
  createRetainedStream(pattern: string): AsyncIterable<AedesPublishPacket>;
}

export class InternalClient {
  readonly #aedes: Aedes;
  readonly #logger: Logger;
  readonly #listeners = new Set<Listener>();

  constructor(aedes: Aedes, logger: Logger) {
    this.#aedes = aedes;
    this.#logger = logger;
  }

  publish(topic: string, payload: string | Buffer, options: PublishOptions = {}): Promise<void> {
    const problem = topicNameProblem(topic);
    if (problem) return Promise.reject(new ClawboxError('TOPIC_INVALID', `cannot publish to "${topic}": ${problem}`, { topic }));
    const packet = {
      cmd: 'publish' as const,
      topic,
      payload: typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload,
      qos: options.qos ?? 0,
      retain: options.retain ?? false,
      dup: false,
      ...(options.properties ? { properties: options.properties } : {}),
    };
    return new Promise((resolve, reject) => {
      // aedes calls back once the message is stored (retained, offline queues) and handed to subscribers.
      this.#aedes.publish(packet, (error?: Error) => {
        if (error) reject(new ClawboxError('INTERNAL', `publish to ${topic} failed: ${error.message}`, { topic }, { cause: error }));
        else resolve();
      });
    });
  }

  async subscribe(filter: string, handler: MessageHandler): Promise<() => Promise<void>> {
    const problem = topicFilterProblem(filter);
    if (problem) throw new ClawboxError('TOPIC_INVALID', `cannot subscribe to "${filter}": ${problem}`, { filter });
    const call = (topic: string, payload: Buffer): void => {
      try {
        handler(topic, payload);
      } catch (error) {
        // A failing handler must not break delivery to everyone else.
        this.#logger.error({ err: error, topic, filter }, 'internal subscriber threw');
      }
    };
    const wildcardFirst = filter.startsWith('+') || filter.startsWith('#');
    const deliver: Deliver = (packet, done) => {
      // [MQTT-4.7.2-1]: wildcards in the first level do not match $-topics (aedes' own $SYS traffic).
      if (!(wildcardFirst && packet.topic.startsWith('$'))) call(packet.topic, packet.payload as Buffer);
      done();
    };
    const listener = { filter, deliver };
    await new Promise<void>((resolve) => this.#aedes.subscribe(filter, deliver, resolve));
    this.#listeners.add(listener);
    await this.#deliverRetained(filter, call);
    return () => this.#unsubscribe(listener);
  }

  async #deliverRetained(filter: string, call: (topic: string, payload: Buffer) => void): Promise<void> {
    const persistence = (this.#aedes as unknown as { persistence: RetainedPersistence }).persistence;
    for await (const packet of persistence.createRetainedStream(filter)) {
      if (topicMatches(filter, packet.topic)) call(packet.topic, packet.payload as Buffer);
    }
  }

  #unsubscribe(listener: Listener): Promise<void> {
    if (!this.#listeners.delete(listener)) return Promise.resolve();
    return new Promise((resolve) => this.#aedes.unsubscribe(listener.filter, listener.deliver, resolve));
  }

  /** Forgets every listener (the aedes instance is going away). */
  clear(): void {
    this.#listeners.clear();
  }
}
