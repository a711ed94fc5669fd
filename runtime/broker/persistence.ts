/**
 * Where the broker keeps retained messages, persistent sessions, queued QoS 1/2 messages and wills.
 *
 * aedes-persistence-level on LevelDB: maintained by the aedes team, supports aedes 1.x's async interface
 * (including cleanIncoming) and is embedded (no Redis/Mongo service on a small box). Its database handle
 * is a GroupCommitDb (group-commit.ts): each write resolves once it is fsynced, in batches, so what the
 * broker acknowledges survives kill -9 and power loss. Without persistence, aedes' in-memory default is
 * used (nothing survives a restart).
 *
 * Retained messages and the queues of persistent sessions (`retained:`, `outgoing:`, `outgoing-id:`) are
 * deferred writes: aedes goes on once they are queued, and the broker holds each acknowledgement until
 * `synced()` (durable-acks.ts). Subscriptions, wills, QoS 2 state and clawbox's session records resolve
 * only once committed, as a SUBACK or CONNACK promises them.
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import levelPersistence from 'aedes-persistence-level';
import { Level } from 'level';
import { ClawboxError } from '../errors.js';
import { GroupCommitDb } from './group-commit.js';
import type { SessionExpiryStore } from './session-expiry.js';
import { type SessionOwnerStore, memorySessionOwners } from './session-owners.js';
import { type SessionRegistry, memorySessions } from './session-present.js';

export interface BrokerPersistence {
  /** Passed to aedes as `persistence`; undefined means aedes' in-memory default. */
  readonly aedesPersistence: unknown;
  readonly kind: 'level' | 'memory' | 'redis';
  /** Which persistent sessions exist (session-present.ts). */
  readonly sessions: SessionRegistry;
  /** Whose they are (session-owners.ts), so that a person's erasure finds them. */
  readonly sessionOwners: SessionOwnerStore;
  /** MQTT 5 session deadlines that must survive a restart (session-expiry.ts); none where nothing does. */
  readonly sessionExpiry?: SessionExpiryStore;
  /**
   * For a publish that queued deferred writes (retained, queued for a persistent session): resolves once
   * they are committed (group-commit.ts). Undefined when that publish has nothing to wait for. Absent for
   * stores whose writes resolve only once done.
   */
  synced?(packet: { payload?: unknown }): Promise<void> | undefined;
  /**
   * Marks the next retained message published with this payload Buffer as one its publisher keeps durable
   * itself and publishes again at every start: it is stored write-behind (group-commit.ts), and its publish
   * does not wait for the store. Absent where the store has no such mode (the message is stored as usual).
   */
  storeBehind?(payload: Buffer): void;
  /**
   * Rewrites the store so that deleted records leave the disk too (LevelDB keeps them in its log and
   * tables until a compaction): after a person's erasure. Absent where there is nothing to rewrite.
   */
  compact?(): Promise<void>;
  close(): Promise<void>;
}

/** Session records live beside aedes-persistence-level's keys (`retained:`, `subscriptions:`, ...). */
const SESSION_PREFIX = 'clawbox-session:';

function levelSessions(db: GroupCommitDb): SessionRegistry {
  const key = (id: string): string => `${SESSION_PREFIX}${encodeURIComponent(id)}`;
  return {
    has: async (id) => (await db.get(key(id))) !== undefined,
    add: (id) => db.put(key(id), '1'),
    remove: (id) => db.del(key(id)),
  };
}

/**
 * JSON records of clawbox's own about sessions, one per client id under a key prefix: expiry deadlines
 * (session-expiry.ts) and owners (session-owners.ts). A damaged record is skipped when listed.
 */
function levelRecords<T extends { clientId: string }>(db: GroupCommitDb, prefix: string, valid: (entry: Record<string, unknown>) => boolean) {
  const key = (id: string): string => `${prefix}${encodeURIComponent(id)}`;
  return {
    put: (record: T): Promise<void> => db.put(key(record.clientId), JSON.stringify(record)),
    remove: (id: string): Promise<void> => db.del(key(id)),
    list: async (): Promise<T[]> => {
      const out: T[] = [];
      for await (const value of db.values({ gt: prefix, lt: `${prefix}\xff`, valueEncoding: 'utf8' })) {
        try {
          const entry = JSON.parse(String(value)) as Record<string, unknown>;
          if (typeof entry.clientId === 'string' && valid(entry)) out.push(entry as T);
        } catch {
          // Skipped: a session without its deadline does not expire by itself, one without its owner is not
          // found by that person's erasure; both still end as sessions do.
        }
      }
      return out;
    },
  };
}

function levelSessionExpiry(db: GroupCommitDb): SessionExpiryStore {
  const records = levelRecords<{ clientId: string; expiresAt: number }>(db, 'clawbox-session-expiry:', (entry) => typeof entry.expiresAt === 'number');
  return { set: (clientId, expiresAt) => records.put({ clientId, expiresAt }), remove: records.remove, list: records.list };
}

