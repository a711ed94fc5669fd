/**
 * DeviceService lifecycle: demo defaults, persistence across restarts, events, status, registry changes.
 */
import { closeSync, cpSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { demoDevices } from './demo.js';
import type { DeviceStateEvent } from './events.js';
import { connectClient, json, startStack } from './fixtures/stack.js';

/** A state folder and one for its copy taken "at the crash", both removed after the test. */
function stateAndCrashDirs(t: Test): { stateDir: string; crashed: string } {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'clawbox-devices-'));
  const crashed = mkdtempSync(path.join(tmpdir(), 'clawbox-devices-crash-'));
  t.teardown(() => {
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(crashed, { recursive: true, force: true });
  });
  return { stateDir, crashed };
}

/** Two simulated devices, without the broker's own store (the device journal is under test). */
const lampAndDimmer = () => ({
  devices: [
    { id: 'lamp', driver: 'simulated', capabilities: ['switch'] },
    { id: 'dimmer', driver: 'simulated', capabilities: ['dimmer'] },
  ],
  broker: { persistence: { enabled: false } },
});

t.test('no devices: key in local mode drives the demo set; appliance mode does not', async (t) => {
  const tc = await import('../app/testing/test-context.js');
  const local = tc.makeTestContext({});
  t.teardown(() => local.cleanup());
  t.same(
    local.ctx.config.devices.map((d) => d.id),
    demoDevices().map((d) => d.id),
    'the config default is the demo set',
  );
  const stack = await startStack(t, { config: { devices: undefined } });
  const ids = stack.service.list().map((d) => d.id);
  t.same(ids, ['lamp', 'light', 'thermostat', 'temperature', 'cover']);
  t.ok(stack.service.list().every((d) => d.origin === 'demo' && d.availability === 'online'));
  await stack.service.execute('light', { brightness: 30 }, { source: 'test' });

  const appliance = await startStack(t, {
    config: { devices: undefined, mode: 'appliance', http: { token: 'x'.repeat(32) }, broker: { anonymous: 'never' } },
  });
  t.same(appliance.service.list(), [], 'demo devices are local-mode only');
});

t.test('state, runtime devices and renames survive a restart and are republished retained', async (t) => {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'clawbox-devices-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const config = {
    devices: [{ id: 'lamp', driver: 'simulated', capabilities: ['switch'] }],
    broker: { persistence: { enabled: false } },
  };
  const first = await startStack(t, { config, stateDir });
  await first.service.execute('lamp', { state: 'ON' }, { source: 'test' });
  await first.service.add({ id: 'fan', driver: 'simulated', capabilities: ['switch', 'dimmer'] });
  await first.service.execute('fan', { brightness: 70 }, { source: 'test' });
  await first.service.rename('lamp', 'Desk lamp');
  await first.stop();

  // Broker persistence is off: whatever is retained after the restart was republished by the device layer.
  const second = await startStack(t, { config, stateDir });
  t.same(second.service.get('lamp')?.state, { state: 'ON' });
  t.equal(second.service.get('lamp')?.name, 'Desk lamp');
  t.match(second.service.get('fan'), { origin: 'runtime', state: { brightness: 70 } });
  const c = await connectClient(t, second.url);
  await c.subscribe('clawbox/+');
  const lamp = await c.waitFor('clawbox/lamp', () => true, undefined, true);
  t.same([json(lamp.payload), lamp.retain], [{ state: 'ON' }, true]);
  const fan = await c.waitFor('clawbox/fan', () => true, undefined, true);
  t.match(json(fan.payload), { brightness: 70 });

  await second.service.remove('lamp');
  await second.stop();
  const third = await startStack(t, { config, stateDir });
  t.equal(third.service.get('lamp'), undefined, 'a removed config device stays removed');
  await third.service.add({ id: 'lamp', driver: 'simulated', capabilities: ['switch'] });
  t.same(third.service.get('lamp')?.state, { state: 'OFF' }, 'added again from scratch');
});

