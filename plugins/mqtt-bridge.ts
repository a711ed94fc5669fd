/**
 * Plugin tools over MQTT: `<base>/bridge/request/plugin/<name>/<tool>` with the tool's arguments as a JSON
 * object (plus an optional `transaction`) is answered on `<base>/bridge/response/plugin/<name>/<tool>` with
 * `{"status":"ok","data":…}` or `{"status":"error","error":{"code","message"}}`, echoing `transaction`.
 * Every request to that topic form gets exactly one answer; no payload can throw out of a handler.
 */
import { ClawboxError, toClawboxError } from '../runtime/errors.js';
import type { Logger } from '../runtime/logging.js';
import type { Messaging } from '../runtime/messaging.js';
import { toolAllowed } from './permissions.js';

type Transaction = string | number | undefined;

export interface PluginCaller {
  call(plugin: string, tool: string, args: unknown, options: { caller: { id: string; source: string; tools: readonly string[] }; transaction?: string | number }): Promise<unknown>;
}

export interface MqttBridgeOptions {
  messaging: Messaging;
  host: PluginCaller;
  /** Tools callable over MQTT (plugins.mqtt.tools). */
  tools: readonly string[];
  maxPayloadBytes: number;
  logger: Logger;
}

const SEGMENT = /^[a-z][a-z0-9_-]{0,62}$/;

export class PluginMqttBridge {
  readonly #o: MqttBridgeOptions;
  #unsubscribe: (() => Promise<void>) | undefined;
  #replaying = false;

  constructor(options: MqttBridgeOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    const base = this.#o.messaging.baseTopic;
    const prefix = `${base}/bridge/request/plugin/`;
    this.#replaying = true;
    try {
      this.#unsubscribe = await this.#o.messaging.subscribe(`${prefix}+/+`, (topic, payload) => {
        // A retained request replayed on subscribe is not a request.
        if (this.#replaying) return;
        const [plugin = '', tool = ''] = topic.slice(prefix.length).split('/');
        this.#handle(plugin, tool, payload).catch((error: unknown) => {
          this.#o.logger.warn({ err: error, topic }, 'plugin bridge handler failed');
        });
      });
    } finally {
      this.#replaying = false;
    }
  }

  async stop(): Promise<void> {
    const unsubscribe = this.#unsubscribe;
    this.#unsubscribe = undefined;
    await unsubscribe?.();
  }

  async #handle(plugin: string, tool: string, payload: Buffer): Promise<void> {
    // Segments are echoed in the response topic: never echo anything that is not a plain name.
    if (!SEGMENT.test(plugin) || !SEGMENT.test(tool)) return;
    const base = this.#o.messaging.baseTopic;
    const responseTopic = `${base}/bridge/response/plugin/${plugin}/${tool}`;
    let transaction: Transaction;
    let body: string;
    try {
      const parsed = this.#parse(payload);
      transaction = parsed.transaction;
      if (!toolAllowed(this.#o.tools, plugin, tool)) {
        throw new ClawboxError('FORBIDDEN', `${plugin}/${tool} is not callable over MQTT (plugins.mqtt.tools)`);
      }
      const data = await this.#o.host.call(plugin, tool, parsed.args, {
        caller: { id: 'mqtt', source: 'mqtt', tools: this.#o.tools },
        ...(transaction === undefined ? {} : { transaction }),
      });
      body = JSON.stringify({ status: 'ok', data, ...withTransaction(transaction) });
    } catch (error) {
      const err = toClawboxError(error);
      const reason = typeof err.details.reason === 'string' ? { reason: err.details.reason } : {};
      body = JSON.stringify({
        status: 'error',
        error: { code: err.code, message: err.message, ...reason },
        ...withTransaction(transaction),
      });
    }
    await this.#o.messaging.publish(responseTopic, body);
  }

  #parse(payload: Buffer): { args: Record<string, unknown>; transaction: Transaction } {
    if (payload.length > this.#o.maxPayloadBytes) {
      throw new ClawboxError('PAYLOAD_TOO_LARGE', `payload is ${payload.length} bytes; the limit is ${this.#o.maxPayloadBytes}`);
    }
    if (payload.length === 0) return { args: {}, transaction: undefined };
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch (error) {
      throw new ClawboxError('PAYLOAD_INVALID', `payload is not valid JSON: ${(error as Error).message.slice(0, 120)}`);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new ClawboxError('PAYLOAD_INVALID', 'payload must be a JSON object of the tool arguments');
    }
    const { transaction: tx, ...args } = body as Record<string, unknown>;
    const transaction: Transaction =
      (typeof tx === 'string' && tx.length <= 128) || (typeof tx === 'number' && Number.isFinite(tx)) ? tx : undefined;
    return { args, transaction };
  }
}

function withTransaction(transaction: Transaction): { transaction?: string | number } {
  return transaction === undefined ? {} : { transaction };
}
