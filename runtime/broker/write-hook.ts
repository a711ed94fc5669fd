/**
 * One place to see (and change) each packet the broker writes to a connection, just before it is
 * serialised: outbound flow control, broker → client topic aliases, CONNACK capabilities and PUBCOMP
 * reason codes (mqtt5-connection.ts) all need the packet as it goes out, not as aedes stored it.
 *
 * aedes writes every packet through mqtt-packet's `writeToStream(packet, client.conn, options)`, looked up
 * on the module's exports at each call (durable-acks.ts wraps the same function for PUBACKs; the two
 * wrappers compose in either order). Streams without a writer pass straight through.
 */
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';

export interface WrittenPacket {
  cmd: string;
  messageId?: number;
  qos?: number;
  topic?: string;
  reasonCode?: number;
  properties?: Record<string, unknown>;
  [key: string]: unknown;
}

export type WriteToStream = (packet: WrittenPacket, stream: Duplex, options?: unknown) => boolean;

/**
 * Decides what happens to one packet written to its stream; `write(packet, stream, options)` writes a packet
 * for real (passed through rather than bound in a closure: this runs for every packet the broker sends).
 */
export type StreamWriter = (packet: WrittenPacket, write: WriteToStream, stream: Duplex, options: unknown) => boolean;

const writers = new WeakMap<Duplex, StreamWriter>();
let installed = false;

function install(): void {
  if (installed) return;
  const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'));
  const mqttPacket = fromAedes('mqtt-packet') as { writeToStream: WriteToStream };
  const original = mqttPacket.writeToStream;
  if (typeof original !== 'function') throw new Error('mqtt-packet has no writeToStream; aedes internals changed');
  mqttPacket.writeToStream = function writeToStream(packet, stream, options) {
    const writer = writers.get(stream);
    if (!writer) return original(packet, stream, options);
    return writer(packet, original, stream, options);
  };
  installed = true;
}

/** Every packet aedes writes to `stream` from now on goes through `writer`. */
export function interceptWrites(stream: Duplex, writer: StreamWriter): void {
  install();
  writers.set(stream, writer);
}
