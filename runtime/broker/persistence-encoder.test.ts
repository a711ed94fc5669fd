/**
 * encodeFromBufferPool: the store's msgpack-lite encoder (aedes-persistence-level's own copy, which the
 * broker's persistence uses) starts each value in Node's buffer pool instead of a fresh 2 KB buffer, once
 * however often it is called, and what it encodes decodes to the same value.
 */
import { createRequire } from 'node:module';
import t from 'tap';
import { encodeFromBufferPool } from './persistence.js';

const fromPersistence = createRequire(createRequire(import.meta.url).resolve('aedes-persistence-level'));
const msgpack = fromPersistence('msgpack-lite') as { encode(value: unknown): Buffer; decode(bytes: Buffer): unknown };
const PACKET = { cmd: 'publish', topic: 'clawbox/lamp/set', payload: Buffer.from('{"state":"ON"}'), qos: 1, retain: false, messageId: 7 };

t.test("the store's encoder writes into Node's buffer pool, and its values decode as before", async (t) => {
  const encode = encodeFromBufferPool();
  t.equal(encodeFromBufferPool(), encode, 'the same encoder on a second call');
  t.equal(encode, msgpack.encode, "aedes-persistence-level's own msgpack-lite encode");
  const encoded = msgpack.encode(PACKET);
  t.equal(encoded.buffer.byteLength, Buffer.poolSize, "the bytes lie in Node's shared pool, not a 2 KB buffer of their own");
  t.same(msgpack.decode(encoded), PACKET, 'decodes to the same packet');
  const large = { payload: Buffer.alloc(3000, 1) };
  t.same(msgpack.decode(msgpack.encode(large)), large, 'a value larger than the first buffer grows it as before');
});
