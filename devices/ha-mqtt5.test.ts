/**
 * Home Assistant's MQTT integration connects with MQTT 5. The same exchange with an MQTT 5 client
 * (mqtt.js, protocolVersion 5): subscribe to `homeassistant/#` and `clawbox/#`, get the retained discovery
 * configs, send the birth message `homeassistant/status` = online, get the configs again, and switch a
 * device through its command topic.
 */
import mqtt from 'mqtt';
import t from 'tap';
import { demoDevices } from './demo.js';
import { startStack } from './fixtures/stack.js';

t.test('an MQTT 5 client in the role of Home Assistant: discovery, birth, commands', async (t) => {
  const stack = await startStack(t, { config: { devices: demoDevices() } });
  const ha = await mqtt.connectAsync(stack.url, {
    protocolVersion: 5,
    clientId: 'homeassistant-test',
    reconnectPeriod: 0,
    connectTimeout: 5000,
    properties: { sessionExpiryInterval: 0 },
    will: { topic: 'homeassistant/status', payload: Buffer.from('offline'), qos: 1, retain: false },
  });
  t.teardown(() => ha.endAsync(true));
  const seen: { topic: string; payload: string; retain: boolean; at: number }[] = [];
  const waiters = new Set<() => void>();
  ha.on('message', (topic, payload, packet) => {
    seen.push({ topic, payload: payload.toString(), retain: packet.retain, at: seen.length });
    for (const wake of waiters) wake();
  });
  const waitFor = (match: (m: (typeof seen)[number]) => boolean, what: string, from = 0): Promise<(typeof seen)[number]> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = seen.slice(from).find(match);
        if (hit) {
          waiters.delete(wake);
          clearTimeout(timer);
          resolve(hit);
        }
        return Boolean(hit);
      };
      const wake = (): void => {
        check();
      };
      const timer = setTimeout(() => {
        waiters.delete(wake);
        reject(new Error(`no ${what}`));
      }, 15_000);
      if (!check()) waiters.add(wake);
    });

  await ha.subscribeAsync(['homeassistant/#', 'clawbox/#'], { qos: 1 });
  const lampConfig = 'homeassistant/switch/clawbox_lamp/config';
  const retained = await waitFor((m) => m.topic === lampConfig, 'retained discovery config');
  t.ok(retained.retain, 'discovery arrives retained on subscribe');
  await waitFor((m) => m.topic === 'clawbox/lamp/availability' && m.payload === 'online', 'lamp availability');

  const mark = seen.length;
  await ha.publishAsync('homeassistant/status', 'online', { qos: 1 });
  const again = await waitFor((m) => m.topic === lampConfig, 'discovery re-sent after the birth message', mark);
  t.same(JSON.parse(again.payload), JSON.parse(retained.payload), 'the same config, sent again after birth');

  const config = JSON.parse(retained.payload) as { command_topic: string; state_topic: string };
  const before = seen.length;
  await ha.publishAsync(config.command_topic, 'ON', { qos: 1 });
  const state = await waitFor((m) => m.topic === config.state_topic && JSON.parse(m.payload).state === 'ON', 'state after the command', before);
  t.ok(state, 'the command through the discovered command topic switched the device');
});
