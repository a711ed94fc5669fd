/**
 * The intent fast path: a deterministic matcher built from the device list (names, ids, aliases) and
 * each device's command schema (its enum values and numeric properties), with sentence templates from
 * a language module. A match must cover the whole utterance and resolve to exactly one device and one
 * command (or one question); anything else — unknown words, negation, ambiguity — is not a match and
 * goes to the model. Matching never executes anything; the agent validates and executes.
 */
import type { AgentDevice, JsonSchema, StateValue } from '../../agent/directory.js';
import type { IntentKind, IntentLanguage, IntentTemplate } from './language-v1.js';

export interface FastMatch {
  kind: IntentKind;
  device: AgentDevice;
  /** The command to execute (actions). */
  command?: Record<string, StateValue>;
  /** The property to read (questions). */
  query?: { property: string };
  template: string;
}

export interface IntentDeviceInput {
  device: AgentDevice;
  schema: JsonSchema | undefined;
}

type Slot = 'D' | 'N' | 'V' | 'P' | 'R' | 'U' | 'A';
type Part = { kind: 'lit'; words: string[]; optional: boolean } | { kind: 'slot'; slot: Slot; optional: boolean };

interface CompiledTemplate {
  template: IntentTemplate;
  parts: Part[];
}

interface Binding {
  devices?: readonly number[];
  area?: boolean;
  number?: number;
  values?: ReadonlyArray<{ device: number; property: string; value: StateValue }>;
  propertyWord?: string;
  readingWord?: string;
  unitWord?: string;
  adjective?: string;
}

interface IndexedDevice {
  device: AgentDevice;
  /** property -> enum values it accepts (as in the schema). */
  enums: Map<string, StateValue[]>;
  numeric: Set<string>;
  readable: Set<string>;
  /** Enum value phrases: tokens -> (property, value). */
  valuePhrases: Array<{ tokens: string[]; property: string; value: StateValue }>;
}

const NUMBER = /^-?\d+(?:\.\d+)?$/;

/** State properties each capability type reports, for questions about devices that have not reported yet. */
const CAPABILITY_READINGS: Record<string, string[]> = {
  switch: ['state'],
  dimmer: ['brightness'],
  thermostat: ['current_temperature', 'target_temperature', 'mode'],
  cover: ['state', 'position'],
};

const KIND_VALUES: Partial<Record<IntentKind, string>> = {
  on: 'ON',
  off: 'OFF',
  toggle: 'TOGGLE',
  open: 'OPEN',
  close: 'CLOSE',
  stop: 'STOP',
};

function compile(template: IntentTemplate): CompiledTemplate {
  const parts: Part[] = template.pattern.split(/\s+/).map((raw) => {
    const optional = raw.endsWith('?');
    const body = optional ? raw.slice(0, -1) : raw;
    const slot = /^\{([DNVPRUA])\}$/.exec(body);
    if (slot) return { kind: 'slot', slot: slot[1] as Slot, optional };
    return { kind: 'lit', words: body.split('|'), optional };
  });
  return { template, parts };
}

/** Properties and their schemas from a command schema (object with properties, or anyOf/oneOf of such). */
function schemaProperties(schema: JsonSchema | undefined): Map<string, JsonSchema> {
  const out = new Map<string, JsonSchema>();
  if (!schema) return out;
  const visit = (s: unknown) => {
    if (!s || typeof s !== 'object') return;
    const obj = s as Record<string, unknown>;
    if (obj.properties && typeof obj.properties === 'object') {
      for (const [key, value] of Object.entries(obj.properties as Record<string, unknown>)) {
        if (value && typeof value === 'object' && !out.has(key)) out.set(key, value as JsonSchema);
      }
    }
    for (const key of ['anyOf', 'oneOf', 'allOf'] as const) if (Array.isArray(obj[key])) for (const sub of obj[key] as unknown[]) visit(sub);
  };
  visit(schema);
  return out;
}

function enumValues(schema: JsonSchema): StateValue[] | null {
  if (Array.isArray(schema.enum)) return schema.enum as StateValue[];
  if ('const' in schema) return [schema.const as StateValue];
  for (const key of ['anyOf', 'oneOf'] as const) {
    if (Array.isArray(schema[key])) {
      const values = (schema[key] as JsonSchema[]).flatMap((s) => enumValues(s) ?? []);
      if (values.length > 0) return values;
    }
  }
  return null;
}

function isNumeric(schema: JsonSchema): boolean {
  const type = schema.type;
  if (type === 'number' || type === 'integer') return true;
  if (Array.isArray(type)) return type.includes('number') || type.includes('integer');
  for (const key of ['anyOf', 'oneOf'] as const) if (Array.isArray(schema[key]) && (schema[key] as JsonSchema[]).some(isNumeric)) return true;
  return false;
}

