/**
 * Retained messages whose publisher keeps them durable itself (`republishedAtStart`: the device states)
 * are stored write-behind: nothing waits for their commit, while every other retained message still
 * makes its publish wait for the store (durable-acks.ts). On the broker's real LevelDB store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { closeClient, collect, connect, startTestBroker } from '../../app/testing/broker.js';
import { type BrokerPersistence as BrokerPersistenceLike, openPersistence } from './persistence.js';

interface Store {
  storeRetained(packet: object): Promise<void>;
  createRetainedStream(pattern: string): AsyncIterable<{ topic: string; payload: Buffer }>;
}

function retained(topic: string, payload: Buffer) {
  return { cmd: 'publish', topic, payload, qos: 0, retain: true, dup: false, brokerId: 'b', brokerCounter: 1 };
}

t.test('a message marked storeBehind: its publish has no commit to wait for; it is stored all the same', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-write-behind-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const persistence = await openPersistence(dir, true);
  const store = persistence.aedesPersistence as Store;

  const usual = Buffer.from('usual');
  await store.storeRetained(retained('wb/usual', usual));
  const usualCommit = persistence.synced!({ payload: usual });
  t.ok(usualCommit, 'a retained message waits for the commit');
  await usualCommit;

  const behind = Buffer.from('behind');
  persistence.storeBehind!(behind);
  await store.storeRetained(retained('wb/behind', behind));
  t.equal(persistence.synced!({ payload: behind }), undefined, 'a write-behind one has nothing to wait for');

  await store.storeRetained(retained('wb/again', behind));
  const again = persistence.synced!({ payload: behind });
  t.ok(again, 'the mark is for one publish: the same Buffer published again is stored as usual');
  await again;

  await persistence.close();
  const reopened = await openPersistence(dir, true);
  t.teardown(() => reopened.close());
  const topics: string[] = [];
  for await (const packet of (reopened.aedesPersistence as Store).createRetainedStream('wb/#')) topics.push(`${packet.topic}=${packet.payload}`);
  t.same(topics.sort(), ['wb/again=behind', 'wb/behind=behind', 'wb/usual=usual'], 'all three on disk after a clean stop');
});

t.test('write-behind messages of one topic: the store keeps the last, each field as it was when stored', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-write-behind-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const persistence = await openPersistence(dir, true);
  const store = persistence.aedesPersistence as Store;
  for (let i = 1; i <= 30; i++) {
    const payload = Buffer.from(`{"brightness":${i}}`);
    persistence.storeBehind!(payload);
    const packet = { ...retained('wb/lamp', payload), brokerCounter: i };
    await store.storeRetained(packet);
    // aedes may change its packet after storing it (a client id for delivery): the store keeps what it got.
    Object.assign(packet, { clientId: 'later', brokerCounter: -1 });
  }
  const read = async (from: BrokerPersistenceLike) => {
    const out: object[] = [];
    for await (const packet of (from.aedesPersistence as Store).createRetainedStream('wb/lamp')) out.push({ ...packet, payload: String(packet.payload) });
    return out;
  };
  const expected = [{ ...retained('wb/lamp', Buffer.alloc(0)), brokerCounter: 30, payload: '{"brightness":30}' }];
  t.same(await read(persistence), expected, 'a read before the commit finds the last one');
  await persistence.close();
  const reopened = await openPersistence(dir, true);
  t.teardown(() => reopened.close());
  t.same(await read(reopened), expected, 'and so does a read after a restart');
});

t.test('Broker.publish with republishedAtStart: subscribers get it, a new subscriber finds it retained, also after a restart', async (t) => {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'clawbox-write-behind-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const first = await startTestBroker({ stateDir });
  const live = await connect(first.url);
  const inbox = collect(live);
  await live.subscribeAsync('dev/+');
  for (let i = 1; i <= 20; i++) await first.broker.publish('dev/lamp', String(i), { retain: true, republishedAtStart: true });
  const got = await inbox.next(20);
  t.same(
    got.map((m) => m.payload),
    Array.from({ length: 20 }, (_, i) => String(i + 1)),
    'every state, in order',
  );
  const late = await connect(first.url);
  const lateInbox = collect(late);
  await late.subscribeAsync('dev/lamp');
  t.same((await lateInbox.next(1))[0], { topic: 'dev/lamp', payload: '20', qos: 0, retain: true }, 'the last one retained');
  await closeClient(live);
  await closeClient(late);
  await first.close();

  const second = await startTestBroker({ stateDir });
  t.teardown(() => second.close());
  const reader = await connect(second.url);
  t.teardown(() => closeClient(reader));
  const readerInbox = collect(reader);
  await reader.subscribeAsync('dev/lamp');
  t.equal((await readerInbox.next(1))[0]?.payload, '20', 'a clean stop wrote it');
});
