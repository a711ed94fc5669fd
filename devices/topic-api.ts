/**
 * The MQTT topic API of the device layer (contract: shared/DESIGN.md's topic table):
 *   <base>/<device>/set  JSON command (or bare ON/OFF/TOGGLE)  -> state on <base>/<device> or <base>/<device>/error
 *   <base>/<device>/get  {"<property>": ""} or empty           -> state on <base>/<device>
 *   cmnd/<device>/<Command>  Tasmota console                   -> stat/<device>/RESULT (+ stat/<device>/POWER)
 *   <base>/bridge/request/devices | device/<op>                -> <base>/bridge/response/<name>, transaction echoed
 * Everything goes through DeviceService; this module only parses, bounds and answers. Every message to
 * a known topic form gets exactly one answer; no payload content can throw out of a handler.
 */
import { ClawboxError, toClawboxError } from '../runtime/errors.js';
import type { Logger } from '../runtime/logging.js';
import type { Messaging } from '../runtime/messaging.js';
import { deriveSchemas } from './command-schema.js';
import type { DeviceService } from './device-service.js';
import type { LogLimiter } from './log-limiter.js';
import { DEVICE_ID_RE } from './model.js';
import { parseTasmota, tasmotaResult } from './tasmota.js';

export interface TopicApiOptions {
  messaging: Messaging;
  service: DeviceService;
  /** Larger payloads are answered PAYLOAD_TOO_LARGE without being parsed. */
  maxPayloadBytes: number;
  logger: Logger;
  limiter: LogLimiter;
}

type Transaction = string | number | undefined;

const BRIDGE_REQUESTS = ['devices', 'device/add', 'device/remove', 'device/rename', 'device/schema'] as const;

export class TopicApi {
  readonly #o: TopicApiOptions;
  readonly #unsubscribe: Array<() => Promise<void>> = [];
  /** True while subscribing: the broker replays retained messages then, and a retained command is not a command. */
  #replaying = false;

  constructor(options: TopicApiOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    const base = this.#o.messaging.baseTopic;
    const subscriptions: Array<[string, (topic: string, payload: Buffer) => void]> = [
      [`${base}/+/set`, (topic, payload) => this.#guard(topic, () => this.#onSet(segment(topic, base), payload))],
      [`${base}/+/get`, (topic, payload) => this.#guard(topic, () => this.#onGet(segment(topic, base), payload))],
      [`${base}/bridge/request/devices`, (topic, payload) => this.#guard(topic, () => this.#onBridge('devices', payload))],
      [
        `${base}/bridge/request/device/#`,
        (topic, payload) =>
          this.#guard(topic, () => this.#onBridge(topic.slice(`${base}/bridge/request/`.length), payload)),
      ],
      ['cmnd/+/+', (topic, payload) => this.#guard(topic, () => this.#onTasmota(topic, payload))],
    ];
    this.#replaying = true;
    try {
      for (const [filter, handler] of subscriptions) {
        this.#unsubscribe.push(await this.#o.messaging.subscribe(filter, handler));
      }
    } finally {
      this.#replaying = false;
    }
  }

  async stop(): Promise<void> {
    const all = this.#unsubscribe.splice(0);
    await Promise.allSettled(all.map((unsubscribe) => unsubscribe()));
  }

  /** Handlers run detached; any throw is caught here so payload content can never crash the runtime. */
  #guard(topic: string, run: () => Promise<void>): void {
    if (this.#replaying) {
      this.#o.logger.debug({ topic }, 'ignored a retained command replayed on subscribe');
      return;
    }
    run().catch((error: unknown) => {
      this.#o.limiter.warn(`topic-api:${topic}`, { err: error, topic }, 'device topic handler failed');
    });
  }

  // ---- <base>/<device>/set and /get ---------------------------------------------------------------

  async #onSet(id: string, payload: Buffer): Promise<void> {
    const service = this.#o.service;
    if (id === 'bridge') return;
    let parsed: { body: unknown; transaction: Transaction };
    try {
      parsed = this.#parse(payload, true);
    } catch (error) {
      await service.reportInputError(id, toClawboxError(error), { source: 'mqtt' });
      return;
    }
    const options = { source: 'mqtt' as const, ...withTransaction(parsed.transaction) };
    // execute() publishes the state (retained) on success and the error on <base>/<id>/error on failure.
    await service.execute(id, parsed.body, options).catch(() => {});
  }

  async #onGet(id: string, payload: Buffer): Promise<void> {
    const service = this.#o.service;
    if (id === 'bridge') return;
    let properties: string[] | null = null;
    let transaction: Transaction;
    try {
      if (payload.length > 0) {
        const { body, transaction: tx } = this.#parse(payload, false);
        transaction = tx;
        if (typeof body === 'string' && body !== '') properties = [body];
        else if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
          const keys = Object.keys(body).filter((k) => k !== 'transaction');
          properties = keys.length > 0 ? keys : null;
        } else if (body !== '' && body !== null) {
          throw new ClawboxError('PAYLOAD_INVALID', 'a get request is {"<property>": ""} or empty');
        }
      }
    } catch (error) {
      await service.reportInputError(id, toClawboxError(error), { source: 'mqtt', ...withTransaction(transaction) });
      return;
    }
    await service.read(id, properties, { source: 'mqtt', ...withTransaction(transaction) }).catch(() => {});
  }

