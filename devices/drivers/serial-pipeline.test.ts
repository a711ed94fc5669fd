/**
 * serial-line with `pipeline` > 1, over real pseudo-terminals (socat). The far end is either a scripted
 * device in this process (it decides when and in which order to answer) or the line-protocol simulator.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ReadlineParser } from '@serialport/parser-readline';
import { SerialPort } from 'serialport';
import t, { type Test } from 'tap';
import { createLogging } from '../../runtime/logging.js';
import type { DeviceDriver } from '../driver.js';
import { startStack } from '../fixtures/stack.js';
import { LINE_SIM, SerialRig, SocatPair } from '../fixtures/socat.js';
import { parseDeviceEntry, toDefinition } from '../registry.js';
import { createSerialLineDriver } from './serial-line.js';
import { eventually, simulatorState } from './testing/conformance.js';

const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-pipeline-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function entry(id: string, devicePath: string, pipeline: number) {
  return {
    id,
    driver: 'serial-line',
    capabilities: ['switch', 'dimmer'],
    timeout_ms: 2000,
    serial: {
      path: devicePath,
      baud_rate: 115200,
      pipeline,
      commands: {
        state: { template: 'POWER {state}', response: '^OK POWER (?<state>ON|OFF)$' },
        brightness: { template: 'DIM {brightness}', response: '^OK DIM (?<brightness>\\d+)$' },
      },
      error: '^ERR (?<message>.*)$',
      reconnect: { initial_ms: 100, max_ms: 400 },
    },
  };
}

/** A device on end B of a pty pair whose answers the test scripts: `onLines` sees every line received so far. */
async function scriptedDevice(t: Test, name: string, onLines: (lines: string[], send: (line: string) => void) => void) {
  const pair = new SocatPair(path.join(dir, `${name}-a`), path.join(dir, `${name}-b`));
  await pair.start();
  t.teardown(() => pair.stop());
  const port = new SerialPort({ path: pair.b, baudRate: 115200, autoOpen: false, lock: false });
  await new Promise<void>((resolve, reject) => port.open((error) => (error ? reject(error) : resolve())));
  t.teardown(() => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())));
  const lines: string[] = [];
  const send = (line: string) => port.write(`${line}\n`);
  port.pipe(new ReadlineParser({ delimiter: '\n' })).on('data', (line: string) => {
    lines.push(line.trim());
    onLines(lines, send);
  });
  return { devicePath: pair.a, lines };
}

async function startDriver(t: Test, id: string, devicePath: string, pipeline: number): Promise<DeviceDriver> {
  const driver = createSerialLineDriver({
    definition: toDefinition(parseDeviceEntry(entry(id, devicePath, pipeline)), 'config'),
    logger: createLogging({ level: 'silent', components: {}, pretty: false }).forComponent('test'),
    messaging: { baseTopic: 'clawbox', publish: async () => {}, subscribe: async () => async () => {} },
    initialState: {},
    report: () => {},
    setAvailability: () => {},
  });
  t.teardown(() => driver.stop());
  await driver.start();
  t.ok(await eventually(() => driver.availability === 'online', 3000), 'online');
  return driver;
}

/** The reply the line-protocol device gives to a command line. */
const okReply = (line: string) => `OK ${line}`;

t.test('the driver says how many commands it takes at once', async (t) => {
  const device = await scriptedDevice(t, 'width', (lines, send) => send(okReply(lines.at(-1)!)));
  t.equal((await startDriver(t, 'one', device.devicePath, 1)).maxInFlight, 1);
  const device4 = await scriptedDevice(t, 'width4', (lines, send) => send(okReply(lines.at(-1)!)));
  t.equal((await startDriver(t, 'four', device4.devicePath, 4)).maxInFlight, 4);
});

t.test('pipelined commands are all on the wire at once and each gets its own reply, even out of order', async (t) => {
  // Answers nothing until four lines are in, then answers them last first.
  const device = await scriptedDevice(t, 'reverse', (lines, send) => {
    if (lines.length === 4) for (const line of [...lines].reverse()) send(okReply(line));
  });
  const driver = await startDriver(t, 'rev', device.devicePath, 4);
  const results = await Promise.all([
    driver.execute({ brightness: 10 }, 2000),
    driver.execute({ brightness: 20 }, 2000),
    driver.execute({ state: 'ON' }, 2000),
    driver.execute({ brightness: 30 }, 2000),
  ]);
  t.same(device.lines, ['DIM 10', 'DIM 20', 'POWER ON', 'DIM 30'], 'written in call order, before any reply');
  t.same(results, [{ brightness: 10 }, { brightness: 20 }, { state: 'ON' }, { brightness: 30 }]);
});

