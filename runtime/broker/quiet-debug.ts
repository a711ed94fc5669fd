/**
 * Cheaper disabled debug loggers for mqtt-packet, the broker's MQTT parser and writer.
 *
 * mqtt-packet calls its `debug` loggers (the `debug` package) 10-15 times for every packet it parses or
 * writes. Even when the namespace is off, each call allocates its rest-argument array and runs the
 * `enabled` getter before returning: a large share of the broker's CPU per QoS 0 message in a profile of
 * the runtime under bench:broker (the before/after figures are in bench/README.md, "Broker").
 *
 * The loggers are created when mqtt-packet is loaded, so this must run first: broker.ts imports this
 * module before aedes. It wraps the `debug` factory that mqtt-packet resolves so that a logger for a
 * `mqtt-packet:` namespace that is off when created becomes a function that only compares one string:
 * it forwards to the real logger (which then decides as before) once `debug.enable()` has changed the
 * enabled namespaces. Namespaces on at start (DEBUG=mqtt-packet:*) keep the real logger. Other
 * packages' loggers are left alone.
 */
import { createRequire } from 'node:module';

type DebugFn = ((...args: unknown[]) => void) & Record<string, unknown>;
type DebugFactory = ((namespace: string) => DebugFn) & { namespaces?: string };

const WRAPPED = Symbol.for('clawbox.quietDebug');
/** Properties of a logger that code outside may read or set; the quiet logger forwards them. */
const FORWARDED = ['enabled', 'log', 'namespace', 'useColors', 'color', 'diff', 'prev', 'curr', 'inspectOpts', 'extend', 'destroy'];

function quietLogger(factory: DebugFactory, real: DebugFn): DebugFn {
  const namespacesAtStart = factory.namespaces;
  const quiet = function quietDebug(this: unknown) {
    // `apply(this, arguments)` lets V8 skip materialising the arguments on the (normal) quiet path.
    // biome-ignore lint/complexity/noArguments: forwarding without a rest array is the point
    if (factory.namespaces !== namespacesAtStart) real.apply(this, arguments as unknown as unknown[]);
  } as unknown as DebugFn;
  for (const key of FORWARDED) {
    Object.defineProperty(quiet, key, {
      get: () => real[key],
      set: (value: unknown) => {
        real[key] = value;
      },
      enumerable: true,
      configurable: true,
    });
  }
  return quiet;
}

/**
 * Installs the wrapper for the `debug` package that mqtt-packet (as aedes resolves it) loads. Returns
 * false when mqtt-packet was loaded before this ran, so its loggers are the ordinary ones.
 */
export function quietMqttPacketDebug(): boolean {
  // createRequire rather than import.meta.resolve, which Node 20 before 20.6 lacks without a flag.
  const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'));
  const mqttPacketPath = fromAedes.resolve('mqtt-packet');
  const fromMqttPacket = createRequire(mqttPacketPath);
  const debugPath = fromMqttPacket.resolve('debug');
  const parserPath = fromMqttPacket.resolve('./parser.js');
  fromMqttPacket('debug');
  const cached = fromMqttPacket.cache[debugPath];
  if (!cached) return false;
  const factory = cached.exports as DebugFactory & { [WRAPPED]?: boolean };
  if (!factory[WRAPPED]) {
    cached.exports = new Proxy(factory, {
      apply(target, thisArg, args: [string]) {
        const real = Reflect.apply(target, thisArg, args) as DebugFn;
        const namespace = args[0];
        if (typeof namespace !== 'string' || !namespace.startsWith('mqtt-packet:') || real.enabled) return real;
        return quietLogger(target, real);
      },
      get(target, key, receiver) {
        return key === WRAPPED ? true : Reflect.get(target, key, receiver);
      },
    });
  }
  return fromMqttPacket.cache[parserPath] === undefined;
}

function tryQuiet(): boolean {
  try {
    return quietMqttPacketDebug();
  } catch {
    return false; // an unexpected package layout: the loggers stay as they are, which is only slower
  }
}

/** Whether the broker's mqtt-packet loggers are the quiet ones (false: mqtt-packet was loaded earlier). */
export const mqttPacketDebugQuiet = tryQuiet();
