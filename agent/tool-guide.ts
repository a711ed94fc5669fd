/**
 * Jump-forward decoding of a tool call. The output is always
 *   {"device": "<id>", "command": {"<property>": <value>}}   or   {"device": "none", "reply": "<text>"}
 * so everything but the id, the property name and the value is known in advance, and even those are
 * known as soon as their first tokens leave one candidate. The guide forces that text (evaluated in one
 * batch) and lets the model sample only where there is a real choice, each choice under its own grammar:
 * the device ids, the device's property names, and the property's JSON Schema for the value.
 */
import type { LlamaGrammar } from 'node-llama-cpp';
import type { DecodeGuide, JsonGrammar } from '../models/index.js';
import type { AgentDevice, JsonSchema } from './directory.js';
import { NO_DEVICE, grammarSubset } from './prompt.js';

/** What the guide needs from an engine to compile its grammars. */
export interface GuideCompiler {
  gbnf(text: string): Promise<LlamaGrammar>;
  grammarFor(schema: object): Promise<JsonGrammar>;
}

const REPLY_MAX = 120;
const START = '{"device": "';

function literal(value: string): string {
  return JSON.stringify(value); // ids and property names are plain; JSON escaping suits GBNF literals
}

function choice(options: readonly string[]): string {
  return `root ::= (${options.map(literal).join(' | ')}) "\\""`;
}

const REPLY_GBNF = `root ::= char{0,${REPLY_MAX}} "\\""\nchar ::= [^"\\\\\\x7F\\x00-\\x1F] | "\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4})`;

interface DevicePlan {
  id: string;
  properties: string[];
  propertyGrammar: LlamaGrammar | null;
  valueGrammars: Map<string, LlamaGrammar>;
}

/** Compiled grammars for one device list; build once per device list and engine, reuse per request. */
export class ToolCallPlan {
  private constructor(
    readonly ids: readonly string[],
    readonly deviceGrammar: LlamaGrammar,
    readonly replyGrammar: LlamaGrammar,
    readonly devices: ReadonlyMap<string, DevicePlan>,
  ) {}

  static async build(devices: ReadonlyArray<{ device: AgentDevice; schema: JsonSchema | undefined }>, compiler: GuideCompiler): Promise<ToolCallPlan> {
    const plans = new Map<string, DevicePlan>();
    for (const { device, schema } of devices) {
      const props = schema?.properties && typeof schema.properties === 'object' ? (schema.properties as Record<string, unknown>) : {};
      const valueGrammars = new Map<string, LlamaGrammar>();
      for (const [property, propSchema] of Object.entries(props)) {
        const subset = grammarSubset(propSchema);
        if (subset) valueGrammars.set(property, (await compiler.grammarFor(subset)).grammar as unknown as LlamaGrammar);
      }
      const properties = [...valueGrammars.keys()];
      if (properties.length === 0) continue;
      const propertyGrammar = properties.length > 1 ? await compiler.gbnf(choice(properties)) : null;
      plans.set(device.id, { id: device.id, properties, propertyGrammar, valueGrammars });
    }
    const ids = [...plans.keys(), NO_DEVICE];
    return new ToolCallPlan(ids, await compiler.gbnf(choice(ids)), await compiler.gbnf(REPLY_GBNF), plans);
  }

  /** `replyChars`: close a "none" reply after this many characters (the scheduler's short rung). */
  guide(options: { replyChars?: number } = {}): DecodeGuide {
    return new ToolCallGuide(this, Math.min(REPLY_MAX, options.replyChars ?? REPLY_MAX));
  }
}

function isWholeJsonStringBody(body: string): boolean {
  try {
    JSON.parse(`"${body}"`);
    return true;
  } catch {
    return false;
  }
}

type Stage = 'device' | 'property' | 'value' | 'reply' | 'done';

class ToolCallGuide implements DecodeGuide {
  readonly start = START;
  #stage: Stage = 'device';
  /** Where the current stage's sampled text begins. */
  #mark = START.length;
  #device: DevicePlan | null = null;
  #property: string | null = null;

  constructor(
    private readonly plan: ToolCallPlan,
    private readonly replyChars: number,
  ) {}

  grammar(): LlamaGrammar | null {
    switch (this.#stage) {
      case 'device':
        return this.plan.deviceGrammar;
      case 'property':
        return this.#device!.propertyGrammar;
      case 'value':
        return this.#device!.valueGrammars.get(this.#property!) ?? null;
      case 'reply':
        return this.plan.replyGrammar;
      default:
        return null;
    }
  }

  #enter(stage: Stage, text: string, force: string): { force: string } {
    this.#stage = stage;
    this.#mark = text.length + force.length;
    return { force };
  }

  step(text: string): { force?: string; done?: boolean } {
    const body = text.slice(this.#mark);
    switch (this.#stage) {
      case 'device': {
        const candidates = this.plan.ids.filter((id) => `${id}"`.startsWith(body));
        if (candidates.length === 0) return { done: true };
        if (candidates.length > 1) return {};
        const id = candidates[0]!;
        const rest = `${id}"`.slice(body.length);
        if (id === NO_DEVICE) return this.#enter('reply', text, `${rest}, "reply": "`);
        this.#device = this.plan.devices.get(id)!;
        if (this.#device.properties.length === 1) {
          this.#property = this.#device.properties[0]!;
          return this.#enter('value', text, `${rest}, "command": {"${this.#property}": `);
        }
        return this.#enter('property', text, `${rest}, "command": {"`);
      }
      case 'property': {
        const candidates = this.#device!.properties.filter((p) => `${p}"`.startsWith(body));
        if (candidates.length === 0) return { done: true };
        if (candidates.length > 1) return {};
        this.#property = candidates[0]!;
        return this.#enter('value', text, `${`${this.#property}"`.slice(body.length)}: `);
      }
      case 'value': {
        // Strings, booleans and null end themselves; a number ends at the whitespace its grammar requires.
        let value: unknown;
        try {
          value = JSON.parse(body);
        } catch {
          return {};
        }
        if (typeof value === 'number' && !/\s$/.test(body)) return {};
        this.#stage = 'done';
        return { force: '}}', done: true };
      }
      case 'reply': {
        if (/(?:^|[^\\])(?:\\\\)*"$/.test(body)) {
          this.#stage = 'done';
          return { force: '}', done: true };
        }
        // At the length limit, close the string once the text so far is whole (no half escape).
        if (body.length >= this.replyChars && isWholeJsonStringBody(body)) {
          this.#stage = 'done';
          return { force: '"}', done: true };
        }
        return {};
      }
      default:
        return { done: true };
    }
  }
}