t.test('a reply that never comes times out only its own command', async (t) => {
  const device = await scriptedDevice(t, 'drop', (lines, send) => {
    const line = lines.at(-1)!;
    if (line !== 'DIM 13') send(okReply(line));
  });
  const driver = await startDriver(t, 'drop', device.devicePath, 4);
  const [a, b, c] = await Promise.allSettled([
    driver.execute({ brightness: 12 }, 400),
    driver.execute({ brightness: 13 }, 400),
    driver.execute({ brightness: 14 }, 400),
  ]);
  t.same(a, { status: 'fulfilled', value: { brightness: 12 } });
  t.match(b, { status: 'rejected', reason: { code: 'DEVICE_TIMEOUT', message: /did not answer brightness/ } });
  t.same(c, { status: 'fulfilled', value: { brightness: 14 } }, 'the later command got the reply that echoes it');
  // The lane is clear afterwards: the next command is answered.
  t.same(await driver.execute({ brightness: 15 }, 1000), { brightness: 15 });
});

t.test('an error line fails the oldest waiting command only', async (t) => {
  const device = await scriptedDevice(t, 'err', (lines, send) => {
    if (lines.length === 2) {
      send('ERR busy');
      send(okReply(lines[1]!));
    }
  });
  const driver = await startDriver(t, 'err', device.devicePath, 4);
  const [first, second] = await Promise.allSettled([driver.execute({ brightness: 40 }, 1000), driver.execute({ brightness: 50 }, 1000)]);
  t.match(first, { status: 'rejected', reason: { code: 'DEVICE_ERROR', message: /answered: busy/ } });
  t.same(second, { status: 'fulfilled', value: { brightness: 50 } });
});

t.test('without pipelining the next line waits for the reply', async (t) => {
  const device = await scriptedDevice(t, 'strict', (lines, send) => {
    // Answers each line 50 ms late: a driver that did not wait would have written the second line meanwhile.
    setTimeout(() => send(okReply(lines.at(-1)!)), 50);
  });
  const driver = await startDriver(t, 'strict', device.devicePath, 1);
  const first = driver.execute({ brightness: 1 }, 1000);
  const second = driver.execute({ brightness: 2 }, 1000);
  t.same(await first, { brightness: 1 });
  t.same(device.lines, ['DIM 1'], 'the second line was not written before the first reply');
  t.same(await second, { brightness: 2 });
});

t.test('through the service: a burst to a pipelined device answers every command with its own state; TOGGLE waits its turn', async (t) => {
  const rig = new SerialRig(dir, 'svc', LINE_SIM);
  await rig.plug();
  t.teardown(() => rig.unplug());
  const stack = await startStack(t, { config: { devices: [entry('burst', rig.devicePath, 8)] } });
  t.ok(await eventually(() => stack.service.get('burst')?.availability === 'online', 3000), 'online');
  const published: string[] = [];
  await stack.broker.subscribe('clawbox/burst', (_topic, payload) => published.push(payload.toString()));
  const before = published.length;
  const commands = Array.from({ length: 40 }, (_, i) => (i === 20 ? { state: 'TOGGLE' } : { brightness: i }));
  const results = await Promise.all(commands.map((command) => stack.service.execute('burst', command, { source: 'test' })));
  results.forEach((result, i) => {
    if (i === 20) t.equal(result.state.state, 'ON', 'TOGGLE saw OFF, the state every earlier command left');
    else t.equal(result.state.brightness, i, `command ${i} answered with its own brightness`);
  });
  t.match(await simulatorState(rig), { state: 'ON', brightness: 39 }, 'the device holds the last command');
  t.ok(await eventually(() => published.length - before >= 40, 3000), 'one state message per command');
  const brightness = published.slice(before).map((p) => (JSON.parse(p) as { brightness: number }).brightness);
  t.same(brightness.at(-1), 39, 'the last state published is the last command');
});
