/**
 * mqtt-remote: devices that already speak MQTT, on the embedded broker or an upstream one.
 *  - Tasmota (topic T): cmnd/T/POWER ON -> stat/T/RESULT {"POWER":"ON"} / stat/T/POWER; cmnd/T/Dimmer n;
 *    cmnd/T/STATE -> RESULT with the whole state; tele/T/STATE and tele/T/SENSOR reports; tele/T/LWT
 *    Online/Offline is the availability.
 *  - zigbee2mqtt (base Z, friendly name N): Z/N/set {json} -> Z/N {state}; Z/N/get; Z/N/availability.
 *    Brightness is 0-254 there and 0-100 here; thermostat properties use z2m's names.
 * A command is confirmed by the device's own report of the properties it set, within the deadline.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { ClawboxError } from '../../runtime/errors.js';
import type { Messaging } from '../../runtime/messaging.js';
import type { DeviceDriver, DriverContext, DriverFactory } from '../driver.js';
import type { Availability, DeviceCommand, DeviceState, StateValue } from '../model.js';
import { AvailabilityState, SerialQueue, timeoutError } from './common.js';

export interface MqttRemoteOptions {
  protocol: 'tasmota' | 'zigbee2mqtt';
  topic: string;
  base_topic?: string;
  url?: string;
}

/** How one protocol names things on the wire. */
interface Mapping {
  subscriptions: string[];
  /** Messages to send for a command. */
  commandMessages(command: DeviceCommand): Array<{ topic: string; payload: string }>;
  readMessage(): { topic: string; payload: string };
  /** A message from the device: state it carries and/or availability. */
  parse(topic: string, payload: string): { state?: DeviceState; availability?: Availability };
}

function parseJson(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Finds `name` (any case) in a Tasmota JSON, also one level down (tele/SENSOR nests by sensor model). */
function findKey(json: Record<string, unknown>, name: string): unknown {
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(json)) if (key.toLowerCase() === lower) return value;
  for (const value of Object.values(json)) {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      for (const [key, inner] of Object.entries(value)) if (key.toLowerCase() === lower) return inner;
    }
  }
  return undefined;
}

function tasmotaMapping(topic: string, stateProperties: string[]): Mapping {
  const fromJson = (json: Record<string, unknown>): DeviceState => {
    const state: DeviceState = {};
    const power = json.POWER ?? json.POWER1;
    if (power === 'ON' || power === 'OFF') state.state = power;
    const dimmer = json.Dimmer;
    if (typeof dimmer === 'number') state.brightness = dimmer;
    for (const property of stateProperties) {
      if (property === 'state' || property === 'brightness') continue;
      const value = findKey(json, property);
      if (typeof value === 'number' || typeof value === 'string') state[property] = value;
    }
    return state;
  };
  return {
    subscriptions: [`stat/${topic}/+`, `tele/${topic}/+`],
    commandMessages: (command) => {
      const out: Array<{ topic: string; payload: string }> = [];
      // Dimmer first: on Tasmota it also switches the light on, and POWER must have the last word.
      if (command.brightness !== undefined) out.push({ topic: `cmnd/${topic}/Dimmer`, payload: String(command.brightness) });
      if (command.state !== undefined) out.push({ topic: `cmnd/${topic}/POWER`, payload: String(command.state) });
      for (const [key, value] of Object.entries(command)) {
        if (key !== 'state' && key !== 'brightness') out.push({ topic: `cmnd/${topic}/${key}`, payload: String(value) });
      }
      return out;
    },
    readMessage: () => ({ topic: `cmnd/${topic}/STATE`, payload: '' }),
    parse: (t, payload) => {
      const kind = t.slice(t.lastIndexOf('/') + 1);
      if (t.startsWith('tele/') && kind === 'LWT') {
        return { availability: payload === 'Online' ? 'online' : 'offline' };
      }
      if (t.startsWith('stat/') && /^POWER1?$/.test(kind)) {
        return payload === 'ON' || payload === 'OFF' ? { state: { state: payload } } : {};
      }
      if (kind === 'RESULT' || kind === 'STATE' || kind === 'SENSOR') {
        const json = parseJson(payload);
        return json ? { state: fromJson(json) } : {};
      }
      return {};
    },
  };
}