function levelSessionOwners(db: GroupCommitDb): SessionOwnerStore {
  const records = levelRecords<{ clientId: string; owner: string }>(db, 'clawbox-session-owner:', (entry) => typeof entry.owner === 'string');
  return { set: (clientId, owner) => records.put({ clientId, owner }), remove: records.remove, list: records.list };
}

export async function openPersistence(stateDir: string, enabled: boolean): Promise<BrokerPersistence> {
  if (!enabled) return { aedesPersistence: undefined, kind: 'memory', sessions: memorySessions(), sessionOwners: memorySessionOwners(), close: async () => {} };
  const dir = path.join(stateDir, 'broker');
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new ClawboxError('STATE_UNWRITABLE', `cannot create the broker state directory ${dir}: ${(error as Error).message}`, { dir }, { cause: error });
  }
  const db = new Level<string, Buffer | string>(dir);
  try {
    await db.open();
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    const why =
      cause?.code === 'LEVEL_LOCKED'
        ? 'it is locked by another process (is clawbox already running with this state directory?)'
        : (error as Error).message;
    throw new ClawboxError('STATE_UNWRITABLE', `cannot open the broker state in ${dir}: ${why}`, { dir }, { cause: error });
  }
  const committed = new GroupCommitDb(db, { deferrable: isMessageKey });
  const encodeValue = encodeFromBufferPool();
  const persistence = levelPersistence(committed);
  const behind = new WeakSet<object>();
  const storing = markStoringPublishes(persistence as unknown as MessageStore, (packet, store) => {
    if (!behind.delete(packet.payload as object)) return undefined;
    // An empty payload deletes the retained message: the store's own path.
    if ((packet.payload as Buffer).length === 0) return committed.writeBehind(store);
    // What aedes-persistence-level's storeRetained writes (the packet, msgpack-encoded, under its key), but
    // encoded only if it is still the topic's last message when its commit comes: a device publishing
    // states many times a second is encoded about once a commit instead of once a state.
    const copy = { ...packet };
    committed.putBehind(`${RETAINED_PREFIX}${(packet as { topic: string }).topic}`, () => encodeValue(copy), { valueEncoding: 'buffer' });
    return Promise.resolve();
  });
  return {
    aedesPersistence: persistence,
    kind: 'level',
    sessions: levelSessions(committed),
    sessionOwners: levelSessionOwners(committed),
    sessionExpiry: levelSessionExpiry(committed),
    synced: (packet) => (storing.has(packet.payload as object) ? committed.synced() : undefined),
    storeBehind: (payload) => behind.add(payload),
    compact: async () => {
      await committed.synced();
      const [first] = await db.keys({ limit: 1 }).all();
      const [last] = await db.keys({ limit: 1, reverse: true }).all();
      // classic-level's (the `level` package's Node backend); its browser-neutral type leaves it out.
      const compactRange = (db as unknown as { compactRange(start: string, end: string): Promise<void> }).compactRange.bind(db);
      if (first !== undefined && last !== undefined) await compactRange(first, last);
    },
    // destroy() commits what is queued and closes the LevelDB, releasing its lock so that a restart in
    // the same process can reopen it.
    close: () => persistence.destroy(),
  };
}

/** Where encodeFromBufferPool's encoder starts each value; msgpack-lite's own start is 2 KB, so this also says it is in place. */
const POOLED_START_BYTES = 512;

/**
 * aedes-persistence-level encodes every stored packet with msgpack-lite, whose encoder starts each value
 * in a fresh zero-filled 2 KB buffer from the deprecated `new Buffer(size)` (for the first 10,000 calls
 * of a process a stack walk each, for its deprecation check; then an ArrayBuffer of its own): three of
 * them per message queued for a persistent session, the largest allocation cost in that path's profile.
 * Here it starts in a 512-byte slice of Node's buffer pool (a larger value grows it as before); the
 * encoder only ever returns the bytes it wrote, so the memory need not be zeroed, and a stored value pins
 * at most its 512 bytes instead of 2 KB. The encoder's class is reached through the package's exported
 * `Encoder` (built on it), not by its file: the OS image joins msgpack-lite into one file
 * (bin/flatten-packages.js). Idempotent. Returns the encoder, for values written here in the store's own
 * format.
 */
