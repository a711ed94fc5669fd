/**
 * iot-control: the device layer as tools, the one path by which the agent touches devices. Every request
 * goes through the host on behalf of the call, so the host applies this plugin's and the caller's device
 * permissions, and the device layer checks each command against the device's schema and runs it on the same
 * path as an MQTT command (source = the caller's, e.g. "agent"). Device errors keep their codes
 * (DEVICE_NOT_FOUND, VALUE_OUT_OF_RANGE, DEVICE_UNAVAILABLE …).
 */
import { type PluginDeviceView, definePlugin } from '../../sdk.js';

function summary(device: PluginDeviceView) {
  return {
    id: device.id,
    name: device.name,
    availability: device.availability,
    capabilities: device.capabilities,
    state: device.state,
  };
}

export default definePlugin({
  tools: {
    list_devices: async (_args, call) => (await call.devices.list()).map(summary),
    get_state: async ({ id }: { id: string }, call) => {
      const device = await call.devices.get(id);
      return { id: device.id, availability: device.availability, state: device.state, updated_at: device.updated_at ?? null };
    },
    command_schema: ({ id }: { id: string }, call) => call.devices.commandSchema(id),
    send_command: ({ id, command }: { id: string; command: Record<string, unknown> }, call) => call.devices.execute(id, command),
  },
});