t.test('acknowledged states are journaled: a copy of the state folder taken without a stop has them', async (t) => {
  const { stateDir, crashed } = stateAndCrashDirs(t);
  const config = lampAndDimmer();
  const first = await startStack(t, { config, stateDir });
  const documentFile = path.join(stateDir, 'devices.json');
  const document = () => (existsSync(documentFile) ? readFileSync(documentFile, 'utf8') : null);
  const documentBefore = document();
  // Resolved commands are acknowledged: their states are on disk when execute() returns.
  await Promise.all([
    first.service.execute('lamp', { state: 'ON' }, { source: 'test' }),
    first.service.execute('dimmer', { brightness: 10 }, { source: 'test' }),
  ]);
  await first.service.execute('dimmer', { brightness: 42 }, { source: 'test' });
  const journal = journalLines(path.join(stateDir, 'devices.journal'));
  t.ok(journal.length >= 2, `changes were appended to the journal (${journal.length} lines)`);
  t.equal(document(), documentBefore, 'the document was not rewritten per change');
  // The "crash": the state folder as it is now, before any stop could flush anything.
  cpSync(stateDir, crashed, { recursive: true });
  // A power loss can tear the last append; the torn line is dropped, the rest replayed. (It lands right
  // after the last record, on the zeros the journal keeps ahead of its appends.)
  const crashedJournal = path.join(crashed, 'devices.journal');
  const fd = openSync(crashedJournal, 'r+');
  writeSync(fd, '{"id":"lamp","state":{"sta', readFileSync(crashedJournal).lastIndexOf(0x0a) + 1);
  closeSync(fd);

  const second = await startStack(t, { config, stateDir: crashed });
  t.same(second.service.get('lamp')?.state, { state: 'ON' });
  t.same(second.service.get('dimmer')?.state, { brightness: 42 }, 'the last acknowledged state wins');
  t.equal(readFileSync(crashedJournal, 'utf8').replaceAll('\0', ''), '', 'replayed and folded into the document (no record left, zeros at most)');
  t.match(JSON.parse(readFileSync(path.join(crashed, 'devices.json'), 'utf8')), { states: { lamp: { state: { state: 'ON' } }, dimmer: { state: { brightness: 42 } } } });
  await first.stop();
});

t.test('a journal write that failed is written again with its number: a newer state written meanwhile still wins the replay', async (t) => {
  const { stateDir, crashed } = stateAndCrashDirs(t);
  const config = lampAndDimmer();
  // A disk error cannot be had on demand here: the append holding `brightness 10` is held back and then
  // fails as a failing disk's would (EIO), after the next append, on a second slot, has succeeded.
  const { Journal } = await import('../runtime/store/journal.js');
  type JournalOf = import('../runtime/store/journal.js').Journal<import('../runtime/store/journal.js').JournalRecord>;
  const append = Journal.prototype.append;
  t.teardown(() => {
    Journal.prototype.append = append;
  });
  const isFirst = (record: unknown) => (record as { state?: { brightness?: number } }).state?.brightness === 10;
  let failFirst!: () => void;
  const firstMayFail = new Promise<void>((resolve) => {
    failFirst = resolve;
  });
  let secondDone!: () => void;
  const secondWritten = new Promise<void>((resolve) => {
    secondDone = resolve;
  });
  let failed = false;
  Journal.prototype.append = function (this: JournalOf, records) {
    if (!failed && records.some(isFirst)) {
      failed = true;
      return firstMayFail.then(() => {
        throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
      });
    }
    const written = append.call(this, records);
    if (records.some((r) => (r as { state?: { brightness?: number } }).state?.brightness === 20)) void written.then(secondDone);
    return written;
  };

  const first = await startStack(t, { config, stateDir });
  // Each device's answer waits for its earlier states' writes: after these, no write is in flight.
  await Promise.all([
    first.service.execute('lamp', { state: 'OFF' }, { source: 'test' }),
    first.service.execute('dimmer', { brightness: 5 }, { source: 'test' }),
  ]);
  // The device takes the second command once it answered the first, while the first's write is held.
  const answers = Promise.all([
    first.service.execute('dimmer', { brightness: 10 }, { source: 'test' }),
    first.service.execute('dimmer', { brightness: 20 }, { source: 'test' }),
  ]);
  await secondWritten;
  failFirst();
  const [ten, twenty] = await answers;
  t.same([ten.state, twenty.state], [{ brightness: 10 }, { brightness: 20 }], 'both commands answered, in order');
  // The failed record goes with the next write, after the newer one in the file.
  await first.service.execute('lamp', { state: 'ON' }, { source: 'test' });
  const lines = journalLines(path.join(stateDir, 'devices.journal'));
  // (The devices' first states, reported when their drivers start, come first.)
  const records = lines.map((line) => JSON.parse(line) as { seq: number; id: string; state: Record<string, unknown> }).slice(-3);
  t.same(
    records.map((r) => [r.id, r.state]),
    [
      ['dimmer', { brightness: 20 }],
      ['dimmer', { brightness: 10 }],
      ['lamp', { state: 'ON' }],
    ],
    'the file holds the older state after the newer one',
  );
  t.ok(records[1]!.seq < records[0]!.seq, 'the rewritten record kept its (older) number');
  cpSync(stateDir, crashed, { recursive: true });
  Journal.prototype.append = append;

  const second = await startStack(t, { config, stateDir: crashed });
  t.same(second.service.get('dimmer')?.state, { brightness: 20 }, 'replay follows the numbers, not the file');
  t.same(second.service.get('lamp')?.state, { state: 'ON' });
  await first.stop();
});

