/**
 * Broker → client topic aliases (MQTT 5 [MQTT-3.3.2-8..11]): a client that says in CONNECT it accepts
 * aliases (Topic Alias Maximum > 0) gets, for each topic, one PUBLISH with the topic and an alias, and
 * afterwards PUBLISHes with an empty topic and only the alias. A client with 0 (or an MQTT 3.1.1 client)
 * never gets one [MQTT-3.3.2-9].
 *
 * Aliases live per connection: at most the client's maximum, least recently used reused first (the
 * reused number is sent with its new topic, which replaces the old mapping at the client). Applied as a
 * packet is written (write-hook.ts), so the order the client reads is the order aliases were assigned,
 * also for packets that waited in the flow-control queue; the packet aedes stores is never changed.
 */
import type { WrittenPacket } from './write-hook.js';

export class TopicAliasesOut {
  readonly #maximum: number;
  /** topic → alias, in least-recently-used-first order (a Map keeps insertion order). */
  readonly #aliases = new Map<string, number>();

  constructor(maximum: number) {
    this.#maximum = maximum;
  }

  /** The packet to write in place of `packet`: a copy with an alias (and maybe no topic), or itself. */
  apply(packet: WrittenPacket): WrittenPacket {
    const topic = packet.topic;
    if (!topic) return packet;
    let alias = this.#aliases.get(topic);
    if (alias !== undefined) {
      this.#aliases.delete(topic);
      this.#aliases.set(topic, alias);
      return { ...packet, topic: '', properties: { ...packet.properties, topicAlias: alias } };
    }
    if (this.#aliases.size < this.#maximum) {
      alias = this.#aliases.size + 1;
    } else {
      const [oldest, reused] = this.#aliases.entries().next().value as [string, number];
      this.#aliases.delete(oldest);
      alias = reused;
    }
    this.#aliases.set(topic, alias);
    return { ...packet, properties: { ...packet.properties, topicAlias: alias } };
  }
}
