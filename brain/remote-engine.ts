/**
 * A brain link seen as an engine: the agent's model path runs on it as on a local model (same prompt,
 * same tool-call schema, same parsing, validation and front door for what comes back), only the
 * generation happens on the brain. Made per request: it carries that request's deadline, its
 * pseudonymised session key and the hooks that measure it and record what left the box.
 */
import type { GenerateRequest, GenerateResult, JsonGrammar } from '../models/index.js';
import type { BrainReply, BrainRequest } from './backend.js';
import type { BrainLink } from './client.js';

export interface RemoteEngineOptions {
  /** Epoch ms: the caller's deadline (the gRPC deadline). */
  deadline: number;
  signal?: AbortSignal;
  /** Sent instead of the request's own session key (already pseudonymised, or empty). */
  session: string;
  /** Just before the request leaves (the audit record of the offload). */
  onSend?: (request: BrainRequest) => void | Promise<void>;
  /** Each text piece as it arrives (inter-token gaps for the scheduler's stall watch). */
  onText?: (text: string) => void;
  onReply?: (reply: BrainReply) => void;
  onError?: (error: unknown) => void;
}

/** The schema travels to the brain, which compiles its own grammar; the edge compiles nothing. */
interface RemoteGrammar {
  readonly schema: object;
  readonly remote: true;
}

export interface RemoteEngine {
  generate(request: GenerateRequest): Promise<GenerateResult>;
  grammarFor(schema: object): Promise<JsonGrammar>;
}

export function remoteEngine(link: BrainLink, options: RemoteEngineOptions): RemoteEngine {
  return {
    grammarFor: async (schema) => ({ schema, remote: true }) as RemoteGrammar as unknown as JsonGrammar,
    async generate(request) {
      const started = performance.now();
      const wire: BrainRequest = {
        prefix: request.prefix ?? '',
        prompt: request.prompt,
        max_tokens: Math.max(1, Math.floor(request.maxTokens)),
        tool_schema: request.grammar?.schema ?? null,
        session: options.session,
        temperature: request.temperature ?? 0,
        stop: [...(request.stop ?? [])],
      };
      await options.onSend?.(wire);
      const signal = request.signal && options.signal ? AbortSignal.any([request.signal, options.signal]) : (request.signal ?? options.signal);
      let reply: BrainReply;
      try {
        reply = await link.generate(wire, {
          deadline: options.deadline,
          ...(signal ? { signal } : {}),
          onText: (text) => {
            options.onText?.(text);
            request.onText?.(text);
          },
        });
      } catch (error) {
        options.onError?.(error);
        throw error;
      }
      options.onReply?.(reply);
      let json: unknown;
      if (wire.tool_schema) {
        try {
          json = JSON.parse(reply.text);
        } catch {
          json = undefined;
        }
      }
      const total = performance.now() - started;
      return {
        text: reply.text,
        ...(json !== undefined ? { json } : {}),
        stop_reason: reply.stop_reason,
        prompt_tokens: reply.usage.prompt_tokens,
        cached_tokens: reply.usage.cached_tokens,
        evaluated_tokens: reply.usage.evaluated_tokens,
        generated_tokens: reply.usage.generated_tokens,
        forced_tokens: 0,
        sequence: -1,
        timings: { queue_ms: reply.usage.queue_ms, prefill_ms: reply.usage.prefill_ms, decode_ms: reply.usage.decode_ms, total_ms: total },
      };
    },
  };
}
