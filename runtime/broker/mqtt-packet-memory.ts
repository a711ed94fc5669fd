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
 * - bl's stream itself: with the plain list, nothing the broker runs uses bl's Duplex stream, but mqtt-packet's
 *   parser requires bl's main module when it loads, and that module is built on readable-stream (a userland
 *   copy of Node's streams: two dozen modules and their source and code, kept by every idle box). A stand-in
 *   takes bl's place in the require cache (Node documents adding entries there) before mqtt-packet loads:
 *   the first call of it, or read of one of its properties, loads the real bl and hands over, so any other
 *   user of bl gets the real stream. This module does it when imported (broker.ts and app/main.ts import it
 *   before aedes).
 */
import Module, { createRequire } from 'node:module';

interface WriteToStream {
  cacheNumbers: boolean;
}

interface ParserPrototype {
  _resetState(this: { _list: unknown }): void;
}

let applied = false;
/** True while a parser resets its state: the stand-in then hands it a plain list, not a stream. */
let parserResetting = false;
let standIn: ((...args: unknown[]) => unknown) | undefined;

/** The broker's mqtt-packet's own require (mqtt-packet as aedes resolves it). */
function mqttPacketRequire(): NodeJS.Require {
  const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'));
  return createRequire(fromAedes.resolve('mqtt-packet'));
}

/** bl's plain list, from its own file: bl's main module would load its stream. */
function bufferListClass(fromMqttPacket: NodeJS.Require): new () => unknown {
  const BufferList = fromMqttPacket('bl/BufferList.js') as unknown;
  if (typeof BufferList !== 'function') throw new Error("bl has no BufferList.js; its internals changed");
  return BufferList as new () => unknown;
}

/**
 * Puts the stand-in for bl's main module in the require cache, unless bl is loaded already. Returns whether
 * the stand-in is in place (false: bl was loaded before).
 */
export function deferBlStream(): boolean {
  const fromMqttPacket = mqttPacketRequire();
  const main = fromMqttPacket.resolve('bl');
  if (fromMqttPacket.cache[main]) return standIn !== undefined && fromMqttPacket.cache[main]!.exports === standIn;
  const BufferList = bufferListClass(fromMqttPacket);
  const placeholder = new Module(main);
  placeholder.filename = main;
  placeholder.loaded = true;
  let real: (((...args: unknown[]) => unknown) & Record<string, unknown>) | undefined;
  const load = () => {
    if (!real) {
      if (fromMqttPacket.cache[main] === placeholder) delete fromMqttPacket.cache[main];
      real = fromMqttPacket('bl') as typeof real & object;
    }
    return real;
  };
  standIn = function bl(this: unknown, ...args: unknown[]) {
    if (parserResetting) return new BufferList();
    // bl() and new bl() both make a stream (bl calls itself with `new` when called without).
    return Reflect.apply(load(), this, args);
  };
  for (const name of ['BufferListStream', 'BufferList', 'isBufferList']) {
    Object.defineProperty(standIn, name, { get: () => load()[name], enumerable: true, configurable: true });
  }
  placeholder.exports = standIn;
  fromMqttPacket.cache[main] = placeholder;
  return true;
}

/** Whether bl's stream is deferred in this process (false: something loaded bl before this module). */
export const blStreamDeferred = (() => {
  try {
    return deferBlStream();
  } catch {
    return false; // an unexpected package layout: bl loads as it would, which only costs memory
  }
})();

export function leanMqttPacket(): void {
  if (applied) return;
  const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'));
  const writeToStream = fromAedes('mqtt-packet/writeToStream.js') as Partial<WriteToStream>;
  if (!Object.getOwnPropertyDescriptor(writeToStream, 'cacheNumbers')?.set) throw new Error('mqtt-packet has no cacheNumbers setting; its internals changed');
  writeToStream.cacheNumbers = false;

  const fromMqttPacket = mqttPacketRequire();
  const Parser = fromMqttPacket('./parser.js') as { prototype: Partial<ParserPrototype> };
  const BufferList = bufferListClass(fromMqttPacket);
  const resetState = Parser.prototype._resetState;
  if (typeof resetState !== 'function') throw new Error("mqtt-packet's parser has no _resetState; its internals changed");
  Parser.prototype._resetState = function resetWithPlainList(this: { _list: unknown }) {
    // With the stand-in in place the parser's own bl() call gets the plain list; without it (bl was loaded
    // before), the stream it made is replaced.
    parserResetting = true;
    try {
      resetState.call(this);
    } finally {
      parserResetting = false;
    }
    if (!(this._list instanceof BufferList)) this._list = new BufferList();
  };
  applied = true;
}
