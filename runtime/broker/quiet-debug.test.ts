// First, as in broker.ts: mqtt-packet must be loaded after the wrapper is in place.
import { mqttPacketDebugQuiet } from './quiet-debug.js';
import { createRequire } from 'node:module';
import { format } from 'node:util';
import t from 'tap';
import { brokerWithClients } from '../../app/testing/broker.js';

interface DebugFactory {
  enable(namespaces: string): void;
  disable(): string;
  log: (...args: unknown[]) => void;
}

/** The `debug` package exactly as mqtt-packet (under aedes) resolves it. */
function debugOfMqttPacket(): DebugFactory {
  const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'));
  return createRequire(fromAedes.resolve('mqtt-packet'))('debug') as DebugFactory;
}

t.test('mqtt-packet logs nothing by default, and still logs once debug.enable() turns it on at run time', async (t) => {
  t.equal(mqttPacketDebugQuiet, true, 'the quiet loggers are in place (mqtt-packet loaded after the wrapper)');
  const debug = debugOfMqttPacket();
  const lines: string[] = [];
  const savedLog = debug.log;
  debug.log = (...args: unknown[]) => {
    lines.push(format(...args));
  };
  t.teardown(() => {
    debug.log = savedLog;
    debug.disable();
  });

  const { sub, pub, inbox } = await brokerWithClients(t);
  await sub.subscribeAsync('dbg/#', { qos: 0 });

  await pub.publishAsync('dbg/a', 'off', { qos: 0 });
  await inbox.next(1);
  t.same(lines, [], 'nothing logged while the namespaces are off');

  debug.enable('mqtt-packet:parser');
  await pub.publishAsync('dbg/a', 'on', { qos: 0 });
  await inbox.next(2);
  t.ok(
    lines.some((line) => line.includes('mqtt-packet:parser')),
    'the parser logs after debug.enable("mqtt-packet:parser")',
  );
  t.notOk(
    lines.some((line) => line.includes('mqtt-packet:writeToStream')),
    'a namespace that was not enabled stays silent',
  );

  debug.disable();
  const before = lines.length;
  await pub.publishAsync('dbg/a', 'off again', { qos: 0 });
  await inbox.next(3);
  t.equal(lines.length, before, 'silent again after debug.disable()');
  t.same(
    inbox.all.map((m) => m.payload),
    ['off', 'on', 'off again'],
    'messages flow whatever the logging',
  );
});
