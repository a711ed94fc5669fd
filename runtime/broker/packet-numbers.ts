/**
 * mqtt-packet writes every 2-byte number (packet identifiers, topic and string lengths) from a cache of
 * 65,536 two-byte Buffers that it builds when it writes its first packet: about 6 MB of V8 heap (a Buffer
 * object each) that a box with a handful of clients never gives back. Without the cache it takes the two
 * bytes from Node's shared buffer pool per number written, one or two per packet; the broker benchmark's
 * throughput probe shows no difference (bench/README.md, "Footprint").
 *
 * The cache is switched off through mqtt-packet's own `cacheNumbers` setter, on the module aedes loads,
 * before the first packet is written.
 */
import { createRequire } from 'node:module';

interface WriteToStream {
  cacheNumbers: boolean;
}

export function writeMqttNumbersUncached(): void {
  const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'));
  const writeToStream = fromAedes('mqtt-packet/writeToStream.js') as Partial<WriteToStream>;
  if (!Object.getOwnPropertyDescriptor(writeToStream, 'cacheNumbers')?.set) throw new Error('mqtt-packet has no cacheNumbers setting; its internals changed');
  writeToStream.cacheNumbers = false;
}
