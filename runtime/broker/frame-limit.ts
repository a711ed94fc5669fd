/**
 * A byte bound on incoming MQTT packets. MQTT 3.1.1 lets a packet claim up to 256 MB and aedes' parser
 * (mqtt-packet) buffers a packet whole before handing it over, so without a bound one client could make
 * the broker hold 256 MB. The check runs as soon as the fixed header's Remaining Length is decoded, before
 * the body arrives; an oversized packet is a protocol error and closes the connection.
 *
 * aedes has no option for this, so it wraps the parser's length step. The test suite checks that the hook
 * is still in place, so an aedes/mqtt-packet upgrade that moves it fails loudly instead of silently.
 */
import type { Client } from 'aedes';

interface ParserInternals {
  packet: { length: number };
  _parseLength(): boolean;
  _emitError(error: Error): void;
}

/** Largest packet a PUBLISH with a payload of `maxPayload` bytes can need (topic and id included). */
export function frameLimitFor(maxPayload: number): number {
  return maxPayload + 2 + 65535 + 2;
}

/** The same bound as a whole packet (fixed header included): the Maximum Packet Size told to MQTT 5 clients. */
export function maximumPacketSizeFor(frameLimit: number): number {
  const lengthBytes = frameLimit < 128 ? 1 : frameLimit < 16_384 ? 2 : frameLimit < 2_097_152 ? 3 : 4;
  return 1 + lengthBytes + frameLimit;
}

export function limitIncomingPackets(client: Client, maxBytes: number): void {
  const parser = (client as unknown as { _parser?: ParserInternals })._parser;
  if (!parser || typeof parser._parseLength !== 'function' || typeof parser._emitError !== 'function') {
    throw new Error('aedes client has no mqtt-packet parser to bound; aedes internals changed');
  }
  const parseLength = parser._parseLength;
  const connected = client as unknown as { version: number | null };
  parser._parseLength = function boundedParseLength(this: ParserInternals): boolean {
    if (!parseLength.call(this)) return false;
    // An MQTT 5 client was told the limit (Maximum Packet Size in CONNACK) and aedes answers an oversized
    // packet with DISCONNECT 0x95 as soon as its header is read; before CONNECT, and for 3.1.1, it is this.
    if (this.packet.length > maxBytes && connected.version !== 5) {
      this._emitError(new Error(`packet of ${this.packet.length} bytes exceeds the broker limit of ${maxBytes}`));
      return false;
    }
    return true;
  };
}
