/**
 * PUBACK only once the message is stored. aedes (1.2 and the 2.0 beta alike) answers a QoS 1 PUBLISH with its PUBACK first and
 * only then publishes it (lib/handlers/publish.js): storing it as retained and queueing it for every
 * matching offline persistent session happen after the client was told the broker has it, so a crash in
 * between loses acknowledged messages. (QoS 2 is already in the right order: aedes stores and publishes
 * before its PUBREC.)
 *
 * aedes writes every packet through mqtt-packet's `writeToStream(packet, client.conn)`, looked up on the
 * module's exports at each call, and always calls `broker.publish(packet, client, done)` right after the
 * PUBACK's write has returned. So:
 *
 * - `writeToStream` is wrapped once: a PUBACK for a connection registered here is not written but
 *   counted as held for its packet identifier (other streams and packets pass straight through);
 * - an MQTT 5 PUBACK with a reason code (0x87: aedes refused the message and will not publish it) is
 *   written at once: there is nothing to store and no publish to wait for;
 * - `releaseAfterPublish`, called by the broker's publish wrapper, turns the held PUBACK of that client's
 *   packet into a callback that writes it once aedes' publish has called back (stored, queued and handed
 *   to the online subscribers), and drops it when the publish failed: the client then sends it again.
 *
 * The broker's stores commit with fsync before they resolve (group-commit.ts), so an acknowledged
 * message is on disk. A client's next packets wait as before: aedes reads its socket again only when
 * every packet of the last read is done, which now includes the store.
 */
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';

interface AckPacket {
  cmd: string;
  messageId?: number;
  /** MQTT 5: a PUBACK with a reason code other than success (0x87 not authorized, ...) is never held. */
  reasonCode?: number;
}

type WriteToStream = (packet: AckPacket, stream: Duplex, options?: unknown) => boolean;

interface MqttPacketModule {
  writeToStream: WriteToStream & { [HELD]?: true };
}

const HELD = Symbol.for('clawbox.durableAcks');

/** Per registered connection: how many PUBACKs are held, by packet identifier, and the write options (protocol version). */
interface Held {
  counts: Map<number, number>;
  options?: unknown;
}
const heldByStream = new WeakMap<Duplex, Held>();

/** Per connection: told the packet identifier of every PUBCOMP written to it (inbound-gate.ts). */
const ackWatchers = new WeakMap<Duplex, (messageId: number) => void>();

let realWrite: WriteToStream | undefined;

/** Wraps mqtt-packet's writeToStream as aedes resolves it; idempotent. */
function install(): WriteToStream {
  if (realWrite) return realWrite;
  const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'));
  const mqttPacket = fromAedes('mqtt-packet') as MqttPacketModule;
  const original = mqttPacket.writeToStream;
  if (typeof original !== 'function') throw new Error('mqtt-packet has no writeToStream; aedes internals changed');
  const wrapped = function writeToStream(packet: AckPacket, stream: Duplex, options?: unknown): boolean {
    if (packet.cmd === 'puback' && packet.messageId !== undefined && !packet.reasonCode) {
      const held = heldByStream.get(stream);
      if (held) {
        held.counts.set(packet.messageId, (held.counts.get(packet.messageId) ?? 0) + 1);
        held.options = options;
        return true;
      }
    }
    if (packet.cmd === 'pubcomp' && packet.messageId !== undefined) ackWatchers.get(stream)?.(packet.messageId);
    return original(packet, stream, options);
  } as MqttPacketModule['writeToStream'];
  wrapped[HELD] = true;
  mqttPacket.writeToStream = wrapped;
  realWrite = original;
  return original;
}

/** Holds this connection's PUBACKs until their message is stored. Call right after aedes.handle(stream). */
export function holdPubacks(stream: Duplex): void {
  install();
  heldByStream.set(stream, { counts: new Map() });
}

/** Calls `onComplete` with the packet identifier of each PUBCOMP written to this connection. */
export function watchAcks(stream: Duplex, onComplete: (messageId: number) => void): void {
  install();
  ackWatchers.set(stream, onComplete);
}

interface ClientLike {
  conn?: Duplex;
  connecting?: boolean;
  connected?: boolean;
}

type Done = (error?: Error) => void;

/**
 * For a QoS 1 PUBLISH from a client whose PUBACK is held: returns the callback to pass to aedes' publish
 * in place of `done`, which sends the PUBACK once the message is stored. Returns `done` unchanged for
 * everything else (QoS 0/2, the runtime's own publishes, wills).
 */
export function releaseAfterPublish(packet: { qos?: number; messageId?: number }, client: unknown, done: Done | undefined): Done | undefined {
  if (packet.qos !== 1 || packet.messageId === undefined || !client) return done;
  const { conn } = client as ClientLike;
  const held = conn && heldByStream.get(conn);
  const count = held?.counts.get(packet.messageId);
  if (!held || !count) return done;
  if (count === 1) held.counts.delete(packet.messageId);
  else held.counts.set(packet.messageId, count - 1);
  const messageId = packet.messageId;
  return (error?: Error) => {
    const c = client as ClientLike;
    // The check of aedes' own write(): nothing is written to a connection that has gone. (A client may
    // publish as soon as it has the CONNACK, while aedes still counts it as connecting.)
    if (!error && (c.connecting || c.connected)) realWrite!({ cmd: 'puback', messageId }, conn!, held.options);
    done?.(error);
  };
}
