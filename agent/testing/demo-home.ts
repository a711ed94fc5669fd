/**
 * The built-in demo devices (devices/demo.ts) as the agent sees them, with a known state, and a few
 * extra devices with areas and aliases. The golden phrasings and the intent bench run against these.
 */
import { DEMO_DEVICES } from '../../devices/demo.js';
import type { AgentCapability, AgentDevice } from '../directory.js';

const DEMO_STATE: Record<string, AgentDevice['state']> = {
  lamp: { state: 'OFF' },
  light: { state: 'ON', brightness: 50 },
  thermostat: { target_temperature: 20, mode: 'heat', current_temperature: 19.5 },
  temperature: { temperature: 21.5, humidity: 45 },
  cover: { state: 'CLOSED', position: 0 },
};

/** The demo devices, capabilities normalised to objects as the device layer reports them. */
export function demoHome(): AgentDevice[] {
  return DEMO_DEVICES.map((entry) => ({
    id: entry.id,
    name: entry.name ?? entry.id,
    capabilities: entry.capabilities.map((cap): AgentCapability => (typeof cap === 'string' ? { type: cap } : { ...cap })),
    state: { ...DEMO_STATE[entry.id] },
  }));
}

/** Devices with an area and aliases, added to the demo set for area and alias phrasings. */
export const EXTRA_DEVICES: ReadonlyArray<AgentDevice & { area?: string }> = [
  {
    id: 'kitchen_light',
    name: 'Ceiling light',
    area: 'kitchen',
    aliases: ['big light', '厨房灯'],
    capabilities: [{ type: 'switch' }, { type: 'dimmer' }],
    state: { state: 'ON', brightness: 80 },
  },
  { id: 'coffee', name: 'Coffee machine', area: 'kitchen', aliases: ['coffee maker', '咖啡机'], capabilities: [{ type: 'switch' }], state: { state: 'OFF' } },
  { id: 'bedroom_shutter', name: 'Roller shutter', area: 'bedroom', aliases: ['卧室窗帘'], capabilities: [{ type: 'cover' }], state: { state: 'OPEN', position: 100 } },
];

export function demoPlusHome(): AgentDevice[] {
  return [...demoHome(), ...EXTRA_DEVICES.map((d) => structuredClone(d) as AgentDevice)];
}
