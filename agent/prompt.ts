/**
 * The model path's fixed prefix (system prompt + device list) and the tool-call JSON Schema the grammar
 * is built from. The schema is reduced to what node-llama-cpp's JSON-Schema grammar supports (enum,
 * const, type, oneOf, objects, bounded strings); ranges are left to ajv validation afterwards. The
 * prefix depends only on the device list, so it is reused from the KV cache until devices change.
 */
import type { AgentDevice, JsonSchema } from './directory.js';

export const NO_DEVICE = 'none';
const MAX_REPLY = 120;

export interface ToolCall {
  device: string;
  command?: Record<string, unknown>;
  reply?: string;
}

/** A property schema in the grammar's subset, or null when it cannot be expressed (then it is left out). */
export function grammarSubset(schema: unknown, depth = 0): JsonSchema | null {
  if (!schema || typeof schema !== 'object' || depth > 4) return null;
  const s = schema as JsonSchema;
  const description = typeof s.description === 'string' ? { description: s.description } : {};
  if (Array.isArray(s.enum)) {
    const values = s.enum.filter((v) => v === null || ['string', 'number', 'boolean'].includes(typeof v));
    return values.length > 0 ? { enum: values, ...description } : null;
  }
  if ('const' in s) return { const: s.const, ...description };
  for (const key of ['anyOf', 'oneOf'] as const) {
    if (Array.isArray(s[key])) {
      const options = (s[key] as unknown[]).map((o) => grammarSubset(o, depth + 1)).filter((o): o is JsonSchema => o !== null);
      if (options.length === 0) return null;
      return options.length === 1 ? options[0]! : { oneOf: options, ...description };
    }
  }
  switch (s.type) {
    case 'integer':
    case 'number':
    case 'boolean':
    case 'null':
      return { type: s.type, ...description };
    case 'string': {
      const maxLength = Math.min(typeof s.maxLength === 'number' ? s.maxLength : 48, 48);
      return { type: 'string', maxLength, ...description };
    }
    case 'object': {
      const properties = propertiesOf(s, depth + 1);
      if (Object.keys(properties).length === 0) return null;
      return { type: 'object', properties, required: Object.keys(properties) };
    }
    default:
      return null;
  }
}

function propertiesOf(schema: JsonSchema, depth = 0): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  const props = schema.properties;
  if (!props || typeof props !== 'object') return out;
  for (const [key, value] of Object.entries(props as Record<string, unknown>)) {
    const g = grammarSubset(value, depth);
    if (g) out[key] = g;
  }
  return out;
}

/** One alternative per settable property, so the grammar always produces a non-empty command. */
function commandAlternatives(schema: JsonSchema | undefined): JsonSchema[] {
  if (!schema) return [];
  return Object.entries(propertiesOf(schema)).map(([key, value]) => ({
    type: 'object',
    properties: { [key]: value },
    required: [key],
  }));
}

/** `replyChars`: the longest free-text reply the grammar allows (shorter on the scheduler's short rung). */
export function toolCallSchema(devices: ReadonlyArray<{ device: AgentDevice; schema: JsonSchema | undefined }>, replyChars = MAX_REPLY): JsonSchema {
  const options: JsonSchema[] = [];
  for (const { device, schema } of devices) {
    const alternatives = commandAlternatives(schema);
    if (alternatives.length === 0) continue;
    options.push({
      type: 'object',
      properties: {
        device: { const: device.id },
        command: alternatives.length === 1 ? alternatives[0]! : { oneOf: alternatives },
      },
      required: ['device', 'command'],
    });
  }
  options.push({
    type: 'object',
    properties: { device: { const: NO_DEVICE }, reply: { type: 'string', maxLength: Math.min(replyChars, MAX_REPLY) } },
    required: ['device', 'reply'],
  });
  return options.length === 1 ? options[0]! : { oneOf: options };
}

function describeProperty(key: string, schema: JsonSchema): string {
  if (Array.isArray(schema.enum)) return `${key}: ${schema.enum.map(String).join('|')}`;
  const range =
    typeof schema.minimum === 'number' && typeof schema.maximum === 'number' ? ` ${schema.minimum}-${schema.maximum}` : '';
  const step = typeof schema.multipleOf === 'number' ? ` step ${schema.multipleOf}` : '';
  const type = typeof schema.type === 'string' ? schema.type : 'value';
  return `${key}: ${type}${range}${step}`;
}

function describeDevice(device: AgentDevice, schema: JsonSchema | undefined): string {
  const props = schema?.properties && typeof schema.properties === 'object' ? (schema.properties as Record<string, JsonSchema>) : {};
  const settable = Object.entries(props).map(([k, v]) => describeProperty(k, v));
  const readings = device.capabilities.flatMap((c) => (c.readings ?? []).map((r) => `${r.property}${r.unit ? ` (${r.unit})` : ''}`));
  const parts = [];
  if (settable.length > 0) parts.push(`set ${settable.join('; ')}`);
  if (readings.length > 0) parts.push(`reports ${readings.join(', ')}`);
  return `- ${device.id} "${device.name}"${parts.length > 0 ? `: ${parts.join('; ')}` : ''}`;
}

/** The fixed prefix: instructions and the device list. No state values (they change; the prefix must not). */
export function systemPrompt(devices: ReadonlyArray<{ device: AgentDevice; schema: JsonSchema | undefined }>): string {
  const lines = devices.map(({ device, schema }) => describeDevice(device, schema));
  return [
    'You are clawbox, the assistant of a smart home. You can control these devices:',
    ...lines,
    'Answer every request with one JSON object and nothing else.',
    'To control a device: {"device": "<id>", "command": {"<property>": <value>}}.',
    `Otherwise: {"device": "${NO_DEVICE}", "reply": "<a short answer>"}.`,
    '',
  ].join('\n');
}

const REPLY_START = new RegExp(`^\\s*\\{\\s*"device"\\s*:\\s*"${NO_DEVICE}"\\s*,\\s*"reply"\\s*:\\s*"`);

/**
 * A "none" reply the output budget cut off mid-string, closed at its last whole character; null for
 * anything else (a cut device command is never guessed at).
 */
export function salvageReply(text: string): ToolCall | null {
  if (!REPLY_START.test(text)) return null;
  // Cut after the closing quote, cut inside the string, or cut inside an escape (dropped).
  const whole = text.replace(/((?:^|[^\\])(?:\\\\)*)\\(?:u[0-9a-fA-F]{0,3})?$/, '$1');
  for (const candidate of [`${text}}`, `${whole}"}`]) {
    try {
      const call = JSON.parse(candidate) as ToolCall;
      if (call.device === NO_DEVICE && typeof call.reply === 'string' && call.reply.trim()) return { device: NO_DEVICE, reply: call.reply };
    } catch {
      // Try the next reading.
    }
  }
  return null;
}

/** Keeps user text on one line and away from the turn markers, so it cannot forge a turn. */
export function sanitizeUserText(text: string, maxChars = 500): string {
  return text
    .replace(/\p{Cc}+/gu, ' ')
    .replace(/\b(User|Assistant):/gi, '$1 :')
    .trim()
    .slice(0, maxChars);
}

export function conversationPrompt(history: ReadonlyArray<{ user: string; assistant: string }>, text: string): string {
  const turns = history.map((t) => `User: ${t.user}\nAssistant: ${t.assistant}\n`).join('');
  return `${turns}User: ${text}\nAssistant: `;
}
