/**
 * The MQTT adapter: transport only. Features declare routes (a topic filter, how a message becomes an
 * operation call, how the outcome is answered); the adapter receives client publishes with their sender,
 * runs them through the front door as that sender, and publishes the answers at QoS 1.
 *
 * MQTT 5 request/response: a request with a Response Topic gets its answers (the route's non-retained
 * replies) on that topic, with the request's Correlation Data, instead of on the route's own answer topic;
 * the sender must be allowed to publish to that topic itself (the runtime does not publish where its
 * client could not). MQTT 3.1.1 clients, and MQTT 5 ones without a Response Topic, keep the route's topic
 * and the `transaction` field, which is echoed either way. User properties reach the operation as `meta`
 * (bounded), and a `trace-id` user property becomes the call's trace id.
 */
import { ClawboxError, toClawboxError } from '../errors.js';
import type { Logger } from '../logging.js';
import type { ClientMessage, ClientRequests, MessageProperties, Messaging } from '../messaging.js';
import { type Envelope, type Transaction, errorEnvelope, okEnvelope, readTransaction } from './envelope.js';
import type { FrontDoor } from './front-door.js';
import type { Principal } from './principal.js';

export interface RouteCall {
  operation: string;
  input: unknown;
  transaction?: Transaction;
  deadlineMs?: number;
  /** The source label the operation sees (default `mqtt`), e.g. `tasmota`. */
  source?: string;
}

export type RouteOutcome =
  | { ok: true; data: unknown; call: RouteCall }
  | { ok: false; error: ClawboxError; call?: RouteCall; transaction?: Transaction };

/** Thrown by a decode that read the request's transaction before refusing it, so the answer echoes it. */
export class RefusedRequest extends Error {
  constructor(
    readonly error: ClawboxError,
    readonly transaction: Transaction | undefined,
  ) {
    super(error.message);
  }
}

export interface OutgoingMessage {
  topic: string;
  payload: string;
  retain?: boolean;
}

export interface MqttRoute {
  /** Absolute topic filter. */
  filter: string;
  /**
   * The operation call a message asks for; null when the message is not for this runtime (say, `cmnd/`
   * for a real Tasmota device on the same broker), which gets no answer. Throws to answer an error.
   */
  decode(topic: string, payload: Buffer): RouteCall | null;
  /** A tighter payload bound than the adapter's for this route. */
  maxPayloadBytes?: number;
  /** The messages that answer the outcome (none: the operation's own effects are the answer). */
  reply(topic: string, outcome: RouteOutcome): OutgoingMessage[];
}

export interface MqttAdapterOptions {
  frontDoor: FrontDoor;
  messaging: Messaging;
  requests: ClientRequests;
  logger: Logger;
  /** Larger payloads are answered PAYLOAD_TOO_LARGE without being parsed. */
  maxPayloadBytes: number;
  /** Requests being worked on at once over MQTT; more are answered BUSY at once. */
  maxInFlight?: number;
}

export const DEFAULT_MQTT_IN_FLIGHT = 256;

export class MqttAdapter {
  readonly #o: MqttAdapterOptions;
  #inFlight = 0;
  #stopped = false;
  readonly #controllers = new Set<AbortController>();
  /** `<base>/bridge/request/<name>` -> operation, shared by every feature (one route answers them all). */
  readonly #bridge = new Map<string, string>();
  /** Bridge name prefixes that a feature answers with a route of its own (e.g. `plugin/`). */
  readonly #bridgeElsewhere = new Set<string>();
  #bridgeRoute: (() => void) | null = null;

