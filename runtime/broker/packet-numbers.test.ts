import { createRequire } from 'node:module';
import t from 'tap';
import { closeClient, collect, connect, startTestBroker } from '../../app/testing/broker.js';

// The module the broker's aedes writes with (packet-numbers.ts).
const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'));
const numbers = fromAedes('mqtt-packet/numbers.js') as { cache: Record<number, Buffer> };

t.test("the broker writes packets without building mqtt-packet's 65,536-buffer number cache", async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const client = await connect(tb.url);
  t.teardown(() => closeClient(client));
  const inbox = collect(client);
  await client.subscribeAsync('numbers/#', { qos: 1 });
  // Packet identifiers and topic lengths are the 2-byte numbers in question, outbound from the broker.
  for (let i = 0; i < 20; i++) await tb.broker.publish(`numbers/${'x'.repeat(i * 40)}`, `${i}`, { qos: 1 });
  const got = await inbox.next(20, 10_000);
  t.same(
    got.map((m) => String(m.payload)),
    Array.from({ length: 20 }, (_, i) => `${i}`),
    'every message arrives intact',
  );
  t.equal(got.at(-1)!.topic.length, 'numbers/'.length + 19 * 40, 'a long topic keeps its length');
  t.equal(Object.keys(numbers.cache).length, 0, 'no cache built');
});
