/**
 * A TypeScript stand-in for the test client of Eclipse Paho's interoperability suite
 * (paho.mqtt.testing, interoperability/mqtt/clients/V5/main.py + internal.py and clients/V311/main.py),
 * so that the suite's test cases can be re-expressed step by step (see client-test5.ts and client-test311.ts).
 *
 * Like the original it writes raw packets on a plain TCP socket (here with mqtt-packet) and does nothing a
 * library client would do on its own: no topic-alias resolution, no keepalive pings, no retries; a second
 * CONNECT on the same socket, a wrong protocol name or a topic alias 0 go out as asked. Its "receiver"
 * answers the broker's QoS 1/2 flows as internal.py does (QoS 2 messages reach the callback on PUBREL,
 * an unexpected acknowledgement stops the receiver, a paused receiver drops incoming PUBLISHes).
 *
 * Where it differs, on purpose (harness timing only, never what a broker must do):
 * - CONNACK is awaited up to CONNACK_TIMEOUT_MS (the Python client gives up after 0.5 s, which a loaded
 *   machine misses).
 * - disconnect() keeps reading while it waits for in-flight exchanges to finish (the Python client stops
 *   its reader first, so an acknowledgement still on its way fails the test on timing alone).
 */
import net from 'node:net';
import mqttPacket, { type IConnackPacket, type Packet } from 'mqtt-packet';

export const CONNACK_TIMEOUT_MS = 5000;
/** One receive() waits this long for a packet, as the Python socket's 0.5 s timeout. */
export const RECEIVE_TIMEOUT_MS = 500;

export type Version = 4 | 5;
export type Properties = Record<string, unknown>;

export interface Message {
  topicName: string;
  payload: Buffer;
  qos: number;
  retained: boolean;
  msgid: number;
  properties: Properties;
}

export interface SubscribeOptions {
  qos: 0 | 1 | 2;
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
}

/** The test's Callbacks class: everything the receiver saw, in order. */
export class Callbacks {
  messages: Message[] = [];
  publisheds: number[] = [];
  subscribeds: [number, number[]][] = [];
  unsubscribeds: number[] = [];
  disconnects: { reasonCode: number; properties: Properties }[] = [];

  clear(): void {
    this.messages = [];
    this.publisheds = [];
    this.subscribeds = [];
    this.unsubscribeds = [];
    this.disconnects = [];
  }
}

export class SocketTimeout extends Error {
  constructor() {
    super('socket.timeout');
  }
}

/** A TCP socket that yields parsed MQTT packets one at a time (getPacket with a timeout). */
export class PacketSocket {
  readonly socket: net.Socket;
  readonly #queue: Packet[] = [];
  #waiter: (() => void) | undefined;
  closed = false;
  error: Error | undefined;

  private constructor(socket: net.Socket, version: Version) {
    this.socket = socket;
    this.#listen(version);
    socket.on('error', (error: Error) => {
      this.error ??= error;
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
  }

  static open(host: string, port: number, version: Version): Promise<PacketSocket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      socket.setNoDelay(true);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new PacketSocket(socket, version));
      });
    });
  }

  #listen(version: Version): void {
    const parser = mqttPacket.parser({ protocolVersion: version });
    parser.on('packet', (packet: Packet) => {
      if (TRACE) process.stderr.write(`[${this.socket.localPort}] in  ${describe(packet)}\n`);
      this.#queue.push(packet);
      this.#wake();
    });
    parser.on('error', (error: Error) => {
      this.error = error;
      this.socket.destroy();
    });
    this.socket.on('data', (chunk: Buffer) => parser.parse(chunk));
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }

  /** The next packet; null once the socket is closed and drained; SocketTimeout after `timeoutMs`. */
  async next(timeoutMs: number): Promise<Packet | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const packet = this.#queue.shift();
      if (packet) return packet;
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new SocketTimeout();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Writes a packet; a gone socket is ignored as the Python sendtosocket() does. */
  send(packet: Record<string, unknown>, version: Version): void {
    if (this.closed || this.socket.destroyed) return;
    if (TRACE) process.stderr.write(`[${this.socket.localPort}] out ${describe(packet as unknown as Packet)}\n`);
    this.socket.write(encode(packet, version));
  }

  /** Raw bytes, for what mqtt-packet would refuse to encode. */
  sendRaw(bytes: Buffer): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(bytes);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** INTEROP_TRACE=1 prints every packet in and out (stderr). */
const TRACE = process.env.INTEROP_TRACE === '1';