  constructor(options: MqttAdapterOptions) {
    this.#o = options;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Starts routing; the returned function stops this route. */
  route(route: MqttRoute): () => void {
    return this.#o.requests.onClientPublish(route.filter, (message) => {
      this.#handle(route, message).catch((error: unknown) => {
        this.#o.logger.warn({ err: error, topic: message.topic }, 'MQTT request handling failed');
      });
    });
  }

  /**
   * Answers `<base>/bridge/request/<name>` with `operation` on `<base>/bridge/response/<name>` (the input is
   * the request body without `transaction`). Names are unique across features.
   */
  bridge(name: string, operation: string): () => void {
    if (this.#bridge.has(name)) throw new Error(`bridge request "${name}" is declared twice`);
    this.#bridge.set(name, operation);
    this.#ensureBridgeRoute();
    return () => {
      if (this.#bridge.get(name) === operation) this.#bridge.delete(name);
    };
  }

  /** Bridge names under `prefix` are answered by another route; the shared one stays silent for them. */
  bridgeHandledElsewhere(prefix: string): () => void {
    this.#bridgeElsewhere.add(prefix);
    this.#ensureBridgeRoute();
    return () => {
      this.#bridgeElsewhere.delete(prefix);
    };
  }

  #ensureBridgeRoute(): void {
    if (this.#bridgeRoute) return;
    const prefix = `${this.#o.messaging.baseTopic}/bridge/request/`;
    const responseTopic = (name: string) => `${this.#o.messaging.baseTopic}/bridge/response/${name}`;
    this.#bridgeRoute = this.route({
      filter: `${prefix}#`,
      decode: (topic, payload) => {
        const name = topic.slice(prefix.length);
        for (const elsewhere of this.#bridgeElsewhere) if (name.startsWith(elsewhere)) return null;
        const operation = this.#bridge.get(name);
        const { fields, transaction } = splitTransaction(parseJsonPayload(payload));
        if (!operation) {
          const known = [...this.#bridge.keys()].sort().join(', ');
          throw new RefusedRequest(new ClawboxError('REQUEST_UNKNOWN', `no bridge request "${name.slice(0, 64)}"; known: ${known}`), transaction);
        }
        return { operation, input: fields, ...(transaction === undefined ? {} : { transaction }) };
      },
      reply: (topic, outcome) => {
        const name = topic.slice(prefix.length);
        // Names are echoed in the response topic: known ones, or plain short ones for REQUEST_UNKNOWN.
        if (!this.#bridge.has(name) && !/^[a-z][a-z0-9/_-]{0,63}$/.test(name)) return [];
        return envelopeReply(responseTopic(name), outcome);
      },
    });
  }

  /** Cancels what is still running (the runtime is stopping): work not started is not started. */
  stop(): void {
    this.#stopped = true;
    for (const controller of this.#controllers) controller.abort(new ClawboxError('BUSY', 'the runtime is stopping', { retry_after_ms: 5000 }));
  }

  resume(): void {
    this.#stopped = false;
  }

  async #handle(route: MqttRoute, message: ClientMessage): Promise<void> {
    let call: RouteCall | null;
    try {
      const limit = Math.min(route.maxPayloadBytes ?? Number.POSITIVE_INFINITY, this.#o.maxPayloadBytes);
      if (message.payload.length > limit) {
        throw new ClawboxError('PAYLOAD_TOO_LARGE', `payload of ${message.payload.length} bytes exceeds the limit of ${limit} bytes`, { limit });
      }
      call = route.decode(message.topic, message.payload);
    } catch (error) {
      const refused = error instanceof RefusedRequest ? error : null;
      // A decoder that throws anything but a typed refusal has a bug: the client gets INTERNAL, the log the rest.
      if (!refused && !(error instanceof ClawboxError)) this.#o.logger.error({ err: error, topic: message.topic }, 'MQTT request could not be decoded');
      const outcome: RouteOutcome = refused
        ? { ok: false, error: refused.error, ...(refused.transaction === undefined ? {} : { transaction: refused.transaction }) }
        : { ok: false, error: toClawboxError(error) };
      await this.#send(route.reply(message.topic, outcome), message);
      return;
    }
    if (!call) return;
    const max = this.#o.maxInFlight ?? DEFAULT_MQTT_IN_FLIGHT;
    if (this.#stopped || this.#inFlight >= max) {
      const error = new ClawboxError('BUSY', this.#stopped ? 'the runtime is stopping' : `${max} MQTT requests are already being worked on`, {
        retry_after_ms: 250,
      });
      await this.#send(route.reply(message.topic, { ok: false, error, call }), message);
      return;
    }
    this.#inFlight++;
    const controller = new AbortController();
    this.#controllers.add(controller);
    let outcome: RouteOutcome;
    const trace = traceOf(message);
    const meta = metaOf(message);
    try {
      const data = await this.#o.frontDoor.invoke(call.operation, call.input, {
        principal: mqttPrincipal(message, this.#o.messaging.baseTopic),
        source: call.source ?? 'mqtt',
        retained: message.retain,
        signal: controller.signal,
        // Which connection asked: the agent keeps one conversation per MQTT client.
        meta: { client_id: message.client.id },
        ...(call.deadlineMs === undefined ? {} : { deadlineMs: call.deadlineMs }),
        ...(trace ? { trace } : {}),
        ...(meta ? { meta } : {}),
      });
      outcome = { ok: true, data, call };
    } catch (error) {
      outcome = { ok: false, error: toClawboxError(error), call };
    } finally {
      this.#inFlight--;
      this.#controllers.delete(controller);
    }
    await this.#send(route.reply(message.topic, outcome), message);
  }

  async #send(messages: OutgoingMessage[], request: ClientMessage): Promise<void> {
    const target = responseTarget(request);
    for (const reply of messages) {
      const m = target && reply.retain !== true ? { ...reply, topic: target.topic } : reply;
      const properties: MessageProperties | undefined = target && m !== reply && target.correlationData ? { correlationData: target.correlationData } : undefined;
      try {
        await this.#o.messaging.publish(m.topic, m.payload, { qos: 1, retain: m.retain === true, ...(properties ? { properties } : {}) });
      } catch (error) {
        this.#o.logger.debug({ err: error, topic: m.topic }, 'could not publish an MQTT answer');
      }
    }
  }
}

