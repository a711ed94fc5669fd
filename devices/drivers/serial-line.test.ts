/**
 * serial-line over real pseudo-terminals: socat pairs with the line-protocol simulator process on the far
 * end. Runs the driver conformance suite, then protocol details (errors, unsolicited lines, polling).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { parseDeviceEntry, toDefinition } from '../registry.js';
import { connectClient, json, startStack } from '../fixtures/stack.js';
import { LINE_SIM, SerialRig } from '../fixtures/socat.js';
import { eventually, runDriverConformance, serialConformanceRig, simulatorState } from './testing/conformance.js';
import { createSerialLineDriver } from './serial-line.js';

const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-serial-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

export function lineDeviceEntry(id: string, devicePath: string, extra: Record<string, unknown> = {}) {
  return {
    id,
    driver: 'serial-line',
    capabilities: ['switch', 'dimmer', { type: 'sensor', readings: [{ property: 'temperature', unit: '°C' }] }],
    timeout_ms: 1000,
    serial: {
      path: devicePath,
      baud_rate: 115200,
      commands: {
        state: { template: 'POWER {state}', response: '^OK POWER (?<state>ON|OFF)$' },
        brightness: { template: 'DIM {brightness}', response: '^OK DIM (?<brightness>\\d+)$' },
      },
      query: {
        template: 'STATUS',
        response: '^STATUS (?<state>ON|OFF) (?<brightness>\\d+) (?<temperature>-?[\\d.]+)$',
      },
      reports: ['^EVENT POWER (?<state>ON|OFF)$', '^TEMP (?<temperature>-?[\\d.]+)$'],
      error: '^ERR (?<message>.*)$',
      reconnect: { initial_ms: 100, max_ms: 400 },
      ...extra,
    },
  };
}

runDriverConformance(t, 'serial-line', createSerialLineDriver, async (t) => {
  const rig = new SerialRig(dir, 'conf', LINE_SIM);
  await rig.plug();
  t.teardown(() => rig.unplug());
  return serialConformanceRig(rig, toDefinition(parseDeviceEntry(lineDeviceEntry('conf', rig.devicePath)), 'config'));
});

t.test('through the service: device errors, pushes, polling, unplug and replug over MQTT', async (t) => {
  const rig = new SerialRig(dir, 'svc', LINE_SIM, () => ['--temp', '19']);
  await rig.plug();
  t.teardown(() => rig.unplug());
  const stack = await startStack(t, {
    config: {
      devices: [lineDeviceEntry('desk', rig.devicePath, { poll_interval_ms: 200 }), ],
    },
  });
  const c = await connectClient(t, stack.url);
  await c.subscribe('clawbox/desk', 'clawbox/desk/error', 'clawbox/desk/availability');
  t.ok(await eventually(() => stack.service.get('desk')?.availability === 'online', 3000), 'online');
  t.ok(await eventually(() => stack.service.get('desk')?.state.temperature === 19, 3000), 'initial query read the sensor');

  // Polls publish too, so wait for the state that carries the command's values.
  const set = await c.request('clawbox/desk/set', '{"state":"ON","brightness":30}', 'clawbox/desk', (p) => json(p).brightness === 30);
  t.match(json(set.payload), { state: 'ON', brightness: 30, temperature: 19 });
  t.match(await simulatorState(rig), { state: 'ON', brightness: 30 });

  // Polling picks up a change made at the device; an unsolicited line is reported at once.
  rig.sim!.control('temp 23.5');
  const pushed = await c.waitFor('clawbox/desk', (p) => json(p).temperature === 23.5);
  t.ok(pushed, 'pushed TEMP line published');
  rig.sim!.control('press');
  await c.waitFor('clawbox/desk', (p) => json(p).state === 'OFF');

  // Cable pulled: offline published within 2 s; a command fails fast; back when replugged.
  const offline = c.waitFor('clawbox/desk/availability', (p) => p === 'offline', 2000);
  await rig.unplug();
  await offline;
  const error = await c.request('clawbox/desk/set', '{"state":"ON","transaction":"u"}', 'clawbox/desk/error');
  t.same(json(error.payload), { code: 'DEVICE_UNAVAILABLE', message: 'desk is offline', transaction: 'u' });
  // Generous: replugging starts socat and a simulator process, slow on a loaded machine.
  const online = c.waitFor('clawbox/desk/availability', (p) => p === 'online', 15_000);
  await rig.plug();
  await online;
  const result = await stack.service.execute('desk', { brightness: 55 }, { source: 'test' });
  t.match(result.state, { brightness: 55 });
  t.match(await simulatorState(rig), { brightness: 55 });
});

t.test('a hung device behind an open port: offline after 3 failed polls, online at the next answer', async (t) => {
  const rig = new SerialRig(dir, 'hung', LINE_SIM);
  await rig.plug();
  t.teardown(() => rig.unplug());
  const entry = { ...lineDeviceEntry('hung', rig.devicePath, { poll_interval_ms: 100 }), timeout_ms: 150 };
  const stack = await startStack(t, { config: { devices: [entry] } });
  t.ok(await eventually(() => stack.service.get('hung')?.availability === 'online', 3000), 'online');
  const offlineEvents: string[] = [];
  stack.tc.ctx.bus.on('device.availability', (e) => offlineEvents.push(`${e.availability}${e.reason ? `: ${e.reason}` : ''}`));
  rig.sim!.control('mute');
  t.ok(await eventually(() => stack.service.get('hung')?.availability === 'offline', 3000), 'offline while the port stays open');
  t.match(offlineEvents, [/^offline: 3 polls failed/]);
  rig.sim!.control('unmute');
  t.ok(await eventually(() => stack.service.get('hung')?.availability === 'online', 3000), 'online again at the next answer');
});

t.test('a device ERR reply is DEVICE_ERROR and changes nothing', async (t) => {
  const rig = new SerialRig(dir, 'err', LINE_SIM);
  await rig.plug();
  t.teardown(() => rig.unplug());
  // The device accepts DIM 0-100 but the template sends 10x the value: 40 -> "DIM 400" -> ERR.
  const entry = lineDeviceEntry('bad', rig.devicePath);
  entry.serial.commands.brightness.template = 'DIM {brightness}0';
  const stack = await startStack(t, { config: { devices: [entry] } });
  t.ok(await eventually(() => stack.service.get('bad')?.availability === 'online', 3000));
  await stack.service.execute('bad', { brightness: 5 }, { source: 'test' });
  t.equal(stack.service.get('bad')?.state.brightness, 50, 'the device confirmed 50');
  await t.rejects(stack.service.execute('bad', { brightness: 40 }, { source: 'test' }), {
    code: 'DEVICE_ERROR',
    message: /out of range/,
  });
  t.equal(stack.service.get('bad')?.state.brightness, 50, 'unchanged');
});

t.test('a port that does not exist: offline, retried, fast-fail', async (t) => {
  const stack = await startStack(t, {
    config: { devices: [lineDeviceEntry('ghost', path.join(dir, 'missing'))] },
  });
  t.equal(stack.service.get('ghost')?.availability, 'offline');
  await t.rejects(stack.service.execute('ghost', { state: 'ON' }, { source: 'test' }), { code: 'DEVICE_UNAVAILABLE' });
  const rig = new SerialRig(dir, 'late', LINE_SIM);
  t.teardown(() => rig.unplug());
  await stack.service.add(lineDeviceEntry('late', rig.devicePath));
  t.equal(stack.service.get('late')?.availability, 'offline');
  await rig.plug();
  t.ok(await eventually(() => stack.service.get('late')?.availability === 'online', 3000), 'comes online when plugged in');
});