function describe(packet: Packet): string {
  const { cmd, ...rest } = packet as unknown as Record<string, unknown>;
  const shown = JSON.stringify(rest, (_k, v) => (v?.type === 'Buffer' ? `<${v.data.length} bytes>` : v));
  return `${String(cmd).toUpperCase()} ${shown.length > 240 ? `${shown.slice(0, 240)}...` : shown}`;
}

/**
 * mqtt-packet's encoding, except that it refuses a CONNECT with an empty client id and clean session/start
 * 0, which the suites send on purpose: that one is encoded with the flag set, then the flag is cleared.
 */
function encode(packet: Record<string, unknown>, version: Version): Buffer {
  const emptyIdKeepSession = packet.cmd === 'connect' && packet.clientId === '' && !packet.clean;
  const bytes = mqttPacket.generate({ ...packet, ...(emptyIdKeepSession ? { clean: true } : {}) } as unknown as Packet, {
    protocolVersion: version,
  });
  if (emptyIdKeepSession) {
    // fixed header byte, remaining length (1-4 bytes), protocol name (2 + n), level (1), then the flags
    let offset = 1;
    while ((bytes[offset++]! & 0x80) !== 0) {
      // continuation bytes of the remaining length
    }
    offset += 2 + bytes.readUInt16BE(offset) + 1;
    bytes[offset] = bytes[offset]! & ~0x02;
  }
  return bytes;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

type PublishPacket = Extract<Packet, { cmd: 'publish' }>;

/** internal.Receivers: answers the broker's flows and feeds the callback. */
export class Receiver {
  ps: PacketSocket | null;
  readonly version: Version;
  stopping = false;
  paused = false;
  running = false;
  readonly inMsgs = new Map<number, PublishPacket>();
  readonly outMsgs = new Map<number, { qos: number }>();

  constructor(ps: PacketSocket, version: Version) {
    this.ps = ps;
    this.version = version;
  }

  /**
   * One receive(): reads at most one packet (RECEIVE_TIMEOUT_MS) and handles it; throws what internal.py
   * raises. False once the socket is closed and drained (the Python thread ends on the socket error).
   */
  async receive(callback: Callbacks | null, timeoutMs = RECEIVE_TIMEOUT_MS): Promise<boolean> {
    const ps = this.ps;
    if (!ps) return false;
    let packet: Packet | null;
    try {
      packet = await ps.next(timeoutMs);
    } catch (error) {
      if (error instanceof SocketTimeout) return true;
      throw error;
    }
    if (packet === null) return false;
    this.handle(packet, callback);
    return true;
  }

  handle(packet: Packet, callback: Callbacks | null): void {
    const ps = this.ps!;
    const version = this.version;
    switch (packet.cmd) {
      case 'suback':
        callback?.subscribeds.push([packet.messageId ?? 0, [...(packet.granted as number[])]]);
        return;
      case 'unsuback':
        callback?.unsubscribeds.push(packet.messageId ?? 0);
        return;
      case 'puback': {
        const id = packet.messageId ?? 0;
        if (this.outMsgs.get(id)?.qos !== 1) throw new Error('No QoS 1 with that message id sent');
        this.outMsgs.delete(id);
        callback?.publisheds.push(id);
        return;
      }
      case 'pubrec': {
        const id = packet.messageId ?? 0;
        if (!this.outMsgs.has(id)) throw new Error(`PUBREC received for unknown msg id ${id}`);
        ps.send({ cmd: 'pubrel', messageId: id }, version);
        return;
      }
      case 'pubrel': {
        const id = packet.messageId ?? 0;
        const pub = this.inMsgs.get(id);
        if (!pub) return; // "what should we do here?" in the original: nothing
        callback?.messages.push(toMessage(pub, 2));
        this.inMsgs.delete(id);
        ps.send({ cmd: 'pubcomp', messageId: id }, version);
        return;
      }
      case 'pubcomp': {
        const id = packet.messageId ?? 0;
        if (!this.outMsgs.has(id)) throw new Error(`PUBCOMP received for unknown msg id ${id}`);
        this.outMsgs.delete(id);
        callback?.publisheds.push(id);
        return;
      }
      case 'publish': {
        if (this.paused) return;
        if (packet.qos === 0) {
          callback?.messages.push(toMessage(packet, 0));
        } else if (packet.qos === 1) {
          if (callback) {
            callback.messages.push(toMessage(packet, 1));
            ps.send({ cmd: 'puback', messageId: packet.messageId }, version);
          }
        } else {
          this.inMsgs.set(packet.messageId ?? 0, packet);
          ps.send({ cmd: 'pubrec', messageId: packet.messageId }, version);
        }
        return;
      }
      case 'disconnect':
        callback?.disconnects.push({ reasonCode: packet.reasonCode ?? 0, properties: (packet.properties ?? {}) as Properties });
        return;
      default:
        throw new Error(`Unexpected packet ${packet.cmd}`);
    }
  }

  /** The receiver thread: receive() until stopping, or until it raises (then it just ends, as the thread did). */
  async run(callback: Callbacks): Promise<void> {
    this.running = true;
    try {
      while (!this.stopping && (await this.receive(callback))) {
        // one packet at a time, as the thread did
      }
    } catch {
      // the thread ends
    } finally {
      this.running = false;
    }
  }
}

function toMessage(packet: PublishPacket, qos: number): Message {
  return {
    topicName: packet.topic,
    payload: Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload),
    qos,
    retained: Boolean(packet.retain),
    msgid: packet.messageId ?? 0,
    properties: (packet.properties ?? {}) as Properties,
  };
}

