/**
 * Wires the MQTT 5 features aedes 2.0 beta lacks into each connection, at the three places they need:
 *
 * - the packets a client sends (its parser's 'packet' listener, as inbound-gate.ts does): the CONNECT's
 *   Receive Maximum and Topic Alias Maximum, shared-subscription names in SUBSCRIBE/UNSUBSCRIBE, and the
 *   acknowledgements that free flow-control slots;
 * - the packets written to it (write-hook.ts): flow control (outbound-flow.ts), topic aliases
 *   (topic-alias-out.ts), CONNACK's Shared Subscription Available, PUBCOMP 0x92;
 * - its delivery functions: a shared subscription's delivery (shared-subscriptions.ts) gets the member's
 *   QoS, a tag for redelivery, and for a persistent session a place in its stored queue.
 *
 * PUBCOMP 0x92 (Packet Identifier not found, §3.7.2.1): aedes answers every PUBREL with a PUBCOMP
 * 0x00; a PUBREL whose identifier has no stored QoS 2 message is noted where aedes looks it up
 * (`incomingGetPacket`) and its PUBCOMP carries 0x92 for an MQTT 5 client.
 */
import type { Duplex } from 'node:stream';
import type { Aedes, AedesPublishPacket, Client } from 'aedes';
import type { Logger } from '../logging.js';
import { lingerOnClose } from './linger.js';
import { OutboundFlow, RECEIVE_MAXIMUM_UNLIMITED } from './outbound-flow.js';
import { SharedSubscriptions, fromInternal, isInternal, isShared, parseShared, toInternal } from './shared-subscriptions.js';
import { TopicAliasesOut } from './topic-alias-out.js';
import { type WriteToStream, type WrittenPacket, interceptWrites } from './write-hook.js';

/** MQTT 5 reason codes used here. */
const REASON = { PROTOCOL_ERROR: 0x82, PACKET_IDENTIFIER_NOT_FOUND: 0x92, FAILURE_THRESHOLD: 0x80 } as const;

/** QoS 1/2 messages one connection may have waiting for a Receive Maximum slot. */
export const OUTBOUND_QUEUE_LIMIT = 1000;

/** Shared deliveries remembered per connection until their PUBLISH is written (a dropped one is forgotten). */
const TAG_WINDOW = 1024;

type Deliver = (packet: AedesPublishPacket, done: () => void) => void;

interface SharedTag {
  /** Internal name of the shared subscription. */
  name: string;
  /** The message as the group received it (redelivered as is). */
  packet: AedesPublishPacket;
}

interface DecodedPacket {
  cmd: string;
  protocolVersion?: number;
  messageId?: number;
  reasonCode?: number;
  properties?: { receiveMaximum?: number; topicAliasMaximum?: number };
  subscriptions?: { topic: string; qos: number; nl?: boolean; rh?: number }[];
  unsubscriptions?: string[];
}

interface ClientInternals {
  id: string;
  clean: boolean;
  version: number | null;
  conn: Duplex;
  connecting: boolean;
  connected: boolean;
  _parser?: NodeJS.EventEmitter;
  subscriptions: Record<string, { qos: number }>;
  deliver0: Deliver;
  deliverQoS: Deliver;
  disconnect(options: { reasonCode: number; properties?: { reasonString?: string } }, done?: () => void): void;
}

interface Store {
  incomingGetPacket(client: unknown, packet: { cmd: string; messageId?: number }): Promise<unknown>;
  outgoingEnqueue(sub: { clientId: string }, packet: unknown): Promise<void>;
}

/** Per connection. */
interface Connection {
  version: number;
  flow: OutboundFlow<SharedTag>;
  aliases: TopicAliasesOut | undefined;
  /** Shared deliveries not yet written, by message number. */
  tags: Map<number, SharedTag>;
  /** PUBRELs whose identifier had no stored QoS 2 message. */
  unknownPubrels: Set<number>;
}

export interface ConnectionExtensionsOptions {
  /** False in cluster mode: shared subscriptions are refused and announced as unavailable. */
  sharedSubscriptions: boolean;
  logger: Logger;
  queueLimit?: number;
}

export class ConnectionExtensions {
  readonly #aedes: Aedes;
  readonly #shared: SharedSubscriptions | undefined;
  readonly #logger: Logger;
  readonly #queueLimit: number;
  readonly #connections = new WeakMap<Client, Connection>();
  /** Messages a full flow-control queue kept from a client (status). */
  dropped = 0;