export class IntentMatcher {
  readonly #language: IntentLanguage;
  readonly #templates: CompiledTemplate[];
  readonly #devices: IndexedDevice[];
  /** Device phrases: tokens -> device indexes, and whether it is an area phrase ("living room"). */
  readonly #phrases: Array<{ tokens: string[]; devices: number[]; area: boolean }>;

  constructor(inputs: readonly IntentDeviceInput[], language: IntentLanguage) {
    this.#language = language;
    this.#templates = language.templates.map(compile);
    this.#devices = inputs.map(({ device, schema }) => this.#index(device, schema));
    const phraseMap = new Map<string, { tokens: string[]; devices: Set<number>; area: boolean }>();
    const add = (tokens: string[], device: number, area: boolean) => {
      if (tokens.length === 0) return;
      const key = `${area ? 'a' : 'n'}:${tokens.join(' ')}`;
      const entry = phraseMap.get(key) ?? { tokens, devices: new Set<number>(), area };
      entry.devices.add(device);
      phraseMap.set(key, entry);
    };
    inputs.forEach(({ device }, i) => {
      const names = [device.name, device.id, ...(device.aliases ?? [])].map((n) => language.tokenize(n));
      for (const tokens of names) {
        add(tokens, i, false);
        const last = tokens.at(-1);
        if (tokens.length > 1 && last && language.genericNouns.includes(last)) add(tokens.slice(0, -1), i, true);
      }
    });
    // Longest phrases first so "kitchen lamp" is tried before "kitchen".
    this.#phrases = [...phraseMap.values()]
      .map((p) => ({ tokens: p.tokens, devices: [...p.devices], area: p.area }))
      .sort((a, b) => b.tokens.length - a.tokens.length);
  }

  #index(device: AgentDevice, schema: JsonSchema | undefined): IndexedDevice {
    const enums = new Map<string, StateValue[]>();
    const numeric = new Set<string>();
    const valuePhrases: IndexedDevice['valuePhrases'] = [];
    for (const [property, propSchema] of schemaProperties(schema)) {
      const values = enumValues(propSchema);
      if (values) {
        enums.set(property, values);
        for (const value of values) {
          if (typeof value === 'string') valuePhrases.push({ tokens: this.#language.tokenize(value), property, value });
        }
      }
      if (isNumeric(propSchema)) numeric.add(property);
    }
    const readable = new Set<string>([...Object.keys(device.state ?? {}), ...enums.keys(), ...numeric]);
    for (const cap of device.capabilities) {
      for (const p of CAPABILITY_READINGS[cap.type] ?? []) readable.add(p);
      for (const r of cap.readings ?? []) readable.add(r.property);
    }
    return { device, enums, numeric, readable, valuePhrases };
  }

  /** The one unambiguous intent the utterance expresses, or null. */
  match(text: string): FastMatch | null {
    const tokens = this.#language.tokenize(text);
    if (tokens.length === 0 || tokens.length > 24) return null;
    const found = new Map<string, FastMatch & { area: boolean }>();
    for (const compiled of this.#templates) {
      for (const binding of this.#bind(tokens, compiled.parts, 0, 0, {})) {
        for (const candidate of this.#resolve(compiled.template, binding)) {
          const key = `${candidate.device.id}|${JSON.stringify(candidate.command ?? candidate.query)}`;
          if (!found.has(key)) found.set(key, candidate);
        }
      }
    }
    let candidates = [...found.values()];
    // A device named in full beats one reached through its room name.
    if (candidates.some((c) => !c.area)) candidates = candidates.filter((c) => !c.area);
    if (candidates.length !== 1) return null;
    const { area: _area, ...match } = candidates[0]!;
    return match;
  }

  *#bind(tokens: string[], parts: Part[], pos: number, pi: number, binding: Binding): Generator<Binding> {
    if (pi === parts.length) {
      if (pos === tokens.length) yield binding;
      return;
    }
    const part = parts[pi]!;
    if (part.optional) yield* this.#bind(tokens, parts, pos, pi + 1, binding);
    if (pos >= tokens.length) return;
    const token = tokens[pos]!;
    if (part.kind === 'lit') {
      if (part.words.includes(token)) yield* this.#bind(tokens, parts, pos + 1, pi + 1, binding);
      return;
    }
    switch (part.slot) {
      case 'D':
        for (const phrase of this.#phrases) {
          if (startsWith(tokens, pos, phrase.tokens)) {
            yield* this.#bind(tokens, parts, pos + phrase.tokens.length, pi + 1, { ...binding, devices: phrase.devices, area: phrase.area });
          }
        }
        return;
      case 'N':
        if (NUMBER.test(token)) yield* this.#bind(tokens, parts, pos + 1, pi + 1, { ...binding, number: Number(token) });
        return;
      case 'V': {
        if (!binding.devices) return;
        const byLength = new Map<number, Array<{ device: number; property: string; value: StateValue }>>();
        for (const d of binding.devices) {
          for (const phrase of this.#devices[d]!.valuePhrases) {
            if (startsWith(tokens, pos, phrase.tokens)) {
              const list = byLength.get(phrase.tokens.length) ?? [];
              list.push({ device: d, property: phrase.property, value: phrase.value });
              byLength.set(phrase.tokens.length, list);
            }
          }
        }
        for (const [length, values] of byLength) yield* this.#bind(tokens, parts, pos + length, pi + 1, { ...binding, values });
        return;
      }
      case 'P':
        yield* this.#words(tokens, parts, pos, pi, binding, this.#language.propertyWords, 'propertyWord');
        return;
      case 'R':
        yield* this.#words(tokens, parts, pos, pi, binding, this.#language.readingWords, 'readingWord');
        return;
      case 'U':
        yield* this.#words(tokens, parts, pos, pi, binding, this.#language.unitWords, 'unitWord');
        return;
      case 'A':
        yield* this.#words(tokens, parts, pos, pi, binding, this.#language.adjectives, 'adjective');
        return;
    }
  }