/** Paho's UserProperty list: [name, value] pairs in the order they came. */
export function userPropertyList(properties: Properties | undefined): [string, string][] {
  const pairs: [string, string][] = [];
  const user = (properties?.userProperties ?? {}) as Record<string, string | string[]>;
  for (const [key, value] of Object.entries(user)) {
    for (const one of Array.isArray(value) ? value : [value]) pairs.push([key, one]);
  }
  return pairs;
}

/** Paho keeps every Subscription Identifier of a PUBLISH in a list. */
export function subscriptionIdentifiers(properties: Properties | undefined): number[] {
  const ids = properties?.subscriptionIdentifier;
  if (ids === undefined) return [];
  return Array.isArray(ids) ? (ids as number[]) : [ids as number];
}

export interface ConnectOptions {
  host: string;
  port: number;
  /** cleanstart (MQTT 5) / cleansession (3.1.1). */
  clean?: boolean;
  keepalive?: number;
  newsocket?: boolean;
  protocolName?: string;
  willFlag?: boolean;
  willTopic?: string;
  willMessage?: Buffer;
  willQoS?: 0 | 1 | 2;
  willRetain?: boolean;
  properties?: Properties;
  willProperties?: Properties;
}

export interface Connack {
  reasonCode: number;
  sessionPresent: boolean;
  properties: Properties;
}

/** mqtt_client.Client: one client id, one socket at a time, a receiver per connection. */
export class Client {
  readonly clientid: string;
  readonly version: Version;
  msgid = 1;
  callback: Callbacks | null = null;
  #receiver: Receiver | null = null;
  sock: PacketSocket | null = null;
  clean = true;
  /** Every socket it opened, so a suite can close what a failed test left open. */
  static readonly opened = new Set<PacketSocket>();

  constructor(clientid: string, version: Version) {
    this.clientid = clientid;
    this.version = version;
  }

  registerCallback(callback: Callbacks): void {
    this.callback = callback;
  }

  getReceiver(): Receiver {
    if (!this.#receiver) throw new Error("'NoneType' object: no receiver");
    return this.#receiver;
  }

  #nextMsgid(): number {
    const receiver = this.getReceiver();
    const wrapped = () => (this.msgid + 1 === 65535 ? 1 : this.msgid + 1);
    this.msgid = wrapped();
    while (receiver.outMsgs.has(this.msgid)) this.msgid = wrapped();
    return this.msgid;
  }

