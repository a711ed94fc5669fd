/**
 * Tools and documents for the model path. Plugin tools are offered to the model as pseudo devices
 * (`tool:<plugin>/<tool>` whose one command is `args`), so the same grammar, jump-forward plan and ajv
 * check serve devices and tools; the call itself runs as the caller through the front door (plugin.call).
 * Passages of the knowledge base go into the prompt with their source, and the answer cites them.
 */
import type { AgentDevice, JsonSchema } from './directory.js';

/** A plugin tool the agent may offer to the model (PluginHost.tools() provides them). */
export interface AgentTool {
  /** "plugin/tool" */
  id: string;
  description: string;
  arguments: JsonSchema;
  result: JsonSchema | null;
}

/** A passage of the knowledge base, with where it comes from. */
export interface KnowledgePassage {
  source: string;
  title: string;
  heading: string;
  text: string;
}

export const TOOL_PREFIX = 'tool:';
/** Longest tool result text an answer carries. */
const RESULT_CHARS = 400;
/** Longest passage put into the prompt. */
const PASSAGE_CHARS = 600;

export function isToolId(id: string): boolean {
  return id.startsWith(TOOL_PREFIX);
}

/** The tool's arguments reduced to the required ones: the grammar asks for every property it names. */
function requiredArguments(schema: JsonSchema): JsonSchema {
  const required = Array.isArray(schema.required) ? (schema.required as string[]) : [];
  const properties = (schema.properties && typeof schema.properties === 'object' ? schema.properties : {}) as Record<string, JsonSchema>;
  const kept = Object.fromEntries(Object.entries(properties).filter(([key]) => required.includes(key)));
  return { type: 'object', properties: kept, required: Object.keys(kept) };
}

/** Tools as pseudo devices for the grammar and the jump-forward plan. */
export function toolDevices(tools: readonly AgentTool[]): Array<{ device: AgentDevice; schema: JsonSchema }> {
  return tools
    .filter((tool) => Object.keys((requiredArguments(tool.arguments).properties as object) ?? {}).length > 0)
    .map((tool) => ({
      device: { id: `${TOOL_PREFIX}${tool.id}`, name: tool.id, capabilities: [] },
      schema: { type: 'object', properties: { args: requiredArguments(tool.arguments) } },
    }));
}

/** The prompt lines that describe the tools (after the device list, so the cached prefix covers them). */
export function toolPrompt(tools: readonly AgentTool[]): string {
  const offered = toolDevices(tools).map((d) => tools.find((t) => `${TOOL_PREFIX}${t.id}` === d.device.id)!);
  if (offered.length === 0) return '';
  const lines = offered.map((tool) => {
    const args = requiredArguments(tool.arguments).properties as Record<string, JsonSchema>;
    const described = Object.entries(args).map(([key, s]) => `${key} (${typeof s.type === 'string' ? s.type : 'value'})`);
    return `- ${TOOL_PREFIX}${tool.id}: ${tool.description.slice(0, 200)} Arguments: ${described.join(', ')}.`;
  });
  return [
    'You can also call these tools for facts and calculations:',
    ...lines,
    `To call a tool: {"device": "${TOOL_PREFIX}<name>", "command": {"args": {...}}}.`,
    '',
  ].join('\n');
}

/** A tool result as the answer's text: mathjs's own text, a table's rows, else compact JSON. */
export function formatToolResult(result: unknown): string {
  const r = result as Record<string, unknown> | null;
  if (r && typeof r === 'object' && typeof r.text === 'string') return r.text.slice(0, RESULT_CHARS);
  if (r && typeof r === 'object' && Array.isArray(r.rows)) {
    const rows = r.rows as Array<Record<string, unknown>>;
    if (rows.length === 1 && Object.keys(rows[0] ?? {}).length === 1) return String(Object.values(rows[0]!)[0]);
    const shown = JSON.stringify(rows.slice(0, 10));
    return `${rows.length} row${rows.length === 1 ? '' : 's'}${r.truncated ? ' (more not shown)' : ''}: ${shown}`.slice(0, RESULT_CHARS);
  }
  return JSON.stringify(result ?? null).slice(0, RESULT_CHARS);
}

/** The passages as a block of the prompt: numbered, each with its document and section. */
export function passagesPrompt(passages: readonly KnowledgePassage[]): string {
  if (passages.length === 0) return '';
  const lines = passages.map(
    (p, i) => `[${i + 1}] ${p.title}${p.heading ? ` — ${p.heading}` : ''}: ${p.text.replace(/\s+/g, ' ').replace(/\b(User|Assistant):/gi, '$1 :').slice(0, PASSAGE_CHARS)}`,
  );
  return `From the owner's documents (answer from them when they fit):\n${lines.join('\n')}\n`;
}

/** " (source: House rules — Quiet hours)": what an answer built on a passage cites. */
export function citation(passage: Pick<KnowledgePassage, 'title' | 'heading'>): string {
  return `(source: ${passage.title}${passage.heading ? ` — ${passage.heading}` : ''})`;
}

/** The fast-path answer to "what does the manual say about X": the passage itself, cited. */
export function passageAnswer(passage: KnowledgePassage): string {
  const text = passage.text.replace(/\s+/g, ' ').trim();
  return `${text.length > RESULT_CHARS * 2 ? `${text.slice(0, RESULT_CHARS * 2)}…` : text} ${citation(passage)}`;
}