  constructor(aedes: Aedes, options: ConnectionExtensionsOptions) {
    this.#aedes = aedes;
    this.#logger = options.logger;
    this.#queueLimit = options.queueLimit ?? OUTBOUND_QUEUE_LIMIT;
    const internals = aedes as unknown as ConstructorParameters<typeof SharedSubscriptions>[0] & { persistence: Store };
    this.#shared = options.sharedSubscriptions ? new SharedSubscriptions(internals) : undefined;
    this.#notePubrelLookups(internals.persistence);
    aedes.on('clientDisconnect', (client) => this.#ended(client));
  }

  get sharedSubscriptions(): SharedSubscriptions | undefined {
    return this.#shared;
  }

  /**
   * aedes' authorizeSubscribe with shared names handled: the ACL sees `$share/<group>/<filter>` (and checks
   * the inner filter), aedes keeps the internal name; in cluster mode a 3.1.1 `$share/` SUBSCRIBE is refused
   * (MQTT 5 clients get 0x9E from aedes before this).
   */
  authorizeSubscribe<S extends { topic: string }>(
    authorize: (client: Client, sub: S, done: (error: Error | null, sub?: S | null) => void) => void,
  ): (client: Client, sub: S, done: (error: Error | null, sub?: S | null) => void) => void {
    return (client, sub, done) => {
      if (!this.#shared && isShared(sub.topic)) return done(null, null);
      if (!isInternal(sub.topic)) return authorize(client, sub, done);
      authorize(client, { ...sub, topic: fromInternal(sub.topic) }, (error, granted) => done(error, granted ? sub : granted));
    };
  }

  /** Right after aedes.handle(), before the client can subscribe, after the other delivery wrappers. */
  attach(client: Client): void {
    const internals = client as unknown as ClientInternals;
    const connection: Connection = {
      version: 4,
      flow: this.#flow(RECEIVE_MAXIMUM_UNLIMITED, internals),
      aliases: undefined,
      tags: new Map(),
      unknownPubrels: new Set(),
    };
    this.#connections.set(client, connection);
    this.#watchPackets(internals, connection);
    interceptWrites(internals.conn, (packet, write, stream, options) => this.#write(connection, packet, write, stream, options));
    if (this.#shared) this.#wrapDelivery(internals, connection, this.#shared);
  }

  #flow(receiveMaximum: number, client: ClientInternals): OutboundFlow<SharedTag> {
    let reported = false;
    return new OutboundFlow<SharedTag>({
      receiveMaximum,
      queueLimit: this.#queueLimit,
      onDropped: () => {
        this.dropped++;
        if (reported) return;
        reported = true; // once per connection: a stalled client would otherwise log every message
        this.#logger.info(
          { clientId: client.id, receiveMaximum, queueLimit: this.#queueLimit, persistent: !client.clean },
          'a client acknowledges too slowly: QoS 1/2 messages beyond its flow-control queue are not sent on this connection',
        );
      },
    });
  }

  #watchPackets(client: ClientInternals, connection: Connection): void {
    const parser = client._parser;
    const handlers = parser?.listeners('packet') as ((this: unknown, packet: DecodedPacket) => void)[] | undefined;
    if (!parser || !handlers || handlers.length !== 1) throw new Error('aedes client has no single mqtt-packet "packet" listener; aedes internals changed');
    const handle = handlers[0]!;
    let refused = false;
    const refuse = (why: string): void => {
      refused = true;
      this.#logger.info({ clientId: client.id }, `client disconnected: ${why}`);
      lingerOnClose(client.conn);
      const send = (): void => client.disconnect({ reasonCode: REASON.PROTOCOL_ERROR, properties: { reasonString: why } });
      if (client.connecting && !client.connected) (client as unknown as NodeJS.EventEmitter).once('connected', send);
      else send();
    };
    parser.removeAllListeners('packet');
    parser.on('packet', (packet: DecodedPacket) => {
      if (refused) return;
      switch (packet.cmd) {
        case 'connect':
          this.#connected(connection, client, packet);
          break;
        case 'subscribe': {
          const why = this.#shared ? renameShared(packet, connection.version) : undefined;
          if (why) return refuse(why);
          break;
        }
        case 'unsubscribe':
          if (this.#shared && packet.unsubscriptions) packet.unsubscriptions = packet.unsubscriptions.map((t) => (isShared(t) ? toInternal(t) : t));
          break;
        case 'puback':
        case 'pubcomp':
          connection.flow.acknowledged(packet.messageId!);
          break;
        case 'pubrec':
          if ((packet.reasonCode ?? 0) >= REASON.FAILURE_THRESHOLD) connection.flow.acknowledged(packet.messageId!);
          else connection.flow.received(packet.messageId!);
          break;
      }
      handle.call(parser, packet);
    });
  }

  #connected(connection: Connection, client: ClientInternals, packet: DecodedPacket): void {
    connection.version = packet.protocolVersion ?? 4;
    if (connection.version !== 5) return;
    const receiveMaximum = packet.properties?.receiveMaximum;
    if (receiveMaximum) connection.flow = this.#flow(receiveMaximum, client);
    const aliasMaximum = packet.properties?.topicAliasMaximum ?? 0;
    if (aliasMaximum > 0) connection.aliases = new TopicAliasesOut(aliasMaximum);
  }

  #write(connection: Connection, packet: WrittenPacket, write: WriteToStream, stream: Duplex, options: unknown): boolean {
    switch (packet.cmd) {
      case 'publish': {
        const aliases = connection.aliases;
        if (!packet.qos) return write(aliases ? aliases.apply(packet) : packet, stream, options);
        let tag: SharedTag | undefined;
        if (connection.tags.size > 0) {
          const counter = packet.brokerCounter as number | undefined;
          tag = counter === undefined ? undefined : connection.tags.get(counter);
          if (tag) connection.tags.delete(counter!);
        }
        if (connection.flow.passes(tag)) return write(aliases ? aliases.apply(packet) : packet, stream, options);
        return connection.flow.send(packet, tag, (out) => {
          if (stream.destroyed) return false;
          return write(aliases ? aliases.apply(out) : out, stream, options);
        });
      }
      case 'connack':
        if (this.#shared && packet.properties && connection.version === 5) packet.properties.sharedSubscriptionAvailable = true;
        return write(packet, stream, options);
      case 'pubcomp':
        if (connection.unknownPubrels.delete(packet.messageId!) && connection.version === 5) {
          return write({ ...packet, reasonCode: REASON.PACKET_IDENTIFIER_NOT_FOUND }, stream, options);
        }
        return write(packet, stream, options);
      default:
        return write(packet, stream, options);
    }
  }

  /**
   * Outermost delivery wrapper: for a delivery a shared subscription makes, the member's granted QoS, a
   * tag so an unacknowledged message can go to another member, and (persistent session) the message in
   * the session's stored queue first, as aedes does for ordinary subscriptions before delivering.
   */
  #wrapDelivery(client: ClientInternals, connection: Connection, shared: SharedSubscriptions): void {
    const store = (this.#aedes as unknown as { persistence: Store }).persistence;
    const wrap =
      (deliver: Deliver): Deliver =>
      (packet, done) => {
        const name = shared.dispatching;
        if (name === undefined) return deliver(packet, done);
        const granted = client.subscriptions[name]?.qos ?? 0;
        if (packet.qos > granted) packet.qos = granted as 0 | 1;
        if (packet.qos === 0) return deliver(packet, done);
        const counter = (packet as { brokerCounter?: number }).brokerCounter;
        if (counter !== undefined) {
          if (connection.tags.size >= TAG_WINDOW) connection.tags.delete(connection.tags.keys().next().value!);
          connection.tags.set(counter, { name, packet: packet });
        }
        if (client.clean) return deliver(packet, done);
        store.outgoingEnqueue({ clientId: client.id }, packet).then(
          () => deliver(packet, done),
          (error: unknown) => {
            this.#logger.warn({ clientId: client.id, err: error }, 'could not queue a shared-subscription message for a persistent session');
            done();
          },
        );
      };
    client.deliver0 = wrap(client.deliver0);
    client.deliverQoS = wrap(client.deliverQoS);
  }

  /** The session ended with a connection: a clean session's unacknowledged shared messages go to another member. */
  #ended(client: Client): void {
    const connection = this.#connections.get(client);
    if (!connection) return;
    this.#connections.delete(client);
    const left = connection.flow.close();
    if (!this.#shared || !(client as unknown as ClientInternals).clean) return;
    let moved = 0;
    for (const { tag } of left) if (tag && this.#shared.redeliver(tag.name, tag.packet)) moved++;
    if (moved > 0) this.#logger.debug({ clientId: client.id, moved }, 'shared-subscription messages moved to other members');
  }

  #notePubrelLookups(store: Store): void {
    const get = store.incomingGetPacket.bind(store);
    store.incomingGetPacket = (client, packet) => {
      const found = get(client, packet);
      if (packet.cmd === 'pubrel' && packet.messageId !== undefined) {
        const note = (): void => {
          this.#connections.get(client as Client)?.unknownPubrels.add(packet.messageId!);
        };
        found.then((stored) => stored || note(), note);
      }
      return found;
    };
  }
}

/** Renames the SUBSCRIBE's shared filters for aedes; returns why the SUBSCRIBE is a protocol error, if it is. */
function renameShared(packet: DecodedPacket, version: number): string | undefined {
  for (const sub of packet.subscriptions ?? []) {
    // U+0000 makes a packet malformed [MQTT-1.5.4-2]; it would also pass for an internal name here.
    if (isInternal(sub.topic)) return 'a topic filter must not contain U+0000';
    if (!isShared(sub.topic)) continue;
    if (!parseShared(sub.topic)) return `malformed shared subscription ${JSON.stringify(sub.topic)}`;
    if (version === 5 && sub.nl) return 'no local is not allowed on a shared subscription';
    sub.topic = toInternal(sub.topic);
    sub.rh = 2; // no retained messages on a shared subscribe
  }
  return undefined;
}