/** clawbox property -> zigbee2mqtt property, with value conversion both ways. */
const Z2M_NAMES: Record<string, string> = {
  target_temperature: 'occupied_heating_setpoint',
  mode: 'system_mode',
  current_temperature: 'local_temperature',
};

function z2mMapping(base: string, name: string, stateProperties: string[]): Mapping {
  const toWire = (key: string, value: StateValue): [string, StateValue] =>
    key === 'brightness' && typeof value === 'number' ? ['brightness', Math.round((value * 254) / 100)] : [Z2M_NAMES[key] ?? key, value];
  const fromWire = (json: Record<string, unknown>): DeviceState => {
    const state: DeviceState = {};
    for (const property of stateProperties) {
      const value = json[Z2M_NAMES[property] ?? property];
      if (property === 'brightness' && typeof value === 'number') state.brightness = Math.round((value * 100) / 254);
      else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') state[property] = value;
    }
    return state;
  };
  const stateTopic = `${base}/${name}`;
  return {
    subscriptions: [stateTopic, `${stateTopic}/availability`],
    commandMessages: (command) => [
      { topic: `${stateTopic}/set`, payload: JSON.stringify(Object.fromEntries(Object.entries(command).map(([k, v]) => toWire(k, v)))) },
    ],
    readMessage: () => ({
      topic: `${stateTopic}/get`,
      payload: JSON.stringify(Object.fromEntries(stateProperties.map((p) => [Z2M_NAMES[p] ?? p, '']))),
    }),
    parse: (t, payload) => {
      if (t.endsWith('/availability')) {
        const json = parseJson(payload);
        const value = json ? json.state : payload;
        return { availability: value === 'online' ? 'online' : 'offline' };
      }
      const json = parseJson(payload);
      return json ? { state: fromWire(json) } : {};
    },
  };
}

/** An upstream broker as a Messaging (reconnects on its own). */
function upstream(url: string, onConnection: (up: boolean) => void): { messaging: Messaging; close(): Promise<void> } {
  const client: MqttClient = mqtt.connect(url, { reconnectPeriod: 2000, connectTimeout: 5000 });
  const handlers = new Set<{ filter: string; handler: (topic: string, payload: Buffer) => void }>();
  client.on('connect', () => onConnection(true));
  client.on('close', () => onConnection(false));
  client.on('error', () => {});
  client.on('message', (topic, payload) => {
    for (const h of handlers) if (matches(h.filter, topic)) h.handler(topic, payload);
  });
  return {
    messaging: {
      baseTopic: '',
      publish: async (topic, payload, options) => {
        await client.publishAsync(topic, payload, { qos: options?.qos ?? 0, retain: options?.retain ?? false });
      },
      subscribe: async (filter, handler) => {
        const entry = { filter, handler };
        handlers.add(entry);
        await client.subscribeAsync(filter);
        return async () => {
          handlers.delete(entry);
        };
      },
    },
    close: () => client.endAsync(true),
  };
}

function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

interface Pending {
  expect: DeviceState;
  seen: DeviceState;
  resolve: (state: DeviceState) => void;
}

class MqttRemoteDriver implements DeviceDriver {
  readonly #o: MqttRemoteOptions;
  readonly #availability: AvailabilityState;
  readonly #mapping: Mapping;
  readonly #queue = new SerialQueue();
  readonly #unsubscribe: Array<() => Promise<void>> = [];
  #messaging: Messaging;
  #upstream: { close(): Promise<void> } | null = null;
  #pending: Pending | null = null;
  #linkUp = true;
  #deviceUp = false;

