/**
 * The built-in demo devices: one of each simulated kind. They are the default of the config's `devices:`
 * key, so a config without that key gets them; the device layer keeps them only in local mode (see
 * DeviceService.start), so an installed appliance never shows fake devices. `devices: []` turns them off.
 */
import type { DeviceConfigEntry } from './config-schema.js';

export const DEMO_DEVICES: readonly DeviceConfigEntry[] = [
  { id: 'lamp', name: 'Demo lamp', driver: 'simulated', capabilities: ['switch'], demo: true },
  { id: 'light', name: 'Demo dimmable light', driver: 'simulated', capabilities: ['switch', 'dimmer'], demo: true },
  {
    id: 'thermostat',
    name: 'Demo thermostat',
    driver: 'simulated',
    capabilities: [{ type: 'thermostat', min: 5, max: 30, step: 0.5, modes: ['off', 'heat', 'auto'] }],
    demo: true,
  },
  {
    id: 'temperature',
    name: 'Demo temperature sensor',
    driver: 'simulated',
    capabilities: [
      {
        type: 'sensor',
        readings: [
          { property: 'temperature', unit: '°C', device_class: 'temperature' },
          { property: 'humidity', unit: '%', device_class: 'humidity' },
        ],
      },
    ],
    simulated: { report_interval_ms: 30000 },
    demo: true,
  },
  { id: 'cover', name: 'Demo window blind', driver: 'simulated', capabilities: ['cover'], demo: true },
];

/** A fresh copy of the demo set (callers may mutate it). */
export function demoDevices(): DeviceConfigEntry[] {
  return structuredClone(DEMO_DEVICES) as DeviceConfigEntry[];
}

/** Which config entries to drive: demo entries only in local mode. */
export function selectConfiguredDevices(
  entries: readonly DeviceConfigEntry[],
  mode: 'local' | 'appliance',
): DeviceConfigEntry[] {
  return entries.filter((entry) => entry.demo !== true || mode === 'local');
}