  async connect(options: ConnectOptions): Promise<Connack> {
    const clean = options.clean ?? true;
    if (options.newsocket ?? true) {
      this.sock?.close();
      this.sock = await PacketSocket.open(options.host, options.port, this.version);
      Client.opened.add(this.sock);
    }
    const ps = this.sock!;
    const connect: Record<string, unknown> = {
      cmd: 'connect',
      protocolId: options.protocolName ?? 'MQTT',
      protocolVersion: this.version,
      clientId: this.clientid,
      clean,
      keepalive: options.keepalive ?? 0,
    };
    if (options.willFlag) {
      connect.will = {
        topic: options.willTopic,
        payload: options.willMessage ?? Buffer.alloc(0),
        qos: options.willQoS ?? 2,
        retain: options.willRetain ?? false,
        ...(options.willProperties ? { properties: options.willProperties } : {}),
      };
    }
    if (options.properties && this.version === 5) connect.properties = options.properties;
    ps.send(connect, this.version);
    let response: Packet | null;
    try {
      response = await ps.next(CONNACK_TIMEOUT_MS);
    } catch (error) {
      throw error instanceof SocketTimeout ? new Error('connect failed - no CONNACK (socket.timeout)') : error;
    }
    if (!response) throw new Error('connect failed - socket closed, no connack');
    if (response.cmd !== 'connack') throw new Error(`connect failed - ${response.cmd} instead of CONNACK`);
    const connack = response as IConnackPacket;
    const code = (this.version === 5 ? connack.reasonCode : connack.returnCode) ?? 0;
    this.clean = clean;
    if (code !== 0) throw new Error(`connect was refused with code ${code}`);
    if (!clean && this.#receiver) {
      this.#receiver.ps = ps;
    } else {
      this.#receiver = new Receiver(ps, this.version);
    }
    if (this.callback) void this.#receiver.run(this.callback);
    return { reasonCode: code, sessionPresent: Boolean(connack.sessionPresent), properties: (connack.properties ?? {}) as Properties };
  }

  subscribe(topics: string[], options: (SubscribeOptions | number)[], properties?: Properties): number {
    const messageId = this.#nextMsgid();
    const subscriptions = topics.map((topic, i) => {
      const option = options[i]!;
      const o: SubscribeOptions = typeof option === 'number' ? { qos: option as 0 | 1 | 2 } : option;
      return {
        topic,
        qos: o.qos,
        ...(this.version === 5 ? { nl: o.noLocal ?? false, rap: o.retainAsPublished ?? false, rh: o.retainHandling ?? 0 } : {}),
      };
    });
    this.sock!.send({ cmd: 'subscribe', messageId, subscriptions, ...(properties ? { properties } : {}) }, this.version);
    return messageId;
  }

  unsubscribe(topics: string[]): number {
    const messageId = this.#nextMsgid();
    this.sock!.send({ cmd: 'unsubscribe', messageId, unsubscriptions: topics }, this.version);
    return messageId;
  }

  publish(topic: string, payload: Buffer | string, qos: 0 | 1 | 2 = 0, retained = false, properties?: Properties): number {
    let messageId = 0;
    if (qos > 0) {
      messageId = this.#nextMsgid();
      this.getReceiver().outMsgs.set(messageId, { qos });
    }
    this.sock!.send(
      {
        cmd: 'publish',
        topic,
        payload: typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload,
        qos,
        retain: retained,
        dup: false,
        ...(qos > 0 ? { messageId } : {}),
        ...(properties && this.version === 5 ? { properties } : {}),
      },
      this.version,
    );
    return messageId;
  }

  /** Waits (up to 4 s) for this connection's exchanges to finish, sends DISCONNECT, closes the socket. */
  async disconnect(properties?: Properties): Promise<void> {
    const receiver = this.#receiver;
    if (receiver) {
      let count = 0;
      while ((receiver.inMsgs.size > 0 || receiver.outMsgs.size > 0) && !receiver.paused) {
        await sleep(200);
        if (++count === 20) break;
      }
      receiver.stopping = true;
      if (!receiver.paused) {
        if (receiver.inMsgs.size > 0) throw new Error(`disconnect: QoS 2 messages not released: ${[...receiver.inMsgs.keys()]}`);
        if (receiver.outMsgs.size > 0) throw new Error(`disconnect: publishes not acknowledged: ${[...receiver.outMsgs.keys()]}`);
      }
    }
    this.sock?.send({ cmd: 'disconnect', ...(properties && this.version === 5 ? { properties } : {}) }, this.version);
    await sleep(this.version === 5 ? 1100 : 100);
    if (this.version === 5 || this.clean) {
      this.#receiver = null;
    } else if (this.#receiver) {
      this.#receiver.ps = null;
    }
    this.sock?.close();
    if (this.#receiver) {
      while (this.#receiver.running) await sleep(100);
      this.#receiver.stopping = false;
    }
  }


  /** Drops the connection without DISCONNECT (the will is due). */
  terminate(): void {
    if (this.#receiver) this.#receiver.stopping = true;
    this.sock?.close();
    this.#receiver = null;
  }

  pause(): void {
    this.getReceiver().paused = true;
  }

  resume(): void {
    if (this.#receiver) this.#receiver.paused = false;
  }

  /** Closes every socket the suite opened; each receiver then ends. */
  static closeAll(): void {
    for (const ps of Client.opened) ps.close();
    Client.opened.clear();
  }
}