/** An MQTT 5 request's Response Topic (with its Correlation Data), if the sender may publish there. */
export function responseTarget(message: ClientMessage): { topic: string; correlationData?: Buffer } | null {
  const topic = message.properties?.responseTopic;
  if (!topic || topic.length > 1024 || topic.includes('+') || topic.includes('#') || topic.includes('\u0000') || !message.mayPublish(topic)) return null;
  const correlationData = message.properties?.correlationData;
  return correlationData ? { topic, correlationData } : { topic };
}

const TRACE_ID = /^[\w.:-]{1,128}$/;
const MAX_META_ENTRIES = 16;
const MAX_META_LENGTH = 256;

/** A `trace-id` user property that looks like one (letters, digits, `._:-`, up to 128). */
export function traceOf(message: ClientMessage): string | undefined {
  const value = message.properties?.userProperties?.['trace-id'];
  const trace = Array.isArray(value) ? value[0] : value;
  return typeof trace === 'string' && TRACE_ID.test(trace) ? trace : undefined;
}

/** User properties as operation metadata: the first 16, names and values up to 256 characters, a repeated name's last value. */
export function metaOf(message: ClientMessage): Record<string, string> | undefined {
  const given = message.properties?.userProperties;
  if (!given) return undefined;
  const meta: Record<string, string> = Object.create(null);
  let count = 0;
  for (const [name, value] of Object.entries(given)) {
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (typeof last !== 'string' || name.length > MAX_META_LENGTH || last.length > MAX_META_LENGTH) continue;
    meta[name] = last;
    if (++count >= MAX_META_ENTRIES) break;
  }
  return count > 0 ? meta : undefined;
}

/**
 * The sender as a principal. Anonymous clients (let in by broker.anonymous) are one principal per
 * address, so a confirmation may come from another connection of the same machine.
 */
export function mqttPrincipal(message: ClientMessage, baseTopic: string): Principal {
  const { username, address, id } = message.client;
  return {
    kind: 'mqtt',
    id: username ?? `anonymous@${address ?? id}`,
    may: (permission) => message.mayPublish(`${baseTopic}/${permission}`),
  };
}

/** Decodes a JSON request body; an empty payload is `{}`. */
export function parseJsonPayload(payload: Buffer): unknown {
  if (payload.length === 0) return {};
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch (error) {
    throw new ClawboxError('PAYLOAD_INVALID', `payload is not valid JSON: ${(error as Error).message.slice(0, 120)}`);
  }
}

/** The usual request/response answer: one envelope on `responseTopic`, the transaction echoed. */
export function envelopeReply(responseTopic: string, outcome: RouteOutcome, transaction?: Transaction): OutgoingMessage[] {
  const tx = outcome.call?.transaction ?? (outcome.ok ? undefined : outcome.transaction) ?? transaction;
  const body: Envelope = outcome.ok ? okEnvelope(outcome.data, tx) : errorEnvelope(outcome.error, tx);
  return [{ topic: responseTopic, payload: JSON.stringify(body) }];
}

/** `{…, "transaction"}` split into the request fields and the transaction. */
export function splitTransaction(body: unknown): { fields: unknown; transaction?: Transaction } {
  const transaction = readTransaction(body);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { fields: body };
  const { transaction: _tx, ...fields } = body as Record<string, unknown>;
  return transaction === undefined ? { fields } : { fields, transaction };
}
