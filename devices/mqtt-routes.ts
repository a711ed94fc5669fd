/**
 * How the device operations appear on MQTT (contract: README's topic table):
 *   <base>/<device>/set  JSON command (or bare ON/OFF/TOGGLE)  -> state on <base>/<device>, or <base>/<device>/error
 *   <base>/<device>/get  {"<property>": ""} or empty           -> state on <base>/<device>, or <base>/<device>/error
 *   cmnd/<device>/<Command>  Tasmota console                   -> stat/<device>/RESULT (+ stat/<device>/POWER)
 *   <base>/bridge/request/devices | device/<op>                -> <base>/bridge/response/<name>, transaction echoed
 * Transport only: each message becomes an operation call that the front door runs as its sender.
 */
import { ClawboxError } from '../runtime/errors.js';
import type { Transaction } from '../runtime/operations/envelope.js';
import {
  type MqttRoute,
  type OutgoingMessage,
  type RouteCall,
  type RouteOutcome,
  parseJsonPayload,
  splitTransaction,
} from '../runtime/operations/mqtt-adapter.js';
import { deriveSchemas } from './command-schema.js';
import type { DeviceService } from './device-service.js';
import { parseTasmota, tasmotaResult } from './tasmota.js';

/** The device layer's bridge requests (`<base>/bridge/request/<name>`) and the operations they run. */
export const DEVICE_BRIDGE_REQUESTS: Readonly<Record<string, string>> = {
  devices: 'devices.list',
  'device/add': 'device.add',
  'device/remove': 'device.remove',
  'device/rename': 'device.rename',
  'device/schema': 'device.schema',
};

export function deviceMqttRoutes(devices: DeviceService, base: string, maxPayloadBytes: number): MqttRoute[] {
  const deviceOf = (topic: string) => topic.slice(base.length + 1).split('/')[0] ?? '';
  // Answers on <base>/<id>/error, for ids that can be a topic level (unknown ids are answered too).
  const deviceError = (id: string, outcome: RouteOutcome): OutgoingMessage[] => {
    if (outcome.ok || id === 'bridge' || !isTopicLevel(id)) return [];
    // Input the device layer never saw (bad JSON, oversize) still counts as this device's last error.
    if (!outcome.call) void devices.reportInputError(id, outcome.error, { source: 'mqtt' });
    const transaction = outcome.call?.transaction;
    const { code, message } = outcome.error;
    return [{ topic: `${base}/${id}/error`, payload: JSON.stringify({ code, message, ...(transaction === undefined ? {} : { transaction }) }) }];
  };
  const errorReply = (topic: string, outcome: RouteOutcome) => deviceError(deviceOf(topic), outcome);

  const routes: MqttRoute[] = [
    {
      filter: `${base}/+/set`,
      decode: (topic, payload) => {
        const device = deviceOf(topic);
        if (device === 'bridge') return null;
        const word = payload.toString('utf8').trim().toUpperCase();
        if (word === 'ON' || word === 'OFF' || word === 'TOGGLE') return { operation: 'device.set', input: { device, command: { state: word } } };
        const { fields, transaction } = splitTransaction(parseJsonPayload(payload));
        return withTx({ operation: 'device.set', input: { device, command: fields } }, transaction);
      },
      reply: errorReply,
    },
    {
      filter: `${base}/+/get`,
      decode: (topic, payload) => {
        const device = deviceOf(topic);
        if (device === 'bridge') return null;
        if (payload.length === 0) return { operation: 'device.get', input: { device, properties: null } };
        const body = parseJsonPayload(payload);
        const { fields, transaction } = splitTransaction(body);
        let properties: string[] | null = null;
        if (typeof fields === 'string' && fields !== '') properties = [fields];
        else if (typeof fields === 'object' && fields !== null && !Array.isArray(fields)) {
          const keys = Object.keys(fields);
          properties = keys.length > 0 ? keys : null;
        } else if (fields !== '' && fields !== null) {
          throw new ClawboxError('PAYLOAD_INVALID', 'a get request is {"<property>": ""} or empty');
        }
        return withTx({ operation: 'device.get', input: { device, properties } }, transaction);
      },
      reply: errorReply,
    },
    {
      filter: 'cmnd/+/+',
      decode: (topic, payload) => {
        const [, id = '', name = ''] = topic.split('/');
        const device = devices.get(id);
        // cmnd/ is shared with real Tasmota devices on this broker: only answer for our own devices.
        if (!device) return null;
        const request = parseTasmota(name, payload.toString('utf8'), deriveSchemas(device.capabilities).commandProperties, device.state);
        return request.kind === 'query'
          ? { operation: 'device.get', input: { device: id, properties: request.properties }, source: 'tasmota' }
          : { operation: 'device.set', input: { device: id, command: request.command }, source: 'tasmota' };
      },
      reply: (topic, outcome) => {
        const id = topic.split('/')[1] ?? '';
        if (!outcome.ok) {
          const label = outcome.error.code === 'PROPERTY_UNKNOWN' ? 'Unknown' : 'Error';
          const result = JSON.stringify({ Command: label, code: outcome.error.code, message: outcome.error.message });
          return [...deviceError(id, outcome), { topic: `stat/${id}/RESULT`, payload: result }];
        }
        const result = outcome.data as { state: Record<string, unknown>; command?: Record<string, unknown> };
        const input = outcome.call.input as { properties?: string[] | null };
        const properties = result.command ? Object.keys(result.command) : (input.properties ?? null);
        const messages: OutgoingMessage[] = [{ topic: `stat/${id}/RESULT`, payload: JSON.stringify(tasmotaResult(result.state as never, properties)) }];
        const power = result.state.state;
        if ((power === 'ON' || power === 'OFF') && (!properties || properties.includes('state'))) {
          messages.push({ topic: `stat/${id}/POWER`, payload: power });
        }
        return messages;
      },
    },
  ];
  return routes.map((route) => ({ ...route, maxPayloadBytes }));
}

function withTx(call: RouteCall, transaction: Transaction | undefined): RouteCall {
  return transaction === undefined ? call : { ...call, transaction };
}

function isTopicLevel(id: string): boolean {
  return id.length > 0 && id.length <= 128 && !/[/+#]/.test(id) && !id.includes('\0') && !id.startsWith('$');
}
