/**
 * Home Assistant MQTT discovery: one retained config message per entity on
 * `homeassistant/<component>/clawbox_<device>[_<reading>]/config`, pointing Home Assistant at the state,
 * command and availability topics of the topic API. Re-sent when Home Assistant announces itself on
 * `homeassistant/status` = online; an empty retained payload removes the entity when a device is removed.
 * Field names follow https://www.home-assistant.io/integrations/{light,switch,sensor,climate,cover}.mqtt/
 */
import type { Logger } from '../runtime/logging.js';
import type { Messaging } from '../runtime/messaging.js';
import { thermostatRange } from './capabilities.js';
import type { DeviceDefinition } from './model.js';

export const DISCOVERY_PREFIX = 'homeassistant';

export interface DiscoveryMessage {
  topic: string;
  payload: Record<string, unknown>;
}

/** The discovery messages for one device (light or switch, climate, cover, one sensor per reading). */
export function discoveryMessages(def: DeviceDefinition, base: string, version: string): DiscoveryMessage[] {
  const stateTopic = `${base}/${def.id}`;
  const commandTopic = `${base}/${def.id}/set`;
  const objectId = `clawbox_${def.id}`;
  const common = (uniqueId: string) => ({
    unique_id: uniqueId,
    object_id: uniqueId,
    availability: [{ topic: `${base}/${def.id}/availability` }, { topic: `${base}/bridge/state` }],
    availability_mode: 'all',
    payload_available: 'online',
    payload_not_available: 'offline',
    device: {
      identifiers: [objectId],
      name: def.name,
      manufacturer: 'clawbox',
      model: `${def.driver} device`,
      sw_version: version,
    },
    origin: { name: 'clawbox', sw_version: version },
  });
  const has = (type: string) => def.capabilities.some((c) => c.type === type);
  const out: DiscoveryMessage[] = [];

  if (has('dimmer')) {
    out.push({
      topic: `${DISCOVERY_PREFIX}/light/${objectId}/config`,
      payload: {
        ...common(objectId),
        name: null,
        schema: 'json',
        state_topic: stateTopic,
        command_topic: commandTopic,
        brightness: true,
        brightness_scale: 100,
        supported_color_modes: ['brightness'],
      },
    });
  } else if (has('switch')) {
    out.push({
      topic: `${DISCOVERY_PREFIX}/switch/${objectId}/config`,
      payload: {
        ...common(objectId),
        name: null,
        state_topic: stateTopic,
        command_topic: commandTopic,
        value_template: '{{ value_json.state }}',
        payload_on: '{"state":"ON"}',
        payload_off: '{"state":"OFF"}',
        state_on: 'ON',
        state_off: 'OFF',
      },
    });
  }
  for (const cap of def.capabilities) {
    if (cap.type === 'thermostat') {
      const { min, max, step, modes } = thermostatRange(cap);
      out.push({
        topic: `${DISCOVERY_PREFIX}/climate/${objectId}/config`,
        payload: {
          ...common(objectId),
          name: null,
          modes,
          mode_command_topic: commandTopic,
          mode_command_template: '{"mode": "{{ value }}"}',
          mode_state_topic: stateTopic,
          mode_state_template: '{{ value_json.mode }}',
          temperature_command_topic: commandTopic,
          temperature_command_template: '{"target_temperature": {{ value }}}',
          temperature_state_topic: stateTopic,
          temperature_state_template: '{{ value_json.target_temperature }}',
          current_temperature_topic: stateTopic,
          current_temperature_template: '{{ value_json.current_temperature }}',
          min_temp: min,
          max_temp: max,
          temp_step: step,
          temperature_unit: 'C',
        },
      });
    }
    if (cap.type === 'cover') {
      out.push({
        topic: `${DISCOVERY_PREFIX}/cover/${objectId}/config`,
        payload: {
          ...common(objectId),
          name: null,
          command_topic: commandTopic,
          payload_open: '{"state":"OPEN"}',
          payload_close: '{"state":"CLOSE"}',
          payload_stop: '{"state":"STOP"}',
          state_topic: stateTopic,
          value_template: '{{ value_json.state }}',
          state_open: 'OPEN',
          state_closed: 'CLOSED',
          state_opening: 'OPENING',
          state_closing: 'CLOSING',
          state_stopped: 'STOPPED',
          position_topic: stateTopic,
          position_template: '{{ value_json.position }}',
          set_position_topic: commandTopic,
          set_position_template: '{"position": {{ position }}}',
          position_open: 100,
          position_closed: 0,
        },
      });
    }
    if (cap.type === 'sensor') {
      for (const reading of cap.readings) {
        const uniqueId = `${objectId}_${reading.property}`;
        out.push({
          topic: `${DISCOVERY_PREFIX}/sensor/${uniqueId}/config`,
          payload: {
            ...common(uniqueId),
            name: cap.readings.length > 1 || out.length > 0 ? reading.property.replaceAll('_', ' ') : null,
            state_topic: stateTopic,
            value_template: `{{ value_json.${reading.property} }}`,
            state_class: 'measurement',
            ...(reading.unit ? { unit_of_measurement: reading.unit } : {}),
            ...(reading.device_class ? { device_class: reading.device_class } : {}),
          },
        });
      }
    }
  }
  return out;
}

export class HaDiscovery {
  #definitions: () => DeviceDefinition[] = () => [];
  #unsubscribe: (() => Promise<void>) | null = null;
  /** Topics published per device, so a removal clears exactly those. */
  readonly #published = new Map<string, string[]>();

  constructor(
    private readonly messaging: Messaging,
    private readonly version: string,
    private readonly logger: Logger,
  ) {}

  async start(definitions: () => DeviceDefinition[]): Promise<void> {
    this.#definitions = definitions;
    this.#unsubscribe = await this.messaging.subscribe(`${DISCOVERY_PREFIX}/status`, (_topic, payload) => {
      if (payload.toString('utf8').trim() !== 'online') return;
      this.logger.info('Home Assistant came online; re-sending discovery');
      void this.publishAll();
    });
  }

  async stop(): Promise<void> {
    await this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  async publishAll(): Promise<void> {
    for (const def of this.#definitions()) await this.publishDevice(def);
  }

  async publishDevice(def: DeviceDefinition): Promise<void> {
    const messages = discoveryMessages(def, this.messaging.baseTopic, this.version);
    const topics = messages.map((m) => m.topic);
    // A capability change (device re-added) may drop an entity: clear topics no longer in use.
    for (const stale of (this.#published.get(def.id) ?? []).filter((t) => !topics.includes(t))) {
      await this.#send(stale, '');
    }
    this.#published.set(def.id, topics);
    for (const message of messages) await this.#send(message.topic, JSON.stringify(message.payload));
  }

  async clearDevice(def: DeviceDefinition): Promise<void> {
    const topics = this.#published.get(def.id) ?? discoveryMessages(def, this.messaging.baseTopic, this.version).map((m) => m.topic);
    for (const topic of topics) await this.#send(topic, '');
    this.#published.delete(def.id);
  }

  async #send(topic: string, payload: string): Promise<void> {
    try {
      await this.messaging.publish(topic, payload, { retain: true, qos: 0 });
    } catch (error) {
      this.logger.warn({ err: error, topic }, 'could not publish Home Assistant discovery');
    }
  }
}
