/**
 * MQTT 5 flow control toward a client [MQTT-3.3.4-7..9]: a client says in CONNECT how many QoS 1/2
 * PUBLISH packets it is willing to have unacknowledged (Receive Maximum), and the broker must not send
 * more. aedes 2.0 beta records the value but sends regardless, so this sits at the point where packets
 * are written (write-hook.ts): a QoS 1/2 PUBLISH beyond the client's window waits in a queue, in order,
 * and goes out when a PUBACK, a PUBCOMP or a failing PUBREC (reason ≥ 0x80) frees a slot. Because the
 * gate is at the write, every way aedes sends a message is covered: live deliveries, retained messages
 * on subscribe, and a persistent session's queue replayed at reconnect.
 *
 * The queue is bounded (`queueLimit` per connection). A message that finds it full is not sent on this
 * connection: a clean session loses it (as mosquitto's `max_queued_messages` does); a persistent session
 * still has it in its stored queue, and gets it when it reconnects. Either way `onDropped` is told.
 *
 * The same bookkeeping tells shared subscriptions (shared-subscriptions.ts) which of their messages a
 * departing client never acknowledged: each tracked packet may carry a tag.
 */
import type { WrittenPacket } from './write-hook.js';

/** The Receive Maximum a client has when it names none (and the most message ids a client can have). */
export const RECEIVE_MAXIMUM_UNLIMITED = 65535;

interface Entry<Tag> {
  packet: WrittenPacket;
  tag: Tag | undefined;
}

export interface OutboundFlowOptions {
  /** The client's Receive Maximum (RECEIVE_MAXIMUM_UNLIMITED: no window to keep). */
  receiveMaximum: number;
  queueLimit: number;
  onDropped(packet: WrittenPacket): void;
}

export class OutboundFlow<Tag = unknown> {
  readonly #receiveMaximum: number;
  readonly #queueLimit: number;
  readonly #onDropped: OutboundFlowOptions['onDropped'];
  /** A window to keep (the client named a Receive Maximum below the protocol's limit). */
  readonly #windowed: boolean;
  /** Sent and not yet acknowledged, by packet identifier. Only tagged ones while no window is kept. */
  readonly #inFlight = new Map<number, Entry<Tag>>();
  readonly #queue: (Entry<Tag> & { write: (packet: WrittenPacket) => boolean })[] = [];
  #head = 0;
  #closed = false;

  constructor(options: OutboundFlowOptions) {
    this.#receiveMaximum = options.receiveMaximum;
    this.#queueLimit = options.queueLimit;
    this.#onDropped = options.onDropped;
    this.#windowed = options.receiveMaximum < RECEIVE_MAXIMUM_UNLIMITED;
  }

  /** QoS 1/2 PUBLISH packets waiting for a slot. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** True when a packet with this tag would be written at once and not tracked: the caller may skip send(). */
  passes(tag: Tag | undefined): boolean {
    return tag === undefined && !this.#windowed;
  }

  /**
   * A QoS 1/2 PUBLISH about to be written: written now through `write`, or queued. Returns what aedes'
   * write expects (false only when the socket asks to wait for 'drain').
   */
  send(packet: WrittenPacket, tag: Tag | undefined, write: (packet: WrittenPacket) => boolean): boolean {
    const id = packet.messageId;
    if (id === undefined || this.#closed) return write(packet);
    // A retransmission (DUP) of a packet already in flight keeps its slot.
    if (!this.#windowed || this.#inFlight.has(id)) {
      if (tag !== undefined || this.#windowed) this.#inFlight.set(id, { packet, tag });
      return write(packet);
    }
    if (this.#inFlight.size < this.#receiveMaximum && this.queued === 0) {
      this.#inFlight.set(id, { packet, tag });
      return write(packet);
    }
    if (this.queued >= this.#queueLimit) {
      this.#onDropped(packet);
      return true;
    }
    this.#queue.push({ packet, tag, write });
    return true;
  }

  /** PUBACK, PUBCOMP or a failing PUBREC for `messageId`: its slot is free. */
  acknowledged(messageId: number): void {
    if (!this.#inFlight.delete(messageId)) return;
    this.#drain();
  }

  /** A successful PUBREC: the client has the message (QoS 2), though its slot stays taken until PUBCOMP. */
  received(messageId: number): void {
    const entry = this.#inFlight.get(messageId);
    if (entry) entry.tag = undefined;
  }

  /** The connection ended: what was never acknowledged (in flight first, then queued), with its tag. */
  close(): Entry<Tag>[] {
    this.#closed = true;
    const left = [...this.#inFlight.values(), ...this.#queue.slice(this.#head)];
    this.#inFlight.clear();
    this.#queue.length = 0;
    this.#head = 0;
    return left.map(({ packet, tag }) => ({ packet, tag }));
  }

  #drain(): void {
    while (this.queued > 0 && this.#inFlight.size < this.#receiveMaximum) {
      const entry = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined as never;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue.splice(0, this.#head);
        this.#head = 0;
      }
      this.#inFlight.set(entry.packet.messageId!, { packet: entry.packet, tag: entry.tag });
      entry.write(entry.packet);
    }
  }
}
