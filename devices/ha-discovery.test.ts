/**
 * Home Assistant discovery: topics, retained configs checked against the fields Home Assistant documents
 * per component (https://www.home-assistant.io/integrations/<component>.mqtt/), re-sent on birth, cleared
 * on removal.
 */
import t from 'tap';
import { demoDevices } from './demo.js';
import { connectClient, json, startStack } from './fixtures/stack.js';

const COMMON = [
  'availability', 'availability_mode', 'availability_template', 'availability_topic', 'device', 'enabled_by_default',
  'encoding', 'entity_category', 'icon', 'json_attributes_template', 'json_attributes_topic', 'name', 'object_id',
  'origin', 'payload_available', 'payload_not_available', 'qos', 'unique_id',
];
const DOCUMENTED: Record<string, { required: string[]; optional: string[] }> = {
  light: {
    required: ['command_topic', 'schema'],
    optional: ['brightness', 'brightness_scale', 'state_topic', 'supported_color_modes', 'optimistic', 'retain', 'effect', 'effect_list', 'flash_time_long', 'flash_time_short', 'transition'],
  },
  switch: {
    required: ['command_topic'],
    optional: ['state_topic', 'value_template', 'payload_on', 'payload_off', 'state_on', 'state_off', 'optimistic', 'retain', 'device_class', 'command_template'],
  },
  sensor: {
    required: ['state_topic'],
    optional: ['value_template', 'unit_of_measurement', 'device_class', 'state_class', 'expire_after', 'force_update', 'suggested_display_precision'],
  },
  climate: {
    required: [],
    optional: ['modes', 'mode_command_topic', 'mode_command_template', 'mode_state_topic', 'mode_state_template', 'temperature_command_topic', 'temperature_command_template', 'temperature_state_topic', 'temperature_state_template', 'current_temperature_topic', 'current_temperature_template', 'min_temp', 'max_temp', 'temp_step', 'temperature_unit', 'precision', 'optimistic', 'retain'],
  },
  cover: {
    required: [],
    optional: ['command_topic', 'payload_open', 'payload_close', 'payload_stop', 'state_topic', 'value_template', 'state_open', 'state_closed', 'state_opening', 'state_closing', 'state_stopped', 'position_topic', 'position_template', 'set_position_topic', 'set_position_template', 'position_open', 'position_closed', 'device_class', 'optimistic', 'retain'],
  },
};

t.test('every demo device is discovered with documented fields only, and re-sent on birth', async (t) => {
  const stack = await startStack(t, { config: { devices: demoDevices() } });
  const c = await connectClient(t, stack.url);
  await c.subscribe('homeassistant/+/+/config');
  const expected = [
    'homeassistant/switch/clawbox_lamp/config',
    'homeassistant/light/clawbox_light/config',
    'homeassistant/climate/clawbox_thermostat/config',
    'homeassistant/sensor/clawbox_temperature_temperature/config',
    'homeassistant/sensor/clawbox_temperature_humidity/config',
    'homeassistant/cover/clawbox_cover/config',
  ];
  for (const topic of expected) await c.waitFor(topic, () => true, undefined, true);
  const configs = c.received.filter((m) => m.topic.endsWith('/config'));
  t.same(configs.map((m) => m.topic).sort(), [...expected].sort());
  const uniqueIds = new Set<string>();
  for (const message of configs) {
    t.ok(message.retain, `${message.topic} is retained`);
    const component = message.topic.split('/')[1]!;
    const doc = DOCUMENTED[component]!;
    const body = json(message.payload);
    for (const key of doc.required) t.ok(key in body, `${component} has ${key}`);
    const known = [...COMMON, ...doc.required, ...doc.optional];
    const unknown = Object.keys(body).filter((k) => !known.includes(k));
    t.same(unknown, [], `${message.topic}: only documented keys`);
    t.type(body.unique_id, 'string');
    uniqueIds.add(body.unique_id as string);
    t.match(body.device, { identifiers: [/^clawbox_/], manufacturer: 'clawbox' });
    t.match(body.availability, [{ topic: /^clawbox\/[a-z]+\/availability$/ }, { topic: 'clawbox/bridge/state' }]);
    for (const [key, value] of Object.entries(body)) {
      if (key.endsWith('_topic') && typeof value === 'string') t.match(value, /^clawbox\/[a-z]+(\/set)?$/, key);
    }
  }
  t.equal(uniqueIds.size, configs.length, 'unique ids are unique');

  // A JSON light: what Home Assistant sends on its command topic is a valid command.
  const light = json(configs.find((m) => m.topic.includes('/light/'))!.payload);
  await stack.service.execute('light', { state: 'ON', brightness: 55 }, { source: 'test' });
  t.equal(light.command_topic, 'clawbox/light/set');
  const cover = json(configs.find((m) => m.topic.includes('/cover/'))!.payload);
  await stack.service.execute('cover', json(cover.payload_close as string), { source: 'test' });
  t.equal(stack.service.get('cover')?.state.state, 'CLOSED');

  c.clear();
  await c.publish('homeassistant/status', 'online');
  for (const topic of expected) await c.waitFor(topic, () => true, undefined, true);
  t.pass('discovery re-sent when Home Assistant came online');

  const cleared = c.waitFor('homeassistant/switch/clawbox_lamp/config', (p) => p === '');
  await stack.service.remove('lamp');
  await cleared;
  t.pass('removal clears the entity');
});
