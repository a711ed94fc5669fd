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
 *   to the online subscribers) and the store has committed what it queued (`synced`), and drops it when
 *   the publish failed: the client then sends it again.
 *
 * The store queues the writes of retained messages and session queues and resolves at once
 * (group-commit.ts): aedes goes on with the client's next packets while the disk syncs, and the PUBACK
 * goes out after the commit with fsync, so an acknowledged message is on disk. A commit that fails
 * closes the connection without the PUBACK: the client sends the message again when it reconnects.
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

/** Resolves once what the store queued for this publish is committed; undefined when nothing waits. */
export type Synced = (packet: { payload?: unknown }) => Promise<void> | undefined;

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
 * Returns the callback to pass to aedes' publish in place of `done`:
 * - for a QoS 1 PUBLISH from a client whose PUBACK is held: one that sends the PUBACK once the message is
 *   stored and `synced` (the store's commit) has resolved, while `done` lets aedes go on at once;
 * - for the runtime's own publishes, wills and QoS 2 (whose PUBREC aedes writes in `done`): `done`, once
 *   `synced` has resolved, since for them `done` is what says "stored";
 * - `done` unchanged for QoS 0 from clients.
 */
export function releaseAfterPublish(
  packet: { qos?: number; messageId?: number; payload?: unknown },
  client: unknown,
  done: Done | undefined,
  synced?: Synced,
): Done | undefined {
  if (!client || packet.qos === 2) return synced && done ? afterCommit(done, () => synced(packet)) : done;
  if (packet.qos !== 1 || packet.messageId === undefined) return done;
  const { conn } = client as ClientLike;
  const held = conn && heldByStream.get(conn);
  const count = held?.counts.get(packet.messageId);
  if (!held || !count) return done;
  if (count === 1) held.counts.delete(packet.messageId);
  else held.counts.set(packet.messageId, count - 1);
  const messageId = packet.messageId;
  const c = client as ClientLike;
  const writePuback = (): void => {
    // The check of aedes' own write(): nothing is written to a connection that has gone. (A client may
    // publish as soon as it has the CONNACK, while aedes still counts it as connecting.)
    if (c.connecting || c.connected) realWrite!({ cmd: 'puback', messageId }, conn!, held.options);
  };
  return (error?: Error) => {
    const commit = error ? undefined : synced?.(packet);
    if (!error && !commit) writePuback();
    done?.(error);
    // aedes may read the client's next packets meanwhile; PUBACKs keep their order (commits end in order).
    commit?.then(writePuback, (failure: Error) => conn!.destroy(failure));
  };
}

/** `done` once the store has committed what it queued (at once when nothing waits); a failed commit is its error. */
function afterCommit(done: Done, synced: () => Promise<void> | undefined): Done {
  return (error?: Error) => {
    const commit = error ? undefined : synced();
    if (commit) commit.then(() => done(), done);
    else done(error);
  };
}
