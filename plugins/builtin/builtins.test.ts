/**
 * The compute, content-safety and iot-control built-ins, run by the real host as the agent would call
 * them (iot-control against a real DeviceService with simulated devices), plus content safety's
 * in-process API that the channels use.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { DeviceService } from '../../devices/device-service.js';
import { Broker } from '../../runtime/broker/broker.js';
import { makeTestContext } from '../../app/testing/test-context.js';
import { PluginHost } from '../host.js';
import { hasNestedQuantifier } from './content-safety/filter.js';
import { createContentSafety } from './content-safety/safety.js';

t.test('compute, content-safety and iot-control through the host', async (t) => {
  const tc = makeTestContext({
    config: {
      devices: [
        { id: 'lamp', driver: 'simulated', capabilities: ['switch'] },
        { id: 'light', driver: 'simulated', capabilities: ['dimmer'] },
      ],
    },
  });
  const broker = new Broker();
  await broker.start(tc.ctx);
  const devices = new DeviceService({ messaging: broker });
  await devices.start(tc.ctx);
  const host = new PluginHost({
    devices,
    messaging: broker,
    env: {},
    config: {
      allow: ['compute', 'content-safety', 'iot-control'],
      config: {
        compute: { timeout_ms: 1000, max_elements: 40_000 },
        'content-safety': {
          rules: [
            { id: 'rude', category: 'profanity', words: ['darn', 'heck'] },
            { id: 'codeword', category: 'internal', pattern: 'project\\s+x\\d+' },
          ],
          categories: { profanity: 'mask', internal: 'flag' },
          channels: { kiosk: { default_action: 'block' }, mqtt: { directions: ['output'] } },
        },
      },
    },
  });
  t.teardown(async () => {
    await host.stop();
    await devices.stop();
    await broker.stop();
    tc.cleanup();
  });
  await host.start(tc.ctx);
  t.same(host.problems(), [], 'the built-ins load without problems');

  await t.test('compute: expressions, units, statistics, limits', async (t) => {
    const ev = (expression: string) => host.call('compute', 'evaluate', { expression });
    t.match(await ev('sqrt(3^2 + 4^2)'), { text: '5', type: 'number', value: 5 });
    t.match(await ev('12 inch to cm'), { text: '30.48 cm', type: 'Unit', value: { unit: 'cm' } });
    t.match(await ev('det([1, 2; 3, 4])'), { value: -2 });
    t.match(await ev('inv([1, 2; 3, 4])'), { type: 'DenseMatrix', value: [[-2, 1], [1.5, -0.5]] });
    t.match(await host.call('compute', 'evaluate', { expression: 'pi', precision: 3 }), { text: '3.14' });
    t.match(await host.call('compute', 'convert', { value: 100, from: 'km/h', to: 'm/s' }), { unit: 'm / s', value: 27.77777777777778 });
    t.match(await host.call('compute', 'convert', { value: 20, from: 'degC', to: 'degF' }), { value: 68, unit: 'degF' });
    await t.rejects(host.call('compute', 'convert', { value: 1, from: 'kg', to: 'm' }), { code: 'PAYLOAD_INVALID', message: /Units do not match/ });
    t.match(await host.call('compute', 'statistics', { values: [1, 2, 2, 3, 4, 10] }), {
      count: 6,
      sum: 22,
      median: 2.5,
      mode: [2],
      quartiles: [2, 2.5, 3.75],
    });

    await t.rejects(ev('1 +'), { code: 'PAYLOAD_INVALID', message: /cannot parse/ });
    await t.rejects(ev('1+'.repeat(600) + '1'), { code: 'PAYLOAD_TOO_LARGE', message: /characters; the limit is 1000/ });
    await t.rejects(ev(`${'1+'.repeat(260)}1`), { code: 'PAYLOAD_TOO_LARGE', message: /parts; the limit is 500/ });
    await t.rejects(ev('zeros(1000, 1000)'), { code: 'PAYLOAD_TOO_LARGE', message: /zeros\(\) would have 1000000 elements/ });
    await t.rejects(ev('sum(range(1, 1e9))'), { code: 'PAYLOAD_TOO_LARGE' });
    await t.rejects(ev('import({x: 1}, {override: true})'), { code: 'FORBIDDEN' });
    await t.rejects(ev('evaluate("2+2")'), { code: 'FORBIDDEN' });
    await t.rejects(ev('createUnit("foo")'), { code: 'FORBIDDEN' });
    // 100 products of 200×200 matrices: ~800 M multiply-adds, many seconds in mathjs on any machine.
    await t.rejects(ev(`a = ones(200, 200); sum(${'a * '.repeat(100)}a)`), { code: 'DEADLINE_EXCEEDED', message: /longer than 1000 ms/ });
    t.match(await ev('2 + 2'), { value: 4 }, 'still answering after the deadline (no restart needed)');
    t.equal(host.list().find((p) => p.name === 'compute')?.figures.restarts, 0);
  });

  await t.test('content-safety: rules, categories, per-channel policy, recorded decisions', async (t) => {
    const check = (text: string, channel?: string, direction?: string) =>
      host.call('content-safety', 'check', { text, ...(channel ? { channel } : {}), ...(direction ? { direction } : {}) });
    t.match(await check('what a lovely day'), { action: 'allow', text: 'what a lovely day', matches: [] });
    t.match(await check('oh DARN it'), {
      action: 'mask',
      text: 'oh **** it',
      categories: ['profanity'],
      matches: [{ rule: 'rude', category: 'profanity', action: 'mask', start: 3, end: 7 }],
    });
    t.match(await check('darning socks'), { action: 'allow' }, 'whole words only');
    t.match(await check('ｄａｒｎ'), { action: 'mask' }, 'full-width letters are normalised first');
    t.match(await check('about Project  X42 today'), { action: 'flag', text: 'about Project  X42 today', categories: ['internal'] });
    t.match(await check('mail me at jane.doe@example.org'), { action: 'mask', text: 'mail me at ********************', categories: ['pii'] });
    t.match(await check('card 4111 1111 1111 1111 please'), { action: 'mask', categories: ['pii'] });
    t.match(await check('order 1234 5678 9012 3456'), { action: 'allow' }, 'a number failing the Luhn check is not a card');
    t.match(await check('my key is sk-abcdefghijklmnopqrstuvwxyz123456'), { action: 'block', text: null, categories: ['secret'] });
    t.match(await check('oh heck', 'kiosk'), { action: 'block', text: null }, 'the kiosk channel blocks what others mask');
    t.match(await check('oh heck', 'mqtt', 'input'), { action: 'allow' }, 'mqtt checks outputs only');
    t.match(await check('oh heck', 'mqtt', 'output'), { action: 'mask' });
    t.match(await check('x'.repeat(70_000)), { action: 'block', reason: 'too_large' });

    const recorded = (await host.call('content-safety', 'decisions', { limit: 3 })) as {
      recent: { action: string; channel: string; digest: string }[];
      counts: { by_action: Record<string, number> };
    };
    t.equal(recorded.recent.length, 3);
    t.match(recorded.recent.at(-1), { action: 'block', channel: 'default', categories: ['too_large'] });
    t.same(recorded.counts.by_action, { mask: 5, flag: 1, block: 3 });
    const file = path.join(host.dataDirOf('content-safety')!, 'decisions.jsonl');
    t.notOk(readFileSync(file, 'utf8').includes('darn'), 'the record never holds the text');

    // The channels' in-process API over the same config and file.
    const safety = createContentSafety({ config: host.configOf('content-safety'), dataDir: host.dataDirOf('content-safety') });
    t.match(safety.check('heck no', { channel: 'websocket', direction: 'input' }), { action: 'mask', text: '**** no' });
    t.equal(safety.decisions(1000).counts.by_action.mask, 6, 'one decision log for the plugin and the channels');
  });

  await t.test('iot-control: devices as tools within the caller permissions', async (t) => {
    const agent = { id: 'agent', source: 'agent' };
    const listed = (await host.call('iot-control', 'list_devices', {}, { caller: agent })) as { id: string }[];
    t.same(listed.map((d) => d.id).sort(), ['lamp', 'light']);
    t.match(await host.call('iot-control', 'get_state', { id: 'lamp' }), { id: 'lamp', availability: 'online', state: { state: 'OFF' } });
    t.match(await host.call('iot-control', 'command_schema', { id: 'light' }), { type: 'object', properties: { brightness: {} } });
    const events: unknown[] = [];
    tc.ctx.bus.on('device.state', (e) => events.push(e));
    t.match(await host.call('iot-control', 'send_command', { id: 'light', command: { brightness: 40 } }, { caller: agent, transaction: 'a1' }), {
      device: 'light',
      state: { brightness: 40 },
      transaction: 'a1',
    });
    t.match(events.at(-1), { id: 'light', source: 'agent' }, 'executed on the device path with the caller as source');
    await t.rejects(host.call('iot-control', 'send_command', { id: 'light', command: { brightness: 400 } }), { code: 'VALUE_OUT_OF_RANGE' });
    await t.rejects(host.call('iot-control', 'send_command', { id: 'ghost', command: { state: 'ON' } }), { code: 'DEVICE_NOT_FOUND' });
    await t.rejects(host.call('iot-control', 'send_command', { id: 'lamp', command: {} }), { code: 'PAYLOAD_INVALID' });
    await t.rejects(host.call('iot-control', 'send_command', { id: 'lamp', command: { state: 'ON' } }, { caller: { devices: ['light'] } }), {
      code: 'FORBIDDEN',
    });
    t.same(
      ((await host.call('iot-control', 'list_devices', {}, { caller: { devices: ['light'] } })) as { id: string }[]).map((d) => d.id),
      ['light'],
      'a caller limited to light sees only light',
    );
    t.same(devices.get('lamp')?.state, { state: 'OFF' }, 'refused commands changed nothing');
  });
});

t.test('content-safety config: bad rules are refused with a clear error', async (t) => {
  t.throws(() => createContentSafety({ config: { rules: [{ category: 'x', pattern: '(a+)+$' }] } }), {
    code: 'CONFIG_INVALID',
    message: /exponential time/,
  });
  t.throws(() => createContentSafety({ config: { rules: [{ category: 'x', pattern: '([' }] } }), { message: /invalid pattern/ });
  t.throws(() => createContentSafety({ config: { rules: [{ category: 'x' }] } }), { message: /needs words or a pattern/ });
  t.throws(() => createContentSafety({ config: { default_action: 'explode' } }), { code: 'CONFIG_INVALID' });
  t.ok(hasNestedQuantifier('(\\w+\\s?)*'));
  t.notOk(hasNestedQuantifier('\\b[a-z]+@[a-z]+\\.[a-z]{2,}\\b'));
  t.notOk(hasNestedQuantifier('(ab)+'));
  const noRecord = createContentSafety({ config: { record: false } });
  t.match(noRecord.check('sk-abcdefghijklmnopqrstuvwxyz0123'), { action: 'block' });
  t.same(noRecord.decisions().recent, []);
  t.notOk(existsSync('decisions.jsonl'));
});
