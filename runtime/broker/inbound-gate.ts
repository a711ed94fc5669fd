/**
 * Every decoded packet of a client passes here before aedes handles it. Two rules aedes (2.0 beta) does
 * not enforce:
 *
 * - Receive Maximum toward the broker: MQTT 5 clients read it in CONNACK, and one that has more QoS 2
 *   PUBLISH packets in flight (sent, not yet completed by PUBCOMP) is disconnected with reason 0x93
 *   [MQTT-3.3.4-9]. An MQTT 3.1.1 client gets the same bound and its connection is closed (no reason code
 *   in 3.1.1). This is what keeps the inbound QoS 2 dedup store bounded (GHSA-5jvp-3p2v-5qgf, which aedes
 *   1.2 fixed with `maxInflightInbound` and the 2.0 beta lost): a client that keeps sending new message
 *   ids without PUBREL would otherwise grow it to 65535 entries per session. QoS 1 is not counted: the
 *   broker answers it without waiting for the client, and reads a client's next packets only once those
 *   of its last read are acknowledged, so a client cannot pile them up (and common clients, mqtt.js among
 *   them, do not honour the server's Receive Maximum for QoS 1). A message id already in flight (a DUP
 *   retransmission) does not take a second slot; PUBCOMPs are seen where they are written
 *   (durable-acks.ts `watchAcks`).
 * - AUTH: clawbox has no enhanced authentication (a CONNECT asking for it gets CONNACK 0x8C from aedes),
 *   so an AUTH packet after CONNECT is a protocol error: DISCONNECT 0x82 [MQTT-4.12.0-6]; aedes would
 *   just drop the connection without saying why.
 */
import type { Duplex } from 'node:stream';
import type { Client } from 'aedes';
import { watchAcks } from './durable-acks.js';
import { lingerOnClose } from './linger.js';

/** MQTT 5 reason codes used here. */
export const REASON = { PROTOCOL_ERROR: 0x82, RECEIVE_MAXIMUM_EXCEEDED: 0x93 } as const;

interface DecodedPacket {
  cmd: string;
  qos?: number;
  messageId?: number;
}

interface ClientInternals {
  _parser?: NodeJS.EventEmitter;
  conn: Duplex;
  connecting: boolean;
  connected: boolean;
  disconnect(options: { reasonCode: number; properties?: { reasonString?: string } }, done?: () => void): void;
}

export interface InboundGateOptions {
  receiveMaximum: number;
  /** Told why a client was disconnected here (for the log). */
  onRefused(client: Client, why: string): void;
}

export function gateInboundPackets(client: Client, options: InboundGateOptions): void {
  const internals = client as unknown as ClientInternals;
  const parser = internals._parser;
  const handlers = parser?.listeners('packet') as ((this: unknown, packet: DecodedPacket) => void)[] | undefined;
  if (!parser || !handlers || handlers.length !== 1) throw new Error('aedes client has no single mqtt-packet "packet" listener; aedes internals changed');
  const handle = handlers[0]!;
  const { receiveMaximum } = options;
  const inFlight = new Set<number>();
  let refused = false;
  const refuse = (reasonCode: number, why: string): void => {
    refused = true;
    options.onRefused(client, why);
    // v5: DISCONNECT with the reason, then close; aedes sends no DISCONNECT to a 3.1.1 client, only closes.
    // Closed with a FIN, not a reset, so the client can read the DISCONNECT (linger.ts).
    lingerOnClose(internals.conn);
    const send = (): void => internals.disconnect({ reasonCode, properties: { reasonString: why } });
    // A client may send right after its CONNACK, before aedes counts it as connected (and would only close).
    if (internals.connecting && !internals.connected) (client as unknown as NodeJS.EventEmitter).once('connected', send);
    else send();
  };
  watchAcks(internals.conn, (messageId) => inFlight.delete(messageId));
  parser.removeAllListeners('packet');
  parser.on('packet', function admit(this: unknown, packet: DecodedPacket) {
    if (refused) return;
    if (packet.cmd === 'publish' && packet.qos === 2 && packet.messageId !== undefined && !inFlight.has(packet.messageId)) {
      if (inFlight.size >= receiveMaximum) {
        refuse(REASON.RECEIVE_MAXIMUM_EXCEEDED, `more than ${receiveMaximum} QoS 2 messages in flight`);
        return;
      }
      inFlight.add(packet.messageId);
    } else if (packet.cmd === 'auth') {
      refuse(REASON.PROTOCOL_ERROR, 'enhanced authentication (AUTH) is not supported');
      return;
    }
    handle.call(this, packet);
  });
}
