/**
 * The agent lane's operations: agent.request (language in, validated device actions out) and
 * agent.confirm. The agent acts only as its caller could act: every action it proposes runs through the
 * front door as `device.set` for the same principal (permission, validation, audit), after the device's
 * safety policy (allow / confirm / deny). Every request is audited as one agent decision.
 */
import { ClawboxError, toClawboxError } from '../runtime/errors.js';
import type { MqttRoute } from '../runtime/operations/mqtt-adapter.js';
import { envelopeReply, parseJsonPayload, splitTransaction } from '../runtime/operations/mqtt-adapter.js';
import { type AnyOperation, type OperationContext, defineOperation } from '../runtime/operations/operation.js';
import type { ActOutcome, AgentRequest, AgentResponse } from './agent.js';
import { CONFIRMATION_ID, type ConfirmationStore } from './confirmations.js';
import type { StateValue } from './directory.js';
import type { KnowledgePassage } from './tools.js';

export type AgentPolicy = 'allow' | 'confirm' | 'deny';

/** The agent's response as the scheduler returns it (the path may also be the remote brain). */
export type AgentAnswer = Omit<AgentResponse, 'path'> & { path: AgentResponse['path'] | 'remote' };

export interface AgentOperationDeps {
  /** The scheduler in front of the agent (admission, deadlines, the degrade ladder). */
  handle: (request: AgentRequest & { source?: string; deadline_ms?: number }) => Promise<AgentAnswer>;
  /** The device's safety policy; undefined for an unknown device. */
  policyOf: (device: string) => AgentPolicy | undefined;
  confirmations: ConfirmationStore;
}

export interface AgentRequestInput {
  text: string;
  session?: string;
  deadline_ms?: number;
}

/** What agent.request accepts (also what stand-ins for it in tests accept). */
export const AGENT_REQUEST_INPUT = {
  type: 'object',
  required: ['text'],
  additionalProperties: false,
  properties: {
    text: { type: 'string', minLength: 1, maxLength: 1000 },
    session: { type: 'string', minLength: 1, maxLength: 128 },
    deadline_ms: { type: 'integer', minimum: 1, maximum: 600_000 },
  },
} as const;

/** "confirm 1a2b3c4d" (or "yes 1a2b3c4d") in any channel confirms a pending action. */
const CONFIRM_TEXT = /^\s*(?:confirm|yes)\s+([0-9a-f]{8})\s*[.!]?\s*$/i;

/** The scheduler bounds the deadline; the front door's own timer only backs it up. */
const AGENT_DEADLINE_MS = 600_000;

