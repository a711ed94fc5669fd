/**
 * Client tools (OpenAI `tools` / `tool_choice`): the model answers a client's conversation either with text
 * or with a call of one of the client's functions, under a grammar built from the functions' JSON Schemas,
 * so the call always names a declared function with arguments of the declared shape. The client runs the
 * function, not the box: nothing here acts on devices. The arguments are validated against the client's
 * own schema (ajv) before they are returned; a call that does not validate is refused, never passed on.
 *
 * Output: `{"function": "<name>", "arguments": {...}}` or `{"reply": "<text>"}` (the reply streams).
 */
import type { ValidateFunction } from 'ajv';
import { ClawboxError } from '../runtime/errors.js';
import type { GenerateResult } from '../models/index.js';
import { type AnyOperation, defineOperation } from '../runtime/operations/operation.js';
import { loadAjv } from '../runtime/operations/validator.js';
import type { AgentEngine, AgentRequest } from './agent.js';
import type { JsonSchema } from './directory.js';
import { grammarSubset, sanitizeUserText } from './prompt.js';
import { replyTextStream } from './reply-stream.js';

export interface ClientTool {
  name: string;
  description?: string;
  parameters?: JsonSchema;
}

export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

export interface CompletionMessage {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  content: string;
  /** A tool message: the function whose result it is. */
  name?: string;
  /** An assistant message that called functions. */
  tool_calls?: { name: string; arguments: string }[];
}

export interface CompletionRequest {
  messages: CompletionMessage[];
  tools: ClientTool[];
  tool_choice: ToolChoice;
}

export interface ToolCallOut {
  id: string;
  name: string;
  /** JSON text, as OpenAI's API carries it. */
  arguments: string;
}

/** What `agent.complete` accepts (the OpenAI adapter maps the API's shapes onto it). */
export const COMPLETION_INPUT = {
  type: 'object',
  required: ['messages', 'tools', 'tool_choice'],
  additionalProperties: false,
  properties: {
    messages: {
      type: 'array',
      minItems: 1,
      maxItems: 200,
      items: {
        type: 'object',
        required: ['role', 'content'],
        additionalProperties: false,
        properties: {
          role: { enum: ['system', 'developer', 'user', 'assistant', 'tool'] },
          content: { type: 'string', maxLength: 20_000 },
          name: { type: 'string', maxLength: 64 },
          tool_calls: {
            type: 'array',
            maxItems: 16,
            items: {
              type: 'object',
              required: ['name', 'arguments'],
              additionalProperties: false,
              properties: { name: { type: 'string', maxLength: 64 }, arguments: { type: 'string', maxLength: 20_000 } },
            },
          },
        },
      },
    },
    tools: {
      type: 'array',
      maxItems: 64,
      items: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
          description: { type: 'string', maxLength: 2000 },
          parameters: { type: 'object' },
        },
      },
    },
    tool_choice: {
      anyOf: [
        { enum: ['auto', 'none', 'required'] },
        { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', maxLength: 64 } } },
      ],
    },
    session: { type: 'string', minLength: 1, maxLength: 128 },
  },
} as const;