  *#words(
    tokens: string[],
    parts: Part[],
    pos: number,
    pi: number,
    binding: Binding,
    table: Readonly<Record<string, readonly string[]>>,
    field: 'propertyWord' | 'readingWord' | 'unitWord' | 'adjective',
  ): Generator<Binding> {
    for (const key of Object.keys(table)) {
      const words = key.split(' ');
      if (startsWith(tokens, pos, words)) yield* this.#bind(tokens, parts, pos + words.length, pi + 1, { ...binding, [field]: key });
    }
  }

  #resolve(template: IntentTemplate, binding: Binding): Array<FastMatch & { area: boolean }> {
    const lang = this.#language;
    const deviceIndexes = binding.devices ?? (template.kind === 'query' ? this.#devices.map((_, i) => i) : []);
    const out: Array<FastMatch & { area: boolean }> = [];
    const push = (d: number, extra: Pick<FastMatch, 'command' | 'query'>) =>
      out.push({ kind: template.kind, device: this.#devices[d]!.device, template: template.pattern, area: binding.area ?? false, ...extra });
    for (const d of deviceIndexes) {
      const dev = this.#devices[d]!;
      const fixed = KIND_VALUES[template.kind];
      if (fixed) {
        // The property whose enum holds ON / OFF / OPEN ... (in whatever case the schema spells it).
        const hits = [...dev.enums].flatMap(([property, values]) =>
          values.filter((v) => typeof v === 'string' && v.toUpperCase() === fixed).map((value) => ({ property, value })),
        );
        if (hits.length === 1) push(d, { command: { [hits[0]!.property]: hits[0]!.value } });
        continue;
      }
      if (template.kind === 'set_number') {
        let props = [...dev.numeric];
        if (template.hint) props = props.filter((p) => template.hint!.includes(p));
        if (binding.propertyWord) props = props.filter((p) => lang.propertyWords[binding.propertyWord!]!.includes(p));
        if (binding.unitWord) props = props.filter((p) => lang.unitWords[binding.unitWord!]!.includes(p));
        if (props.length === 1 && binding.number !== undefined) push(d, { command: { [props[0]!]: binding.number } });
        continue;
      }
      if (template.kind === 'set_value') {
        let values = (binding.values ?? []).filter((v) => v.device === d);
        if (binding.propertyWord) values = values.filter((v) => lang.propertyWords[binding.propertyWord!]!.includes(v.property));
        if (values.length === 1) push(d, { command: { [values[0]!.property]: values[0]!.value } });
        continue;
      }
      if (template.kind === 'query') {
        const wanted = binding.readingWord
          ? lang.readingWords[binding.readingWord]!
          : binding.adjective
            ? lang.adjectives[binding.adjective]!
            : ['state'];
        const property = wanted.find((p) => dev.readable.has(p));
        if (property) push(d, { query: { property } });
      }
    }
    // A question without a device names a property only one device has.
    if (template.kind === 'query' && !binding.devices && out.length !== 1) return [];
    return out;
  }
}

function startsWith(tokens: readonly string[], pos: number, words: readonly string[]): boolean {
  if (pos + words.length > tokens.length) return false;
  for (let i = 0; i < words.length; i++) if (tokens[pos + i] !== words[i]) return false;
  return true;
}
