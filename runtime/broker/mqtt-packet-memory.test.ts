// First, as app/main.ts and broker.ts do: the test helpers load mqtt-packet (through mqtt.js).
import { blStreamDeferred } from './mqtt-packet-memory.js';
import { createRequire } from 'node:module';
import { Duplex } from 'node:stream';
import t from 'tap';
import { closeClient, collect, connect, startTestBroker } from '../../app/testing/broker.js';

// The modules the broker's aedes uses (mqtt-packet-memory.ts).
const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'));
const numbers = fromAedes('mqtt-packet/numbers.js') as { cache: Record<number, Buffer> };
const mqttPacket = fromAedes('mqtt-packet') as { parser(): { _list: unknown } };

t.test('packets both ways arrive intact with no number cache and a plain byte list per parser', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  t.notOk(mqttPacket.parser()._list instanceof Duplex, "a parser's byte list is no stream");

  const subscriber = await connect(tb.url);
  t.teardown(() => closeClient(subscriber));
  const publisher = await connect(tb.url);
  t.teardown(() => closeClient(publisher));
  const inbox = collect(subscriber);
  await subscriber.subscribeAsync('lean/#', { qos: 1 });
  // Packet identifiers and topic lengths are the 2-byte numbers written; 60 KB payloads (the default limit
  // is 64 KB) reach the parsers split over several reads.
  const payloads = Array.from({ length: 20 }, (_, i) => (i % 5 === 4 ? `${i}:${'p'.repeat(60_000)}` : `${i}`));
  for (const [i, payload] of payloads.entries()) await publisher.publishAsync(`lean/${'x'.repeat(i * 40)}`, payload, { qos: 1 });
  const got = await inbox.next(20, 10_000);
  t.same(
    got.map((m) => String(m.payload)),
    payloads,
    'every message arrives intact',
  );
  t.equal(got.at(-1)!.topic.length, 'lean/'.length + 19 * 40, 'a long topic keeps its length');
  t.equal(Object.keys(numbers.cache).length, 0, 'no number cache built');
});

t.test("bl's stream is not loaded by a broker, and still works for whoever calls it", async (t) => {
  const fromMqttPacket = createRequire(fromAedes.resolve('mqtt-packet'));
  const blMain = fromMqttPacket.resolve('bl');
  // The real module exports its stream class; the stand-in is a function named bl.
  const streamLoaded = () => (fromMqttPacket.cache[blMain]?.exports as { name?: string } | undefined)?.name === 'BufferListStream';
  t.ok(blStreamDeferred, 'the stand-in took its place before mqtt-packet loaded');
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const client = await connect(tb.url);
  t.teardown(() => closeClient(client));
  await client.publishAsync('lean/stand-in', 'x', { qos: 1 });
  t.notOk(streamLoaded(), "bl's stream not loaded by a broker that parsed and wrote packets");

  // Whoever else calls bl gets the real stream, loaded then.
  const bl = fromMqttPacket('bl') as ((...args: unknown[]) => Duplex & { slice(): Buffer }) & { BufferList: unknown };
  t.type(bl.BufferList, 'function', 'its properties are the real ones');
  const collected = await new Promise<Buffer>((resolve, reject) => {
    const stream = bl((error: Error | null, data: Buffer) => (error ? reject(error) : resolve(data)));
    stream.write('ab');
    stream.end('cd');
  });
  t.equal(String(collected), 'abcd', 'bl() is the real Duplex stream');
  t.ok(streamLoaded(), "bl's stream loaded on that first call");
  t.ok(new (bl as unknown as new () => object)() instanceof (bl as unknown as { BufferListStream: new () => object }).BufferListStream, 'new bl() too');
});
