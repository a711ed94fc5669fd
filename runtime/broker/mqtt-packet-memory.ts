/**
 * What mqtt-packet keeps that the broker does not need, given back. Both are switched on the modules aedes
 * loads, before the first connection, and fail loudly if an mqtt-packet upgrade moved them.
 *
 * - The number cache: mqtt-packet writes every 2-byte number (packet identifiers, topic and string lengths)
 *   from 65,536 two-byte Buffers that it builds when it writes its first packet, megabytes of V8 heap (a
 *   Buffer object each) that a box with a handful of clients never gives back. Without it the two bytes come
 *   from Node's shared buffer pool per number written, one or two per packet. Switched off through
 *   mqtt-packet's own `cacheNumbers` setter.
 * - The parser's byte list: each connection's parser collects incoming bytes in a `bl()`, which is a whole
 *   Duplex stream (readable and writable state, listeners) of which the parser uses only the list methods.
 *   bl's plain BufferList has the same methods; the parser gets one of those instead.
 */
import { createRequire } from 'node:module';

interface WriteToStream {
  cacheNumbers: boolean;
}

interface ParserPrototype {
  _resetState(this: { _list: unknown }): void;
}

let applied = false;

export function leanMqttPacket(): void {
  if (applied) return;
  const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'));
  const writeToStream = fromAedes('mqtt-packet/writeToStream.js') as Partial<WriteToStream>;
  if (!Object.getOwnPropertyDescriptor(writeToStream, 'cacheNumbers')?.set) throw new Error('mqtt-packet has no cacheNumbers setting; its internals changed');
  writeToStream.cacheNumbers = false;

  const fromMqttPacket = createRequire(fromAedes.resolve('mqtt-packet'));
  const Parser = fromMqttPacket('./parser.js') as { prototype: Partial<ParserPrototype> };
  const { BufferList } = fromMqttPacket('bl') as { BufferList?: new () => unknown };
  const resetState = Parser.prototype._resetState;
  if (typeof resetState !== 'function' || typeof BufferList !== 'function') throw new Error("mqtt-packet's parser has no _resetState or bl no BufferList; their internals changed");
  Parser.prototype._resetState = function resetWithPlainList(this: { _list: unknown }) {
    resetState.call(this);
    this._list = new BufferList();
  };
  applied = true;
}