export function agentOperations(deps: AgentOperationDeps): AnyOperation[] {
  const confirm = async (id: string, ctx: OperationContext) => {
    const pending = deps.confirmations.take(id, ctx.principal);
    const result = await ctx.invoke('device.set', { device: pending.device, command: pending.command });
    await ctx.audit({ op: 'agent.confirm', device: pending.device, proposed: { device: pending.device, command: pending.command }, decision: 'allowed', outcome: 'done', ack: result });
    return { device: pending.device, command: pending.command, result };
  };

  return [
    defineOperation<AgentRequestInput, unknown>({
      name: 'agent.request',
      summary: 'a request in plain language; the agent answers and acts as the caller',
      input: AGENT_REQUEST_INPUT,
      permission: () => 'agent/request',
      // Its actions are audited as device.set; the request itself as an agent decision below.
      changesWorld: false,
      deadlineMs: AGENT_DEADLINE_MS,
      handler: async (input, ctx) => {
        const confirmation = CONFIRM_TEXT.exec(input.text);
        if (confirmation) {
          const done = await confirm(confirmation[1]!.toLowerCase(), ctx);
          return { text: `Done: ${done.device} confirmed.`, actions: [{ device: done.device, command: done.command, result: done.result }], path: 'fast', timings: zeroTimings() };
        }
        const act = async (device: string, command: Record<string, StateValue>): Promise<ActOutcome> => {
          const policy = deps.policyOf(device);
          if (policy === 'deny') throw new ClawboxError('FORBIDDEN', `${device} is not available to the agent`, { device, not_run: true });
          if (policy === 'confirm') {
            // Offer only what the caller could confirm: its permission is checked now, and again on confirm.
            if (!ctx.principal.may(`${device}/set`)) throw new ClawboxError('FORBIDDEN', `you may not control ${device}`, { device, not_run: true });
            const pending = deps.confirmations.create(ctx.principal, device, command);
            await ctx.audit({ op: 'agent.request', device, proposed: { device, command }, decision: 'confirm', outcome: 'pending' });
            return { kind: 'confirm', confirmation: pending };
          }
          return { kind: 'done', result: await ctx.invoke('device.set', { device, command }) };
        };
        // The knowledge base and plugin tools, reached as the caller through the front door: a caller who may
        // not search gets no passages; a tool call needs bridge/request/plugin/<plugin>/<tool>.
        const lookup = async (query: string): Promise<KnowledgePassage[] | null> => {
          try {
            const found = await ctx.invoke<{ hits: KnowledgePassage[] }>('kb.search', { query: query.slice(0, 500), limit: 3 });
            return found.hits;
          } catch (error) {
            const code = toClawboxError(error).code;
            if (code === 'FORBIDDEN' || code === 'NOT_FOUND' || code === 'REQUEST_UNKNOWN') return null;
            if (code === 'PAYLOAD_INVALID') return [];
            throw error;
          }
        };
        const callTool = (id: string, args: Record<string, unknown>) => {
          const [plugin, tool] = id.split('/');
          return ctx.invoke('plugin.call', { plugin, tool, args });
        };
        let response: AgentAnswer;
        const session = input.session ?? defaultSession(ctx);
        try {
          response = await deps.handle({
            text: input.text,
            caller: { kind: ctx.principal.kind, id: ctx.principal.id },
            ...(session ? { session } : {}),
            ...(input.deadline_ms ? { deadline_ms: input.deadline_ms } : {}),
            source: ctx.source,
            signal: ctx.signal,
            ...(ctx.stream ? { onText: ctx.stream } : {}),
            act,
            lookup,
            callTool,
          });
        } catch (error) {
          const err = toClawboxError(error);
          await ctx.audit({ op: 'agent.request', decision: 'rejected', outcome: 'not_run', error: { code: err.code, message: err.message } });
          throw err;
        }
        await auditDecision(ctx, response);
        return response;
      },
    }),
    defineOperation<{ id: string }, unknown>({
      name: 'agent.confirm',
      summary: 'confirm an action the agent proposed for a device whose safety policy asks for it',
      input: { type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string', pattern: CONFIRMATION_ID.source } } },
      permission: () => 'agent/confirm',
      changesWorld: false,
      deadlineMs: 60_000,
      handler: (input, ctx) => confirm(input.id, ctx),
    }),
  ];
}

/**
 * One audit record per agent decision: every action it proposed (or which rule matched), and what became
 * of them. Each action that ran also has its own device.set record with the device's acknowledgement.
 */
async function auditDecision(ctx: OperationContext, response: AgentAnswer): Promise<void> {
  const refused = response.refused ?? [];
  const pending = response.confirmations ?? [];
  if (response.actions.length === 0 && refused.length === 0) return;
  const failed = (result: unknown) => typeof result === 'object' && result !== null && 'error' in result;
  const proposed = [
    ...response.actions.map((a) => ({ device: a.device, command: a.command, outcome: failed(a.result) ? 'failed' : 'done' })),
    ...refused.map((r) => ({ device: r.device, command: r.command, outcome: 'not_run', code: r.code })),
    ...pending.map((p) => ({ device: p.device, command: p.command, outcome: 'pending' })),
  ];
  const devices = [...new Set(proposed.map((p) => p.device).filter((d): d is string => typeof d === 'string'))];
  const ran = response.actions.length > 0;
  const firstRefusal = refused[0];
  await ctx.audit({
    op: 'agent.request',
    ...(devices.length === 1 ? { device: devices[0]! } : {}),
    proposed,
    rule: response.path === 'fast' ? 'fast-path intent' : `model (${response.path})`,
    decision: ran ? 'allowed' : firstRefusal?.code === 'FORBIDDEN' ? 'forbidden' : 'rejected',
    outcome: !ran ? 'not_run' : response.actions.some((a) => failed(a.result)) ? 'failed' : 'done',
    ...(firstRefusal ? { error: { code: firstRefusal.code, message: firstRefusal.reason } } : {}),
  });
}

/**
 * The conversation a request without `session` belongs to, so "turn it off" follows the caller's last
 * turn: one per MQTT connection (client id), else one per caller.
 */
export function defaultSession(ctx: Pick<OperationContext, 'principal' | 'meta'>): string | undefined {
  const clientId = ctx.meta.client_id;
  const raw = ctx.principal.kind === 'mqtt' && clientId ? `mqtt:${clientId}` : ctx.principal.kind === 'system' ? undefined : `${ctx.principal.kind}:${ctx.principal.id}`;
  return raw?.slice(0, 128);
}

function zeroTimings() {
  return { queue_ms: 0, prefill_ms: 0, decode_ms: 0, total_ms: 0 };
}

/** The agent's MQTT topics: `<base>/agent/request` and `<base>/agent/confirm`, answered on `<base>/agent/response`. */
export function agentMqttRoutes(base: string): MqttRoute[] {
  const responseTopic = `${base}/agent/response`;
  const route = (name: 'request' | 'confirm', operation: string): MqttRoute => ({
    filter: `${base}/agent/${name}`,
    decode: (_topic, payload) => {
      const { fields, transaction } = splitTransaction(parseJsonPayload(payload));
      return { operation, input: fields, ...(transaction === undefined ? {} : { transaction }) };
    },
    reply: (_topic, outcome) => {
      if (!outcome.ok) return envelopeReply(responseTopic, outcome);
      // The transaction travels in the envelope, not inside the agent's own answer.
      const { transaction: _tx, ...data } = outcome.data as Record<string, unknown>;
      return envelopeReply(responseTopic, { ...outcome, data });
    },
  });
  return [route('request', 'agent.request'), route('confirm', 'agent.confirm')];
}