export function encodeFromBufferPool(): (value: unknown) => Buffer {
  const fromPersistence = createRequire(createRequire(import.meta.url).resolve('aedes-persistence-level'));
  const { encode, Encoder } = fromPersistence('msgpack-lite') as { encode: (value: unknown) => Buffer; Encoder: { prototype: object } };
  const encodeBuffer = Object.getPrototypeOf(Encoder.prototype) as { bufferish: object; minBufferSize: number };
  if (encodeBuffer.minBufferSize === POOLED_START_BYTES) return encode;
  encodeBuffer.bufferish = Object.assign(Object.create(encodeBuffer.bufferish) as object, { alloc: (size: number) => Buffer.allocUnsafe(size) });
  encodeBuffer.minBufferSize = POOLED_START_BYTES;
  return encode;
}

/** aedes-persistence-level's key prefix of retained messages (`retained:<topic>`). */
const RETAINED_PREFIX = 'retained:';

/** aedes-persistence-level's keys of retained messages and of queued messages (`outgoing:`, `outgoing-id:`). */
function isMessageKey(key: string): boolean {
  return key.startsWith(RETAINED_PREFIX) || key.startsWith('outgoing');
}

interface MessageStore {
  storeRetained(packet: { payload?: unknown }): Promise<unknown>;
  outgoingEnqueueCombi(subs: unknown[] | undefined, packet: { payload?: unknown }): Promise<unknown>;
}

/**
 * Which publishes queued a message write, so that only their acknowledgement waits for the commit (an
 * unrelated PUBACK does not wait for another client's retained message). Keyed by the payload Buffer:
 * aedes copies the publish into its own packet object but keeps the payload by reference. A payload
 * Buffer shared by several publishes only makes the others wait needlessly.
 *
 * `storeBehind(packet, store)` may store a retained message itself (write-behind): it returns the store's
 * promise, or undefined to leave the message to the usual path. One it stores is not marked: nothing
 * waits for its commit.
 */
function markStoringPublishes(
  store: MessageStore,
  storeBehind: (packet: { payload?: unknown }, store: () => Promise<unknown>) => Promise<unknown> | undefined,
): WeakSet<object> {
  const storing = new WeakSet<object>();
  const mark = (packet: { payload?: unknown }): void => {
    if (typeof packet.payload === 'object' && packet.payload !== null) storing.add(packet.payload);
  };
  const storeRetained = store.storeRetained.bind(store);
  const enqueue = store.outgoingEnqueueCombi.bind(store);
  if (typeof storeRetained !== 'function' || typeof enqueue !== 'function') {
    throw new Error('aedes persistence has no storeRetained/outgoingEnqueueCombi; aedes-persistence-level changed');
  }
  store.storeRetained = (packet) => {
    const stored = storeBehind(packet, () => storeRetained(packet));
    if (stored) return stored;
    mark(packet);
    return storeRetained(packet);
  };
  store.outgoingEnqueueCombi = (subs, packet) => {
    if (subs && subs.length > 0) mark(packet);
    return enqueue(subs, packet);
  };
  return storing;
}

interface AckStore {
  outgoingClearMessageId(client: { clean?: boolean }, packet: { cmd?: string }): Promise<unknown>;
}

/**
 * aedes looks every PUBACK/PUBCOMP up in the store, also for clean sessions, whose in-flight messages it
 * never stores (it already skips the store for their PUBREC). On LevelDB that is a read per QoS 1 message,
 * the largest single cost in the broker's QoS 1 profile. For clean sessions the answer is known: nothing.
 */
export function skipCleanSessionAckLookups(aedesInstance: unknown): void {
  const store = (aedesInstance as { persistence?: AckStore }).persistence;
  if (!store || typeof store.outgoingClearMessageId !== 'function') {
    throw new Error('aedes persistence has no outgoingClearMessageId; aedes internals changed');
  }
  const clear = store.outgoingClearMessageId.bind(store);
  // Only acknowledgements: the same call also clears a previous persistent session's leftovers when a
  // client comes back with a clean session, and that must still reach the store.
  store.outgoingClearMessageId = (client, packet) =>
    client.clean === true && (packet.cmd === 'puback' || packet.cmd === 'pubcomp') ? Promise.resolve(undefined) : clear(client, packet);
}

type StreamFactory = (...args: unknown[]) => NodeJS.ReadableStream;

/**
 * aedes pipes the retained-message stream of a SUBSCRIBE without an error handler. If the broker stops
 * while such a read is in flight, LevelDB is closed under it and the stream's error would be an uncaught
 * exception that kills the process during a clean shutdown. The error is harmless then; log it instead.
 */
export function guardStoreStreams(aedesInstance: unknown, onError: (error: Error) => void): void {
  const store = (aedesInstance as { persistence?: Record<string, unknown> }).persistence;
  for (const name of ['createRetainedStream', 'createRetainedStreamCombi']) {
    const original = store?.[name];
    if (typeof original !== 'function') throw new Error(`aedes persistence has no ${name}; aedes internals changed`);
    const factory = (original as StreamFactory).bind(store);
    store![name] = (...args: unknown[]) => factory(...args).on('error', onError);
  }
}