  // ---- cmnd/<device>/<Command> -----------------------------------------------------------------------

  async #onTasmota(topic: string, payload: Buffer): Promise<void> {
    const [, id = '', name = ''] = topic.split('/');
    const service = this.#o.service;
    const device = service.get(id);
    // cmnd/ is shared with real Tasmota devices on this broker: only answer for our own devices.
    if (!device) {
      this.#o.logger.debug({ topic }, 'cmnd for a device that is not ours; left to its owner');
      return;
    }
    const result = `stat/${id}/RESULT`;
    const fail = async (error: unknown) => {
      const err = toClawboxError(error);
      const label = err.code === 'PROPERTY_UNKNOWN' ? 'Unknown' : 'Error';
      await this.#publish(result, JSON.stringify({ Command: label, code: err.code, message: err.message }));
    };
    let request: ReturnType<typeof parseTasmota>;
    try {
      if (payload.length > this.#o.maxPayloadBytes) throw tooLarge(payload.length, this.#o.maxPayloadBytes);
      const text = payload.toString('utf8');
      const schemas = deriveSchemas(device.capabilities);
      request = parseTasmota(name, text, schemas.commandProperties, device.state);
    } catch (error) {
      await service.reportInputError(id, toClawboxError(error), { source: 'tasmota' });
      await fail(error);
      return;
    }
    try {
      if (request.kind === 'query') {
        const snapshot = await service.read(id, request.properties, { source: 'tasmota' });
        await this.#answerTasmota(id, snapshot.state, request.properties);
      } else {
        const done = await service.execute(id, request.command, { source: 'tasmota' });
        await this.#answerTasmota(id, done.state, Object.keys(done.command));
      }
    } catch (error) {
      await fail(error);
    }
  }

