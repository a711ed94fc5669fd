/**
 * How plugin.call appears on MQTT: `<base>/bridge/request/plugin/<name>/<tool>` with the tool's arguments
 * as a JSON object (plus an optional `transaction`) is answered on `<base>/bridge/response/plugin/<name>/<tool>`
 * with the one envelope, `{"status":"ok","data":…}` or `{"status":"error","error":{"code","message"}}`,
 * echoing `transaction`. Transport only: the front door runs the call as the sender (its publish ACL must
 * cover that topic). plugins.mqtt.tools narrows which tools answer on MQTT at all.
 */
import { ClawboxError } from '../runtime/errors.js';
import { type MqttRoute, envelopeReply, parseJsonPayload, splitTransaction } from '../runtime/operations/mqtt-adapter.js';
import { toolAllowed } from './permissions.js';

export interface PluginMqttRouteOptions {
  baseTopic: string;
  /** Tools callable over MQTT (plugins.mqtt.tools). */
  tools: readonly string[];
  maxPayloadBytes: number;
}

// Segments are echoed in the response topic: anything that is not a plain name gets no answer.
const SEGMENT = /^[a-z][a-z0-9_-]{0,62}$/;

export function pluginMqttRoute(options: PluginMqttRouteOptions): MqttRoute {
  const prefix = `${options.baseTopic}/bridge/request/plugin/`;
  const segments = (topic: string) => topic.slice(prefix.length).split('/') as [string, string];
  return {
    filter: `${prefix}+/+`,
    maxPayloadBytes: options.maxPayloadBytes,
    decode: (topic, payload) => {
      const [plugin, tool] = segments(topic);
      if (!SEGMENT.test(plugin) || !SEGMENT.test(tool)) return null;
      if (!toolAllowed(options.tools, plugin, tool)) {
        throw new ClawboxError('FORBIDDEN', `${plugin}/${tool} is not callable over MQTT (plugins.mqtt.tools)`);
      }
      const { fields, transaction } = splitTransaction(parseJsonPayload(payload));
      if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) {
        throw new ClawboxError('PAYLOAD_INVALID', 'payload must be a JSON object of the tool arguments');
      }
      const call = { operation: 'plugin.call', input: { plugin, tool, args: fields } };
      return transaction === undefined ? call : { ...call, transaction };
    },
    reply: (topic, outcome) => {
      const [plugin, tool] = segments(topic);
      if (!SEGMENT.test(plugin) || !SEGMENT.test(tool)) return [];
      return envelopeReply(`${options.baseTopic}/bridge/response/plugin/${plugin}/${tool}`, outcome);
    },
  };
}
