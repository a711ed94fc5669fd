/**
 * The simulated driver passes the same conformance suite as the real ones, with its fault controls.
 */
import t from 'tap';
import { parseDeviceEntry, toDefinition } from '../registry.js';
import { runDriverConformance } from './testing/conformance.js';
import { createSimulatedDriver, simulatorControls } from './simulated.js';

runDriverConformance(t, 'simulated', createSimulatedDriver, async () => {
  const definition = toDefinition(
    parseDeviceEntry({ id: 'sim-conf', driver: 'simulated', capabilities: ['switch', 'dimmer'] }),
    'config',
  );
  const control = () => {
    const c = simulatorControls.get('sim-conf');
    if (!c) throw new Error('simulated device not started');
    return c;
  };
  return {
    definition,
    async physicalChange() {
      const next = control().hardware.state === 'ON' ? 'OFF' : 'ON';
      control().physicalChange({ state: next });
      return { state: next };
    },
    unresponsive: async () => control().setResponsive(false),
    responsive: async () => control().setResponsive(true),
    unplug: async () => control().unplug(),
    replug: async () => control().replug(),
    deviceState: async () => control().hardware,
  };
});