  async #answerTasmota(id: string, state: Record<string, unknown>, properties: string[] | null): Promise<void> {
    await this.#publish(`stat/${id}/RESULT`, JSON.stringify(tasmotaResult(state as never, properties)));
    if (typeof state.state === 'string' && (state.state === 'ON' || state.state === 'OFF')) {
      if (!properties || properties.includes('state')) await this.#publish(`stat/${id}/POWER`, state.state);
    }
  }

  // ---- <base>/bridge/request/<name> ----------------------------------------------------------------

  async #onBridge(name: string, payload: Buffer): Promise<void> {
    const responseTopic = `${this.#o.messaging.baseTopic}/bridge/response/${name}`;
    let transaction: Transaction;
    try {
      const parsed = payload.length === 0 ? { body: {}, transaction: undefined } : this.#parse(payload, false);
      transaction = parsed.transaction;
      const body = parsed.body;
      const data = await this.#bridge(name, body);
      await this.#publish(responseTopic, JSON.stringify({ status: 'ok', data, ...withTransaction(transaction) }));
    } catch (error) {
      const err = toClawboxError(error);
      this.#o.limiter.warn(`bridge:${name}:${err.code}`, { code: err.code, request: name }, `bridge ${name}: ${err.message}`);
      await this.#publish(
        responseTopic,
        JSON.stringify({
          status: 'error',
          error: { code: err.code, message: err.message },
          ...withTransaction(transaction),
        }),
      );
    }
  }

  async #bridge(name: string, body: unknown): Promise<unknown> {
    const service = this.#o.service;
    const request = name as (typeof BRIDGE_REQUESTS)[number];
    if (!BRIDGE_REQUESTS.includes(request)) {
      throw new ClawboxError(
        'REQUEST_UNKNOWN',
        `no bridge request "${name.slice(0, 64)}"; known: ${BRIDGE_REQUESTS.join(', ')}`,
      );
    }
    if (request === 'devices') return service.list();
    const args = asObject(body);
    switch (request) {
      case 'device/add':
        return service.add(args);
      case 'device/remove': {
        const id = requireId(args);
        await service.remove(id);
        return { id };
      }
      case 'device/rename':
        return service.rename(requireId(args), args.name);
      case 'device/schema': {
        const id = requireId(args);
        return { id, command: service.commandSchema(id), state: service.stateSchema(id) };
      }
    }
  }

  // ---- parsing -------------------------------------------------------------------------------------

  /** Bounds, decodes and parses a JSON payload; `bareWords` accepts ON/OFF/TOGGLE as a switch command. */
  #parse(payload: Buffer, bareWords: boolean): { body: unknown; transaction: Transaction } {
    if (payload.length > this.#o.maxPayloadBytes) throw tooLarge(payload.length, this.#o.maxPayloadBytes);
    const text = payload.toString('utf8');
    const word = text.trim().toUpperCase();
    if (bareWords && (word === 'ON' || word === 'OFF' || word === 'TOGGLE')) {
      return { body: { state: word }, transaction: undefined };
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (error) {
      throw new ClawboxError('PAYLOAD_INVALID', `payload is not valid JSON: ${(error as Error).message.slice(0, 120)}`);
    }
    const transaction = readTransaction(body);
    return { body, transaction };
  }

  async #publish(topic: string, payload: string): Promise<void> {
    try {
      await this.#o.messaging.publish(topic, payload, { qos: 0 });
    } catch (error) {
      this.#o.limiter.warn(`publish:${topic}`, { err: error, topic }, `could not publish on ${topic}`);
    }
  }
}

function segment(topic: string, base: string): string {
  return topic.slice(base.length + 1).split('/')[0] ?? '';
}

function tooLarge(size: number, limit: number): ClawboxError {
  return new ClawboxError('PAYLOAD_TOO_LARGE', `payload of ${size} bytes exceeds the limit of ${limit} bytes`, {
    limit,
  });
}

/** A transaction is echoed only when it is a short string or a finite number. */
function readTransaction(body: unknown): Transaction {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const tx = (body as Record<string, unknown>).transaction;
  if (typeof tx === 'string' && tx.length <= 128) return tx;
  if (typeof tx === 'number' && Number.isFinite(tx)) return tx;
  return undefined;
}

function withTransaction(transaction: Transaction): { transaction?: string | number } {
  return transaction === undefined ? {} : { transaction };
}

function asObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ClawboxError('PAYLOAD_INVALID', 'the request must be a JSON object');
  }
  return body as Record<string, unknown>;
}

function requireId(args: Record<string, unknown>): string {
  const id = args.id;
  if (typeof id !== 'string' || !DEVICE_ID_RE.test(id)) {
    throw new ClawboxError('PAYLOAD_INVALID', 'the request needs "id", a device id');
  }
  return id;
}
