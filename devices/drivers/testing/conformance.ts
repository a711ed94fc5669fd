/**
 * The driver conformance suite (the aedes-persistence pattern): every driver runs these same tests
 * against a real device on the other end (a simulator process on a socat pty, a Modbus slave, a remote
 * MQTT client). A rig provides a device with switch + dimmer capabilities and the faults to inject.
 */
import type { Test } from 'tap';
import type { Messaging } from '../../../runtime/messaging.js';
import { createLogging } from '../../../runtime/logging.js';
import type { DeviceDriver, DriverContext, DriverFactory } from '../../driver.js';
import type { Availability, DeviceDefinition, DeviceState } from '../../model.js';
import type { SerialRig } from '../../fixtures/socat.js';

export interface ConformanceRig {
  /** A device with at least switch (`state`) and dimmer (`brightness`). */
  definition: DeviceDefinition;
  /** The embedded broker for drivers that need one. */
  messaging?: Messaging;
  /** Make the device change on its own (wall switch); returns the patch the driver must report. */
  physicalChange(): Promise<DeviceState>;
  /** The device keeps its link but stops answering / answers again. */
  unresponsive(): Promise<void>;
  responsive(): Promise<void>;
  /** The link goes away (cable pulled, socat killed, client gone) / comes back. */
  unplug(): Promise<void>;
  replug(): Promise<void>;
  /** What the device itself holds now, to check that a command really reached it. */
  deviceState(): Promise<DeviceState>;
}

type Tap = Test;

/** What the simulator on the far end of a serial rig holds now (both simulators answer `dump`). */
export async function simulatorState(rig: SerialRig): Promise<DeviceState> {
  return JSON.parse(await rig.sim!.ask('dump')) as DeviceState;
}

/** A conformance rig over a socat serial pair whose simulator has a wall switch (`press`). */
export function serialConformanceRig(rig: SerialRig, definition: DeviceDefinition): ConformanceRig {
  return {
    definition,
    async physicalChange() {
      const before = await simulatorState(rig);
      rig.sim!.control('press');
      return { state: before.state === 'ON' ? 'OFF' : 'ON' };
    },
    unresponsive: async () => rig.sim!.pause(),
    responsive: async () => rig.sim!.resume(),
    unplug: () => rig.unplug(),
    replug: () => rig.plug(),
    deviceState: () => simulatorState(rig),
  };
}

const noMessaging: Messaging = {
  baseTopic: 'clawbox',
  publish: () => Promise.reject(new Error('this driver has no broker in the conformance rig')),
  subscribe: () => Promise.reject(new Error('this driver has no broker in the conformance rig')),
};

/** Waits until `check` is true, polling every 10 ms; false at the deadline. */
export async function eventually(check: () => boolean, withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return check();
}

export function runDriverConformance(
  tap: Tap,
  name: string,
  factory: DriverFactory,
  makeRig: (t: Tap) => Promise<ConformanceRig>,
): Promise<unknown> {
  return tap.test(`${name} driver conformance`, async (t) => {
    const rig = await makeRig(t);
    const reports: DeviceState[] = [];
    const availability: Availability[] = [];
    const logging = createLogging({ level: 'silent', components: {}, pretty: false });
    const ctx: DriverContext = {
      definition: rig.definition,
      logger: logging.forComponent('conformance'),
      messaging: rig.messaging ?? noMessaging,
      initialState: {},
      report: (patch) => reports.push(patch),
      setAvailability: (a) => availability.push(a),
    };
    const driver: DeviceDriver = factory(ctx);
    t.teardown(() => driver.stop());
    const timeout = 400;

    await t.test('connect: start() brings the device online', async (t) => {
      await driver.start();
      t.ok(await eventually(() => driver.availability === 'online', 2000), 'online');
      t.equal(availability.at(-1), 'online', 'announced through setAvailability');
    });

    await t.test('command: the device receives it and the confirmed state comes back', async (t) => {
      t.match(await driver.execute({ state: 'ON' }, 2000), { state: 'ON' });
      t.match(await driver.execute({ brightness: 40 }, 2000), { brightness: 40 });
      t.match(await driver.execute({ state: 'OFF', brightness: 70 }, 2000), { state: 'OFF', brightness: 70 });
      t.match(await rig.deviceState(), { state: 'OFF', brightness: 70 }, 'the device holds the new state');
      t.match(await driver.read(null, 2000), { state: 'OFF', brightness: 70 }, 'read() reports it');
      t.match(await driver.read(['brightness'], 2000), { brightness: 70 });
    });

    await t.test('state report: a change at the device is reported', async (t) => {
      const before = reports.length;
      const expected = await rig.physicalChange();
      const seen = await eventually(
        () => reports.slice(before).some((r) => Object.entries(expected).every(([k, v]) => r[k] === v)),
        3000,
      );
      t.ok(seen, `reported ${JSON.stringify(expected)}`);
    });

    await t.test('timeout: a silent device fails the command with DEVICE_TIMEOUT', async (t) => {
      await rig.unresponsive();
      await t.rejects(driver.execute({ brightness: 10 }, timeout), { code: 'DEVICE_TIMEOUT' });
      await rig.responsive();
      // A polling driver may have marked the silent device offline meanwhile (on a loaded machine its polls
      // time out too); it is back once a poll is answered. The bound only ends a test that would hang.
      t.ok(await eventually(() => driver.availability === 'online', 30_000), 'online once the device answers again');
      // A late reply to the timed-out command must not be taken for the next one's.
      await new Promise((r) => setTimeout(r, 100));
      t.match(await driver.execute({ brightness: 20 }, 2000), { brightness: 20 }, 'works again');
    });

    await t.test('disconnect: offline within 2 s, commands fail fast with DEVICE_UNAVAILABLE', async (t) => {
      await rig.unplug();
      t.ok(await eventually(() => driver.availability === 'offline', 2000), 'offline within 2 s');
      t.equal(availability.at(-1), 'offline');
      await t.rejects(driver.execute({ state: 'ON' }, 5000), { code: 'DEVICE_UNAVAILABLE' });
      await t.rejects(driver.read(null, 5000), { code: 'DEVICE_UNAVAILABLE' });
    });

    await t.test('reconnect: back online when the device returns, and it works', async (t) => {
      await rig.replug();
      t.ok(await eventually(() => driver.availability === 'online', 5000), 'online again');
      t.match(await driver.execute({ state: 'ON' }, 2000), { state: 'ON' });
      t.match(await rig.deviceState(), { state: 'ON' });
    });

    await t.test('stop: offline and quiet', async (t) => {
      await driver.stop();
      t.equal(driver.availability, 'offline');
      await t.rejects(driver.execute({ state: 'OFF' }, 500), { code: 'DEVICE_UNAVAILABLE' });
    });
  });
}
