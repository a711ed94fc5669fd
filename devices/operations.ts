/**
 * The device layer's operations, declared once for every transport (the front door runs them as the
 * caller): device.set, device.get, devices.list, device.add, device.remove, device.rename, device.schema.
 * Permissions are topic paths relative to the base topic, so an MQTT user needs exactly the publish ACL
 * it would need to do the same by topic.
 */
import { ClawboxError } from '../runtime/errors.js';
import { type AnyOperation, defineOperation } from '../runtime/operations/operation.js';
import type { DeviceService } from './device-service.js';
import { DEVICE_ID_PATTERN } from './model.js';

/** How long a caller may wait for a device's acknowledgement (drivers time out sooner). */
const DEVICE_DEADLINE_MS = 60_000;

const deviceId = { type: 'string', pattern: DEVICE_ID_PATTERN } as const;

export function deviceOperations(devices: DeviceService): AnyOperation[] {
  const deviceOf = (input: { device: string }) => input.device;
  return [
    defineOperation<{ device: string; command: unknown }, unknown>({
      name: 'device.set',
      summary: 'send a command to a device; answers with the state the device acknowledged',
      input: { type: 'object', required: ['device', 'command'], additionalProperties: false, properties: { device: deviceId, command: {} } },
      permission: (input) => `${input.device}/set`,
      changesWorld: true,
      deadlineMs: DEVICE_DEADLINE_MS,
      device: deviceOf,
      handler: (input, ctx) => devices.execute(input.device, input.command, { source: ctx.source, signal: ctx.signal }),
    }),
    defineOperation<{ device: string; properties?: string[] | null }, unknown>({
      name: 'device.get',
      summary: 'ask a device to report (all properties, or the named ones)',
      input: {
        type: 'object',
        required: ['device'],
        additionalProperties: false,
        properties: {
          device: deviceId,
          properties: { anyOf: [{ type: 'null' }, { type: 'array', maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 64 } }] },
        },
      },
      permission: (input) => `${input.device}/get`,
      changesWorld: false,
      deadlineMs: DEVICE_DEADLINE_MS,
      device: deviceOf,
      handler: (input, ctx) =>
        devices.read(input.device, input.properties && input.properties.length > 0 ? input.properties : null, { source: ctx.source, signal: ctx.signal }),
    }),
    defineOperation<Record<string, never>, unknown>({
      name: 'devices.list',
      summary: 'every device with its state and availability',
      input: { type: 'object', additionalProperties: false, properties: {} },
      permission: () => 'bridge/request/devices',
      changesWorld: false,
      deadlineMs: 5_000,
      handler: async () => devices.list(),
    }),
    defineOperation<Record<string, unknown>, unknown>({
      name: 'device.add',
      summary: 'add a device at run time (persisted); the body is one `devices:` config entry',
      input: { type: 'object' },
      permission: () => 'bridge/request/device/add',
      changesWorld: true,
      deadlineMs: 30_000,
      device: (input) => (typeof input.id === 'string' ? input.id.slice(0, 64) : undefined),
      handler: async (input) => {
        const limit = devices.deviceLimit;
        if (devices.list().length >= limit) {
          throw new ClawboxError('LIMIT_REACHED', `this runtime already has ${limit} devices, the most it takes; remove one first`, { limit });
        }
        return devices.add(input);
      },
    }),
    defineOperation<{ id: string }, unknown>({
      name: 'device.remove',
      summary: 'remove a device and clear its retained topics',
      input: { type: 'object', required: ['id'], additionalProperties: false, properties: { id: deviceId } },
      permission: () => 'bridge/request/device/remove',
      changesWorld: true,
      deadlineMs: 30_000,
      device: (input) => input.id,
      handler: async (input) => {
        await devices.remove(input.id);
        return { id: input.id };
      },
    }),
    defineOperation<{ id: string; name: string }, unknown>({
      name: 'device.rename',
      summary: "change a device's display name (its id and topics stay)",
      input: {
        type: 'object',
        required: ['id', 'name'],
        additionalProperties: false,
        properties: { id: deviceId, name: { type: 'string', minLength: 1, maxLength: 120 } },
      },
      permission: () => 'bridge/request/device/rename',
      changesWorld: true,
      deadlineMs: 30_000,
      device: (input) => input.id,
      handler: (input) => devices.rename(input.id, input.name),
    }),
    defineOperation<{ id: string }, unknown>({
      name: 'device.schema',
      summary: "a device's command and state JSON Schemas",
      input: { type: 'object', required: ['id'], additionalProperties: false, properties: { id: deviceId } },
      permission: () => 'bridge/request/device/schema',
      changesWorld: false,
      deadlineMs: 5_000,
      handler: async (input) => ({ id: input.id, command: devices.commandSchema(input.id), state: devices.stateSchema(input.id) }),
    }),
  ];
}