t.test('two journals take turns: states go on while the other is folded, and a copy taken at any moment replays to the acknowledged state', async (t) => {
  const { stateDir } = stateAndCrashDirs(t);
  const config = lampAndDimmer();
  // Fold every few records, so that the run folds again and again and copies catch folds half done.
  const first = await startStack(t, { config, stateDir, deps: { journalFoldAfter: 5 } });
  const copies: Array<{ dir: string; brightness: number; state: string }> = [];
  for (let i = 1; i <= 60; i++) {
    const state = i % 2 ? 'ON' : 'OFF';
    // The two devices change at once: their records share appends, and folds start between them.
    await Promise.all([
      first.service.execute('dimmer', { brightness: i }, { source: 'test' }),
      first.service.execute('lamp', { state }, { source: 'test' }),
    ]);
    if (i % 7 === 0) {
      const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-devices-copy-'));
      t.teardown(() => rmSync(dir, { recursive: true, force: true }));
      // Taken without a stop, while a fold may be under way.
      cpSync(stateDir, dir, { recursive: true });
      copies.push({ dir, brightness: i, state });
    }
  }
  t.ok(existsSync(path.join(stateDir, 'devices.journal.2')), 'the second journal was used');
  await first.stop();
  for (const copy of copies) {
    const again = await startStack(t, { config, stateDir: copy.dir, deps: { journalFoldAfter: 5 } });
    t.same(
      [again.service.get('dimmer')?.state, again.service.get('lamp')?.state],
      [{ brightness: copy.brightness }, { state: copy.state }],
      `the copy after command ${copy.brightness} has its states`,
    );
    t.same(journalLines(path.join(copy.dir, 'devices.journal')).concat(journalLines(path.join(copy.dir, 'devices.journal.2'))), [], 'replayed and folded at start');
    await again.stop();
  }
});

t.test('events, status section and the command schema', async (t) => {
  const stack = await startStack(t, {
    config: { devices: [{ id: 'lamp', driver: 'simulated', capabilities: ['switch'] }] },
  });
  const states: DeviceStateEvent[] = [];
  const registry: unknown[] = [];
  const errors: unknown[] = [];
  stack.tc.ctx.bus.on('device.state', (e) => states.push(e));
  stack.tc.ctx.bus.on('device.registry', (e) => registry.push(e));
  stack.tc.ctx.bus.on('device.error', (e) => errors.push(e));
  const result = await stack.service.execute('lamp', { state: 'TOGGLE' }, { source: 'agent', transaction: 'q' });
  t.same(result, { device: 'lamp', command: { state: 'ON' }, state: { state: 'ON' }, transaction: 'q' });
  t.match(states.at(-1), { id: 'lamp', changed: ['state'], source: 'agent' });
  await t.rejects(stack.service.execute('lamp', { state: 'DIM' }, { source: 'agent' }), { code: 'VALUE_OUT_OF_RANGE' });
  t.match(errors.at(-1), { id: 'lamp', code: 'VALUE_OUT_OF_RANGE', source: 'agent' });
  await t.rejects(stack.service.execute('ghost', { state: 'ON' }, { source: 'agent' }), { code: 'DEVICE_NOT_FOUND' });
  await stack.service.add({ id: 'fan', driver: 'simulated', capabilities: ['switch'] });
  await stack.service.rename('fan', 'Fan');
  await stack.service.remove('fan');
  t.same(registry, [
    { action: 'added', id: 'fan', name: 'fan' },
    { action: 'renamed', id: 'fan', name: 'Fan' },
    { action: 'removed', id: 'fan' },
  ]);
  const status = (await stack.tc.ctx.status.snapshot()).devices as Array<Record<string, unknown>>;
  t.match(status, [{ id: 'lamp', availability: 'online', state: { state: 'ON' }, last_error: { code: 'VALUE_OUT_OF_RANGE' } }]);
  t.match(stack.service.commandSchema('lamp'), { type: 'object', additionalProperties: false });
  t.throws(() => stack.service.commandSchema('ghost'), { code: 'DEVICE_NOT_FOUND' });
});

/** The journal's lines (without the zeros it keeps after them as room for the next appends). */
function journalLines(file: string): string[] {
  return readFileSync(file, 'utf8').split(/[\n\0]+/).filter(Boolean);
}