  constructor(private readonly ctx: DriverContext) {
    this.#o = ctx.definition.options.remote as MqttRemoteOptions;
    this.#availability = new AvailabilityState(ctx);
    const stateProperties = ctx.definition.capabilities.flatMap((c) => propertiesOf(c));
    this.#mapping =
      this.#o.protocol === 'tasmota'
        ? tasmotaMapping(this.#o.topic, stateProperties)
        : z2mMapping(this.#o.base_topic ?? 'zigbee2mqtt', this.#o.topic, stateProperties);
    this.#messaging = ctx.messaging;
  }

  get availability(): Availability {
    return this.#availability.value;
  }

  async start(): Promise<void> {
    if (this.#o.url) {
      this.#linkUp = false;
      const link = upstream(this.#o.url, (up) => {
        this.#linkUp = up;
        this.#updateAvailability(up ? undefined : 'upstream broker unreachable');
      });
      this.#upstream = link;
      this.#messaging = link.messaging;
    }
    for (const filter of this.#mapping.subscriptions) {
      this.#unsubscribe.push(await this.#messaging.subscribe(filter, (topic, payload) => this.#onMessage(topic, payload)));
    }
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.#unsubscribe.splice(0).map((u) => u()));
    await this.#upstream?.close();
    this.#upstream = null;
    this.#deviceUp = false;
    this.#availability.set('offline', 'stopped');
  }

  async execute(command: DeviceCommand, timeoutMs: number): Promise<DeviceState> {
    this.#availability.assertOnline();
    const expect = expected(command, this.ctx.definition.capabilities.some((c) => c.type === 'cover'));
    return this.#queue.run(() =>
      this.#exchange(this.#mapping.commandMessages(command), expect, timeoutMs, 'the command'),
    );
  }

  async read(properties: readonly string[] | null, timeoutMs: number): Promise<DeviceState> {
    this.#availability.assertOnline();
    const state = await this.#queue.run(() => this.#exchange([this.#mapping.readMessage()], {}, timeoutMs, 'the read'));
    if (!properties) return state;
    return Object.fromEntries(properties.filter((p) => p in state).map((p) => [p, state[p] ?? null]));
  }

  /** Publishes and waits until the device has reported every expected property (any report for a read). */
  #exchange(messages: Array<{ topic: string; payload: string }>, expect: DeviceState, timeoutMs: number, what: string) {
    return new Promise<DeviceState>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending = null;
        reject(timeoutError(this.ctx.definition.id, what, timeoutMs));
      }, timeoutMs);
      this.#pending = {
        expect,
        seen: {},
        resolve: (state) => {
          clearTimeout(timer);
          this.#pending = null;
          resolve(state);
        },
      };
      for (const m of messages) {
        this.#messaging.publish(m.topic, m.payload, { qos: 0 }).catch((error: Error) => {
          clearTimeout(timer);
          this.#pending = null;
          reject(new ClawboxError('DEVICE_UNAVAILABLE', `${this.ctx.definition.id}: ${error.message}`));
        });
      }
    });
  }

  #onMessage(topic: string, payload: Buffer): void {
    const { state, availability } = this.#mapping.parse(topic, payload.toString('utf8'));
    if (availability) {
      this.#deviceUp = availability === 'online';
      this.#updateAvailability(availability === 'offline' ? 'the device says offline' : undefined);
      if (!this.#deviceUp && this.#pending) this.#pending = null;
    }
    if (!state || Object.keys(state).length === 0) return;
    // zigbee2mqtt publishes no availability unless enabled: a state message means the device is there.
    if (this.#o.protocol === 'zigbee2mqtt' && !this.#deviceUp && !availability) {
      this.#deviceUp = true;
      this.#updateAvailability();
    }
    const pending = this.#pending;
    if (pending) {
      Object.assign(pending.seen, state);
      const done = Object.entries(pending.expect).every(([key, value]) => pending.seen[key] === value);
      if (done) pending.resolve({ ...pending.seen });
    }
    this.ctx.report(state);
  }

  #updateAvailability(reason?: string): void {
    this.#availability.set(this.#linkUp && this.#deviceUp ? 'online' : 'offline', reason);
  }
}

function propertiesOf(cap: DriverContext['definition']['capabilities'][number]): string[] {
  switch (cap.type) {
    case 'switch':
      return ['state'];
    case 'dimmer':
      return ['brightness'];
    case 'sensor':
      return cap.readings.map((r) => r.property);
    case 'thermostat':
      return ['target_temperature', 'mode', 'current_temperature'];
    case 'cover':
      return ['state', 'position'];
  }
}

/** The values a confirming report must carry (a cover's moves are confirmed by any state report). */
function expected(command: DeviceCommand, cover: boolean): DeviceState {
  const out: DeviceState = { ...command };
  if (cover) delete out.state;
  return out;
}

export const createMqttRemoteDriver: DriverFactory = (ctx) => new MqttRemoteDriver(ctx);
