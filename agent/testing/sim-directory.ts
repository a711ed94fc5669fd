/**
 * A simulated device directory for agent tests: the same capability shapes and command schemas as the
 * device layer (switch, dimmer, sensor, thermostat, cover), state kept in memory, every executed command
 * recorded. It implements the agent's DeviceDirectory interface exactly as the adapted DeviceService would.
 */
import type { AgentCapability, AgentDevice, DeviceDirectory, JsonSchema, StateValue } from '../directory.js';

const percent = { type: 'integer', minimum: 0, maximum: 100 } as const;

function capabilityCommands(cap: AgentCapability): Record<string, JsonSchema> {
  switch (cap.type) {
    case 'switch':
      return { state: { enum: ['ON', 'OFF', 'TOGGLE'], description: 'Power: ON, OFF or TOGGLE.' } };
    case 'dimmer':
      return { brightness: { ...percent, description: 'Brightness in percent, 0-100.' } };
    case 'thermostat': {
      const min = (cap.min as number | undefined) ?? 5;
      const max = (cap.max as number | undefined) ?? 30;
      const modes = (cap.modes as string[] | undefined) ?? ['off', 'heat'];
      return {
        target_temperature: { type: 'number', minimum: min, maximum: max, multipleOf: 0.5, description: `Target temperature, ${min}-${max}.` },
        mode: { enum: modes, description: `Mode: ${modes.join(', ')}.` },
      };
    }
    case 'cover':
      return {
        state: { enum: ['OPEN', 'CLOSE', 'STOP'], description: 'Move: OPEN, CLOSE or STOP.' },
        position: { ...percent, description: 'Position in percent, 0 closed - 100 open.' },
      };
    default:
      return {};
  }
}

export function commandSchemaFor(device: AgentDevice): JsonSchema | undefined {
  const properties = Object.assign({}, ...device.capabilities.map(capabilityCommands)) as Record<string, JsonSchema>;
  if (Object.keys(properties).length === 0) return undefined;
  return { type: 'object', properties, additionalProperties: false, minProperties: 1 };
}

export const HOME: AgentDevice[] = [
  { id: 'kitchen_lamp', name: 'Kitchen Lamp', capabilities: [{ type: 'switch' }, { type: 'dimmer' }], state: { state: 'OFF', brightness: 0 } },
  { id: 'hall_light', name: 'Hall Light', aliases: ['corridor light'], capabilities: [{ type: 'switch' }], state: { state: 'ON' } },
  { id: 'desk_fan', name: 'Desk Fan', capabilities: [{ type: 'switch' }], state: { state: 'OFF' } },
  {
    id: 'living_room_sensor',
    name: 'Living Room Sensor',
    capabilities: [
      {
        type: 'sensor',
        readings: [
          { property: 'temperature', unit: '°C', device_class: 'temperature' },
          { property: 'humidity', unit: '%', device_class: 'humidity' },
        ],
      },
    ],
    state: { temperature: 21.5, humidity: 40 },
  },
  {
    id: 'thermostat',
    name: 'Bedroom Thermostat',
    aliases: ['heating'],
    capabilities: [{ type: 'thermostat', min: 5, max: 30, modes: ['off', 'heat', 'auto', 'fan_only'] }],
    state: { target_temperature: 19, mode: 'heat', current_temperature: 18.5 },
  },
  { id: 'garage_door', name: 'Garage Door', capabilities: [{ type: 'cover' }], state: { state: 'CLOSED', position: 0 } },
  { id: 'office_blinds', name: 'Office Blinds', capabilities: [{ type: 'cover' }], state: { state: 'OPEN', position: 100 } },
];

export class SimDirectory implements DeviceDirectory {
  readonly devices: AgentDevice[];
  readonly executed: Array<{ id: string; command: Record<string, StateValue>; transaction?: string | number }> = [];
  readonly #listeners = new Set<() => void>();
  /** Make execute fail for these ids (device offline). */
  readonly offline = new Set<string>();

  constructor(devices: AgentDevice[] = HOME) {
    this.devices = devices.map((d) => ({ ...d, state: { ...d.state } }));
  }

  list(): AgentDevice[] {
    return this.devices;
  }

  commandSchema(id: string): JsonSchema | undefined {
    const device = this.devices.find((d) => d.id === id);
    return device ? commandSchemaFor(device) : undefined;
  }

  async execute(id: string, command: Record<string, StateValue>, options: { source: 'agent'; transaction?: string | number }) {
    const device = this.devices.find((d) => d.id === id);
    if (!device) throw Object.assign(new Error(`no device ${id}`), { code: 'DEVICE_NOT_FOUND' });
    if (this.offline.has(id)) throw Object.assign(new Error(`${device.name} is offline`), { code: 'DEVICE_UNAVAILABLE' });
    this.executed.push({ id, command, ...(options.transaction !== undefined ? { transaction: options.transaction } : {}) });
    const state = { ...device.state } as Record<string, StateValue>;
    for (const [key, value] of Object.entries(command)) {
      if (key === 'state' && value === 'TOGGLE') state.state = state.state === 'ON' ? 'OFF' : 'ON';
      else if (key === 'state' && value === 'CLOSE') state.state = 'CLOSED';
      else state[key] = value;
    }
    (device as { state: Record<string, StateValue> }).state = state;
    return { device: id, command, state };
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  add(device: AgentDevice): void {
    this.devices.push(device);
    for (const listener of this.#listeners) listener();
  }
}
