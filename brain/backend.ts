/**
 * What the brain serves from: a backend turns one request into one answer. The model backend runs on a
 * loaded engine of the models feature (through its public types); tests use a scripted one
 * (brain/testing/). A backend never touches devices: it returns text, the edge decides what it means.
 */
import type { GenerateRequest, GenerateResult, JsonGrammar } from '../models/index.js';
import { ClawboxError } from '../runtime/errors.js';

export interface BrainRequest {
  prefix: string;
  prompt: string;
  max_tokens: number;
  /** The tool call's JSON Schema (the output is constrained to it), or null for free text. */
  tool_schema: object | null;
  /** Pseudonymised session key. */
  session: string;
  temperature: number;
  stop: string[];
}

export interface BrainUsage {
  prompt_tokens: number;
  cached_tokens: number;
  evaluated_tokens: number;
  generated_tokens: number;
  queue_ms: number;
  prefill_ms: number;
  decode_ms: number;
}

export interface BrainReply {
  text: string;
  stop_reason: 'eos' | 'grammar' | 'stop' | 'max_tokens';
  usage: BrainUsage;
  model: string;
}

export interface BrainHealth {
  serving: boolean;
  model: string;
  sequences: number;
}

export interface BrainBackend {
  generate(request: BrainRequest, options: { signal: AbortSignal; onText?: (text: string) => void }): Promise<BrainReply>;
  health(): BrainHealth;
}

/** What the model backend needs of an engine (models' ModelEngine has it). */
export interface BrainEngine {
  generate(request: GenerateRequest): Promise<GenerateResult>;
  grammarFor(schema: object): Promise<JsonGrammar>;
  sequences(): { total: number; busy: number; waiting: number };
}

/** Serves from the models feature's loaded engine; `name` is the model's configured name. */
export function modelBackend(current: () => { engine: BrainEngine; name: string } | null): BrainBackend {
  return {
    async generate(request, { signal, onText }) {
      const loaded = current();
      if (!loaded) throw new ClawboxError('MODEL_NOT_LOADED', 'the brain has no model loaded');
      const grammar = request.tool_schema ? await loaded.engine.grammarFor(request.tool_schema) : undefined;
      const result = await loaded.engine.generate({
        ...(request.prefix ? { prefix: request.prefix } : {}),
        prompt: request.prompt,
        maxTokens: request.max_tokens,
        ...(grammar ? { grammar } : {}),
        ...(request.session ? { session: request.session } : {}),
        ...(request.temperature > 0 ? { temperature: request.temperature } : {}),
        ...(request.stop.length > 0 ? { stop: request.stop } : {}),
        signal,
        ...(onText ? { onText: (text: string) => onText(text) } : {}),
      });
      return {
        text: result.text,
        stop_reason: result.stop_reason,
        model: loaded.name,
        usage: {
          prompt_tokens: result.prompt_tokens,
          cached_tokens: result.cached_tokens,
          evaluated_tokens: result.evaluated_tokens,
          generated_tokens: result.generated_tokens,
          queue_ms: result.timings.queue_ms,
          prefill_ms: result.timings.prefill_ms,
          decode_ms: result.timings.decode_ms,
        },
      };
    },
    health() {
      const loaded = current();
      return loaded ? { serving: true, model: loaded.name, sequences: loaded.engine.sequences().total } : { serving: false, model: '', sequences: 0 };
    },
  };
}
