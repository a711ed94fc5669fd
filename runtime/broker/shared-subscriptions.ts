/**
 * Shared subscriptions (MQTT 5 §4.8.2, also offered to MQTT 3.1.1 clients as mosquitto does):
 * `$share/<group>/<filter>`. Every message matching `<filter>` goes to exactly one member of each group,
 * in turn (round-robin); ordinary subscribers still get every message.
 *
 * aedes 2.0 beta refuses `$share/` with 0x9E, so the broker renames a shared filter before aedes sees
 * the SUBSCRIBE or UNSUBSCRIBE (`toInternal`: a prefix no client can send, U+0000 being forbidden in MQTT
 * strings) and aedes handles it as any subscription — SUBACK, persistence of the session's subscriptions,
 * restore at reconnect, removal at close — up to the point where it registers the listener:
 * `aedes.subscribe`/`unsubscribe` for an internal name land here instead of in mqemitter. Here each
 * (group, filter) has one mqemitter listener on the real filter that hands each message to the next
 * member's delivery function.
 *
 * - No retained messages on a shared subscribe (§4.8.2): the subscription gets Retain Handling 2.
 * - No Local on a shared subscription is a protocol error [MQTT-3.8.3-4]; so is a malformed share name
 *   (empty group, a wildcard in the group, no filter) [MQTT-4.8.2-1, -2]: DISCONNECT 0x82.
 * - The member's own granted QoS caps the delivery (the broker's QoS check only knows ordinary filters);
 *   a wildcard filter never matches `$` topics [MQTT-4.7.2-1].
 * - ACLs are checked on the inner filter (acl.ts `unshared`); `fromInternal` gives the name back.
 * - A member whose session ends with messages it never acknowledged (sent and waiting, or held by flow
 *   control): those go to another member of the group (§4.8.2, a SHOULD); a message refused with a
 *   reason ≥ 0x80 is not re-sent [MQTT-4.8.2-6]. A persistent member keeps them in its session.
 * - Members are the connected clients: a group whose members are all offline gets nothing for that
 *   time (their persistent sessions keep the subscription, not the messages).
 * - Single node only: in cluster mode every replica sees each message, so the broker announces
 *   Shared Subscription Available = 0 and refuses `$share/` (MQTT 5: 0x9E, 3.1.1: 0x80).
 */
import type { AedesPublishPacket } from 'aedes';

export const SHARE_PREFIX = '$share/';
/** What aedes sees in place of `$share/`: U+0000 must not appear in a client's topic filter [MQTT-1.5.4-2] (refused in connection-extensions.ts). */
const INTERNAL_PREFIX = '\u0000share/';

type Deliver = (packet: AedesPublishPacket, done: () => void) => void;

export interface SharedName {
  group: string;
  filter: string;
}

/** `$share/<group>/<filter>` split; null when `name` is a share name that is malformed. */
export function parseShared(name: string): SharedName | null {
  const slash = name.indexOf('/', SHARE_PREFIX.length);
  if (slash < 0) return null;
  const group = name.slice(SHARE_PREFIX.length, slash);
  const filter = name.slice(slash + 1);
  if (!group || /[+#]/.test(group) || !filter) return null;
  return { group, filter };
}

export function isShared(name: string): boolean {
  return name.startsWith(SHARE_PREFIX);
}

export function isInternal(name: string): boolean {
  return name.startsWith(INTERNAL_PREFIX);
}

export function toInternal(name: string): string {
  return INTERNAL_PREFIX + name.slice(SHARE_PREFIX.length);
}

/** The client's own name (`$share/...`) for an internal one; other names unchanged. */
export function fromInternal(name: string): string {
  return isInternal(name) ? SHARE_PREFIX + name.slice(INTERNAL_PREFIX.length) : name;
}

interface Group {
  filter: string;
  members: Deliver[];
  next: number;
  listener: Deliver;
}

interface Emitter {
  on(topic: string, listener: Deliver, done?: () => void): void;
  removeListener(topic: string, listener: Deliver, done?: () => void): void;
}

type SubscribeFn = (topic: string, func: Deliver, done?: (error?: Error) => void) => void;

export class SharedSubscriptions {
  readonly #mq: Emitter;
  /** By internal name (group and filter). */
  readonly #groups = new Map<string, Group>();
  /** The internal name of the shared subscription a delivery is being made for, while it is made (synchronously). */
  #dispatching: string | undefined;

  /** Takes over `aedes.subscribe`/`unsubscribe` for internal names. */
  constructor(aedes: { mq: Emitter; subscribe: SubscribeFn; unsubscribe: SubscribeFn }) {
    this.#mq = aedes.mq;
    const subscribe = aedes.subscribe.bind(aedes);
    const unsubscribe = aedes.unsubscribe.bind(aedes);
    aedes.subscribe = (topic, func, done) => (isInternal(topic) ? this.#add(topic, func, done) : subscribe(topic, func, done));
    aedes.unsubscribe = (topic, func, done) => (isInternal(topic) ? this.#remove(topic, func, done) : unsubscribe(topic, func, done));
  }

  /** Called by a client's delivery function: the shared subscription (internal name) this delivery is for, if any. */
  get dispatching(): string | undefined {
    return this.#dispatching;
  }

  /** How many groups exist and how many members they have (status, tests). */
  counts(): { groups: number; members: number } {
    let members = 0;
    for (const group of this.#groups.values()) members += group.members.length;
    return { groups: this.#groups.size, members };
  }

  /** Gives a message to the next member of the group (a departed member's unacknowledged one). False when none is left. */
  redeliver(internalName: string, packet: AedesPublishPacket): boolean {
    const group = this.#groups.get(internalName);
    if (!group) return false;
    this.#deliver(internalName, group, packet, () => {});
    return true;
  }

  #add(name: string, func: Deliver, done?: (error?: Error) => void): void {
    const existing = this.#groups.get(name);
    if (existing) {
      existing.members.push(func);
      if (done) setImmediate(done);
      return;
    }
    const inner = parseShared(fromInternal(name));
    if (!inner) {
      done?.(new Error(`malformed shared subscription ${JSON.stringify(fromInternal(name))}`));
      return;
    }
    const wildcardFirst = inner.filter.charCodeAt(0) === 35 /* # */ || inner.filter.charCodeAt(0) === 43; /* + */
    const group: Group = {
      filter: inner.filter,
      members: [func],
      next: 0,
      listener: (packet, cb) => {
        if (wildcardFirst && packet.topic.charCodeAt(0) === 36 /* $ */) cb();
        else this.#deliver(name, group, packet, cb);
      },
    };
    this.#groups.set(name, group);
    this.#mq.on(inner.filter, group.listener, done as () => void);
  }

  #remove(name: string, func: Deliver, done?: (error?: Error) => void): void {
    const group = this.#groups.get(name);
    const index = group ? group.members.indexOf(func) : -1;
    if (!group || index < 0) {
      if (done) setImmediate(done);
      return;
    }
    group.members.splice(index, 1);
    if (group.next > index) group.next--;
    if (group.members.length > 0) {
      if (done) setImmediate(done);
      return;
    }
    this.#groups.delete(name);
    this.#mq.removeListener(group.filter, group.listener, done as () => void);
  }

  #deliver(name: string, group: Group, packet: AedesPublishPacket, done: () => void): void {
    if (group.members.length === 0) {
      done();
      return;
    }
    if (group.next >= group.members.length) group.next = 0;
    const member = group.members[group.next++]!;
    const outer = this.#dispatching;
    this.#dispatching = name;
    try {
      member(packet, done);
    } finally {
      this.#dispatching = outer;
    }
  }
}
