/**
 * The agent's MQTT face: `<base>/agent/request` -> `<base>/agent/response` (DESIGN.md envelope).
 * Request: {"text", "session"?, "transaction"?, "deadline_ms"?}. Response: {"status":"ok","data":{text,
 * actions, path, timings}} or {"status":"error","error":{code, message, retry_after_ms?}}, echoing
 * transaction. Payloads are validated with ajv; a bad one gets PAYLOAD_INVALID and changes nothing.
 * The handler is injected so the scheduler (admission, deadlines) can sit in front of the agent.
 */
import { Ajv } from 'ajv';
import type { Component, RuntimeContext } from '../runtime/context.js';
import { ClawboxError, toClawboxError } from '../runtime/errors.js';
import type { Logger } from '../runtime/logging.js';
import type { Messaging } from '../runtime/messaging.js';
import type { AgentRequest, AgentResponse } from './agent.js';

export interface AgentTopicRequest extends Omit<AgentRequest, 'signal' | 'allow'> {
  /** Requested deadline; passed to the handler (the scheduler bounds it). */
  deadline_ms?: number;
}

export type AgentHandler = (request: AgentTopicRequest & { source: 'mqtt' }) => Promise<AgentResponse>;

export interface AgentTopicDeps {
  messaging: Messaging;
  handle: AgentHandler;
  /** Requests in flight at most; more get BUSY at once (the scheduler does finer admission). */
  maxInFlight?: number;
}

const requestSchema = {
  type: 'object',
  required: ['text'],
  additionalProperties: false,
  properties: {
    text: { type: 'string', minLength: 1, maxLength: 1000 },
    session: { type: 'string', minLength: 1, maxLength: 128 },
    transaction: { anyOf: [{ type: 'string', maxLength: 128 }, { type: 'number' }] },
    deadline_ms: { type: 'integer', minimum: 1, maximum: 600_000 },
  },
} as const;

const validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile<AgentTopicRequest>(requestSchema);

export class AgentTopic implements Component {
  readonly name = 'agent-topic';
  readonly #deps: AgentTopicDeps;
  #unsubscribe: (() => Promise<void>) | null = null;
  #logger: Logger | null = null;
  #inFlight = 0;
  #stopped = false;

  constructor(deps: AgentTopicDeps) {
    this.#deps = deps;
  }

  get requestTopic(): string {
    return `${this.#deps.messaging.baseTopic}/agent/request`;
  }

  get responseTopic(): string {
    return `${this.#deps.messaging.baseTopic}/agent/response`;
  }

  async start(ctx: RuntimeContext): Promise<void> {
    this.#logger = ctx.logger('agent');
    this.#stopped = false;
    this.#unsubscribe = await this.#deps.messaging.subscribe(this.requestTopic, (_topic, payload) => {
      void this.#onRequest(payload);
    });
  }

  async #onRequest(payload: Buffer): Promise<void> {
    let request: unknown;
    try {
      request = JSON.parse(payload.toString('utf8'));
    } catch {
      await this.#reply({ status: 'error', error: { code: 'PAYLOAD_INVALID', message: 'payload is not valid JSON' } });
      return;
    }
    // Echo a transaction even from an otherwise invalid request, when it is usable.
    const raw = request as { transaction?: unknown } | null;
    const transaction =
      raw && typeof raw === 'object' && (typeof raw.transaction === 'string' || typeof raw.transaction === 'number') ? raw.transaction : undefined;
    if (!validate(request)) {
      const message = (validate.errors ?? []).map((e) => `${e.instancePath || 'request'} ${e.message}`).join('; ');
      await this.#reply({ status: 'error', error: { code: 'PAYLOAD_INVALID', message } }, transaction);
      return;
    }
    const max = this.#deps.maxInFlight ?? 32;
    if (this.#inFlight >= max) {
      await this.#reply({ status: 'error', error: { code: 'BUSY', message: 'too many agent requests in flight', retry_after_ms: 250 } }, transaction);
      return;
    }
    this.#inFlight++;
    try {
      const response = await this.#deps.handle({ ...request, source: 'mqtt' });
      const { transaction: _echo, ...data } = response;
      await this.#reply({ status: 'ok', data }, transaction);
    } catch (error) {
      const typed = error instanceof ClawboxError ? error : toClawboxError(error);
      if (typed.code === 'INTERNAL') this.#logger?.error({ err: error }, 'agent request failed');
      const { code, message, ...details } = typed.toJSON();
      await this.#reply({ status: 'error', error: { code, message, ...details } }, transaction);
    } finally {
      this.#inFlight--;
    }
  }

  async #reply(body: Record<string, unknown>, transaction?: string | number): Promise<void> {
    if (this.#stopped) return;
    const payload = JSON.stringify(transaction === undefined ? body : { ...body, transaction });
    try {
      await this.#deps.messaging.publish(this.responseTopic, payload, { qos: 1 });
    } catch (error) {
      this.#logger?.warn({ err: error }, 'agent response could not be published');
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#unsubscribe?.();
    this.#unsubscribe = null;
  }
}