const MAX_REPLY = 400;
const REPLY_HEAD = /^\s*\{\s*"reply"\s*:\s*"/;
const CALL_HEAD = /"function"/;

/** The functions the model may call under this tool_choice; NOT_FOUND for a named one that is not declared. */
function allowedTools(request: CompletionRequest): ClientTool[] {
  const choice = request.tool_choice;
  if (choice === 'none') return [];
  if (typeof choice === 'object') {
    const tool = request.tools.find((t) => t.name === choice.name);
    if (!tool) throw new ClawboxError('PAYLOAD_INVALID', `tool_choice names "${choice.name.slice(0, 64)}", which is not among the tools`);
    return [tool];
  }
  return request.tools;
}

/** The arguments' grammar: the client's schema in the subset the grammar supports (ajv checks the rest). */
function argumentsGrammar(parameters: JsonSchema | undefined): JsonSchema {
  return grammarSubset(parameters) ?? { type: 'object', properties: {} };
}

export function completionSchema(request: CompletionRequest): JsonSchema {
  const tools = allowedTools(request);
  const options: JsonSchema[] = tools.map((tool) => ({
    type: 'object',
    properties: { function: { const: tool.name }, arguments: argumentsGrammar(tool.parameters) },
    required: ['function', 'arguments'],
  }));
  const mayReply = request.tool_choice === 'auto' || request.tool_choice === 'none' || tools.length === 0;
  if (mayReply) options.push({ type: 'object', properties: { reply: { type: 'string', maxLength: MAX_REPLY } }, required: ['reply'] });
  return options.length === 1 ? options[0]! : { oneOf: options };
}

/** The fixed part: instructions, the client's system messages and its functions. */
export function completionPrefix(request: CompletionRequest): string {
  const system = request.messages.filter((m) => m.role === 'system' || m.role === 'developer').map((m) => m.content.trim()).filter(Boolean);
  const tools = allowedTools(request);
  const lines = ['You are clawbox, a helpful assistant.', ...system];
  if (tools.length > 0) {
    lines.push('You can call these functions:');
    for (const tool of tools) lines.push(`- ${tool.name}${tool.parameters ? ` ${JSON.stringify(tool.parameters)}` : ''}${tool.description ? `: ${tool.description}` : ''}`);
    lines.push('Answer with one JSON object and nothing else: {"function": "<name>", "arguments": {...}} to call a function, or {"reply": "<answer>"}.');
  } else {
    lines.push('Answer with one JSON object and nothing else: {"reply": "<answer>"}.');
  }
  return `${lines.join('\n')}\n\n`;
}

/** The conversation, user and function results kept on their own lines (they cannot forge a turn). */
export function completionPrompt(request: CompletionRequest): string {
  const turns: string[] = [];
  for (const message of request.messages) {
    const text = sanitizeUserText(message.content, 4000);
    if (message.role === 'user') turns.push(`User: ${text}`);
    else if (message.role === 'assistant') {
      const calls = (message.tool_calls ?? []).map((c) => `{"function": ${JSON.stringify(c.name)}, "arguments": ${sanitizeUserText(c.arguments, 4000)}}`);
      turns.push(`Assistant: ${calls.length > 0 ? calls.join(' ') : JSON.stringify({ reply: text })}`);
    } else if (message.role === 'tool') turns.push(`Function result${message.name ? ` (${sanitizeUserText(message.name, 64)})` : ''}: ${text}`);
  }
  return `${turns.join('\n')}\nAssistant: `;
}

export interface CompletionOutcome {
  text: string;
  tool_calls: ToolCallOut[];
  result: GenerateResult;
}

/**
 * Runs a completion on `engine` (the scheduler's instrumented one): grammar-constrained, streamed reply
 * text, the signal and output budget of the job. Throws MODEL_OUTPUT_INVALID for a call whose arguments
 * do not match the client's schema, or output the budget cut before it was a whole call.
 */
export async function runCompletion(
  engine: AgentEngine,
  request: CompletionRequest,
  options: { maxTokens: number; signal?: AbortSignal; onText?: (text: string) => void; session?: string; newId: () => string },
): Promise<CompletionOutcome> {
  const validators = clientValidators(request.tools);
  const grammar = await engine.grammarFor(completionSchema(request));
  const result = await engine.generate({
    prefix: completionPrefix(request),
    prompt: completionPrompt(request),
    maxTokens: options.maxTokens,
    grammar,
    ...(options.session ? { session: options.session } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onText ? { onText: replyTextStream(options.onText, { head: REPLY_HEAD, other: CALL_HEAD }) } : {}),
  });
  const json = result.json as { function?: unknown; arguments?: unknown; reply?: unknown } | undefined;
  if (json && typeof json.function === 'string') {
    const tool = request.tools.find((t) => t.name === json.function);
    if (!tool) throw new ClawboxError('MODEL_OUTPUT_INVALID', `the model called an undeclared function "${json.function.slice(0, 64)}"`);
    const validate = validators.get(tool.name);
    if (validate) {
      if (!validate(json.arguments)) {
        throw new ClawboxError('MODEL_OUTPUT_INVALID', `the model's arguments for ${tool.name} do not match its parameters schema`, { function: tool.name });
      }
    }
    return { text: '', tool_calls: [{ id: options.newId(), name: tool.name, arguments: JSON.stringify(json.arguments ?? {}) }], result };
  }
  if (json && typeof json.reply === 'string') return { text: json.reply.trim(), tool_calls: [], result };
  const cut = result.stop_reason === 'max_tokens' ? salvage(result.text) : null;
  if (cut !== null) return { text: cut, tool_calls: [], result };
  throw new ClawboxError('MODEL_OUTPUT_INVALID', result.stop_reason === 'max_tokens' ? 'the output budget ran out before the function call was whole' : 'the model did not answer with a reply or a function call');
}

/**
 * The client's parameter schemas, compiled before any model work (a schema that does not compile is the
 * client's mistake: PAYLOAD_INVALID naming the tool). Foreign schemas get an Ajv instance of their own per
 * request, like plugin schemas, so their $ids cannot collide with ours and nothing of them stays behind.
 */
function clientValidators(tools: readonly ClientTool[]): Map<string, ValidateFunction> {
  const ajv = new (loadAjv().Ajv)({ strict: false, allErrors: false, allowUnionTypes: true });
  const out = new Map<string, ValidateFunction>();
  for (const tool of tools) {
    if (!tool.parameters) continue;
    try {
      out.set(tool.name, ajv.compile(tool.parameters as object));
    } catch (error) {
      throw new ClawboxError('PAYLOAD_INVALID', `tools: the parameters of ${tool.name} are not a JSON Schema this box can check: ${(error as Error).message.slice(0, 200)}`);
    }
  }
  return out;
}

/** A reply the output budget cut mid-string, closed at its last whole character. */
function salvage(text: string): string | null {
  const head = REPLY_HEAD.exec(text);
  if (!head) return null;
  let out = '';
  replyTextStream((piece) => {
    out += piece;
  })(`{"device": "none", "reply": "${text.slice(head[0].length)}`);
  return out.trim() || null;
}

/** agent.complete's input: COMPLETION_INPUT. */
export interface CompletionInput extends CompletionRequest {
  session?: string;
}

/**
 * `agent.complete`: a client's conversation and functions through the scheduler (its source's deadline and
 * ladder, like agent.request) to the model. Needs `agent/request`; it acts on nothing, so nothing is audited.
 */
export function completeOperation(deps: {
  handle: (request: AgentRequest & { source?: string }) => Promise<unknown>;
}): AnyOperation {
  return defineOperation<CompletionInput, unknown>({
    name: 'agent.complete',
    summary: "a client's conversation answered with text or a call of one of its own functions (OpenAI tools); acts on nothing",
    input: COMPLETION_INPUT,
    permission: () => 'agent/request',
    changesWorld: false,
    // The scheduler bounds the deadline (the source's); this only backs it up.
    deadlineMs: 600_000,
    handler: (input, ctx) => {
      const lastUser = [...input.messages].reverse().find((m) => m.role === 'user')?.content.trim();
      return deps.handle({
        // What logs and the scheduler's planner read as "the request"; the completion is what runs.
        text: (lastUser || 'function results').slice(0, 1000),
        completion: { messages: input.messages, tools: input.tools, tool_choice: input.tool_choice },
        ...(input.session ? { session: input.session } : {}),
        source: ctx.source,
        signal: ctx.signal,
        ...(ctx.stream ? { onText: ctx.stream } : {}),
      });
    },
  });
}
