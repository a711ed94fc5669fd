/**
 * The intent fast path: a deterministic matcher built from the device list (names, ids, aliases, areas)
 * and each device's command schema (enum values and numeric properties), with the words of one language
 * (language.ts). An utterance is cut into words, every word must mean something (a verb, a device word,
 * a value, a filler ...), commands are split at "and", and each command resolves to the devices it
 * names: one device, a class ("the lights"), an area ("kitchen lights"), everything, or the devices of
 * the previous turn ("it"). A word it does not know, a negation or a contradiction is not a match and
 * goes to the model; a name that fits several devices becomes a question back. Matching never executes
 * anything; the agent validates and executes each action.
 */
import { commandCandidates } from './asides.js';
import type { AgentDevice, JsonSchema, StateValue } from './directory.js';
import { type DeviceClass, type IntentLanguage, type Unit, type VerbKind, type VerbMeaning, segment } from './language.js';

export interface FastAction {
  device: AgentDevice;
  /** The command to run; empty when `adjust` says how to compute it from the current state. */
  command: Record<string, StateValue>;
  /** A relative change ("brighter", "2 degrees warmer"), resolved against fresh state by `resolveAdjust`. */
  adjust?: Adjust;
}

export interface Adjust {
  property: string;
  by: number;
  min?: number;
  max?: number;
  step?: number;
}

export interface FastQuery {
  device: AgentDevice;
  property: string;
}

/** What the next turn of a session may refer to. Plain data, kept by the session store. */
export interface MatchContext {
  /**
   * Devices the last turn acted on or asked about ("turn it off", "a bit more"); its text when it was one
   * command, so a follow-up can say it again for other devices ("and the lamp"); the devices it was chosen
   * from when it answered "which one?" ("the other one").
   */
  last?: { devices: string[]; property?: string; direction?: 'up' | 'down'; text?: string; alternatives?: string[] };
  /** A question asked back ("which light?"): the utterance, the command that was unclear and its candidates. */
  pending?: { language: string; text: string; clause: number; candidates: string[] };
}

export interface FastMatch {
  kind: 'act' | 'query' | 'ask';
  actions: FastAction[];
  queries: FastQuery[];
  /** kind ask: the word the question is about and the devices it could mean. */
  ask?: { subject: string; candidates: AgentDevice[] };
  /** The context for the session's next turn. */
  context: MatchContext;
}

export interface IntentDeviceInput {
  device: AgentDevice;
  schema: JsonSchema | undefined;
}

interface NumericRange {
  min?: number;
  max?: number;
  step?: number;
}

interface IndexedDevice {
  device: AgentDevice;
  enums: Map<string, StateValue[]>;
  numeric: Map<string, NumericRange>;
  readable: Set<string>;
  /** Readings in the order the device describes them (its main reading first). */
  primary: string[];
  /** Words of its name, aliases and id. */
  names: Set<string>;
  areas: Set<string>;
  classes: Set<DeviceClass>;
}

interface Roles {
  verb?: VerbMeaning;
  state?: 'on' | 'off' | 'open' | 'closed';
  mode?: string;
  property?: readonly string[];
  adjective?: readonly string[];
  unit?: Unit;
  amount?: 'small' | 'large';
  level?: number;
  quantifier?: true;
  pronoun?: true;
  question?: 'strong' | 'weak';
  marker?: 'to' | 'by' | 'in' | 'mode';
  noun?: DeviceClass;
  ordinal?: number;
  filler?: true;
  conjunction?: true;
  negation?: true;
  followUp?: 'lead' | 'correction' | 'other' | 'others';
  /** Devices whose name, alias or id holds this word or phrase. */
  named?: Set<number>;
  /** Devices in the area this word names. */
  area?: Set<number>;
}

interface Item {
  text: string;
  roles: Roles;
  number?: number;
  plural?: boolean;
}

type Role = 'desc' | 'verb' | 'state' | 'mode' | 'property' | 'adjective' | 'unit' | 'amount' | 'level' | 'question' | 'marker' | 'number' | 'ordinal';

interface Ref {
  devices: number[];
  /** Named by "everything"/"all devices" alone: only what the verb first means (no blinds in "关掉全部"). */
  generic: boolean;
  /** Devices that a word of the reference names literally (beats a class or area match). */
  literal: Set<number>;
  all: boolean;
  plural: boolean;
  pronoun: boolean;
  subject: string;
}

interface Clause {
  items: Array<Item & { role: Role }>;
  query: boolean;
  ref: Ref | null;
  ordinal?: number;
}

/** State properties each capability type reports, for questions about devices that have not reported yet. */
const CAPABILITY_READINGS: Record<string, string[]> = {
  switch: ['state'],
  dimmer: ['brightness'],
  thermostat: ['current_temperature', 'target_temperature', 'mode'],
  cover: ['state', 'position'],
};

const CAPABILITY_CLASS: Record<string, DeviceClass> = { dimmer: 'light', cover: 'cover', thermostat: 'thermostat', sensor: 'sensor', switch: 'switch' };
const CLASS_PARENT: Partial<Record<DeviceClass, DeviceClass>> = { lamp: 'light', blind: 'cover', door: 'cover' };
const CLASSES = new Set<string>(['light', 'lamp', 'blind', 'door', 'cover', 'thermostat', 'sensor', 'fan', 'switch', 'device']);

const KIND_VALUES: Partial<Record<VerbKind, string>> = { on: 'ON', off: 'OFF', toggle: 'TOGGLE', open: 'OPEN', close: 'CLOSE', stop: 'STOP' };
/** Enum values that are verbs, not modes. */
const VERB_VALUES = new Set(['ON', 'OFF', 'TOGGLE', 'OPEN', 'CLOSE', 'STOP', 'OPENED', 'CLOSED']);
/** Numeric properties a relative change without a property word moves, in this order. */
const RELATIVE_ORDER = ['brightness', 'target_temperature', 'position'];
const PERCENT_PROPERTIES = new Set(['brightness', 'position']);
const STEPS = { percent: { small: 10, normal: 20, large: 40 }, degrees: { small: 0.5, normal: 1, large: 3 } };
const NUMBER = /^-?\d+(?:\.\d+)?$/;
const MAX_TOKENS = 40;
/** A context clause is a short remark ("it's getting dark"), not a paragraph. */
const MAX_ASIDE_TOKENS = 16;

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

function numericRange(schema: JsonSchema): NumericRange | null {
  const type = schema.type;
  const numeric = type === 'number' || type === 'integer' || (Array.isArray(type) && (type.includes('number') || type.includes('integer')));
  if (numeric) {
    const range: NumericRange = {};
    if (typeof schema.minimum === 'number') range.min = schema.minimum;
    if (typeof schema.maximum === 'number') range.max = schema.maximum;
    if (typeof schema.multipleOf === 'number') range.step = schema.multipleOf;
    else if (type === 'integer') range.step = 1;
    return range;
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    if (Array.isArray(schema[key])) for (const sub of schema[key] as JsonSchema[]) { const r = numericRange(sub); if (r) return r; }
  }
  return null;
}

/** The value of a relative change against the device's current state, or null when that is unknown. */
export function resolveAdjust(adjust: Adjust, state: Readonly<Record<string, StateValue>> | undefined): number | null {
  let current = state?.[adjust.property];
  if (typeof current !== 'number') {
    // A light that is off is at zero brightness; a thermostat without a target starts from the room.
    if (adjust.property === 'brightness' && typeof state?.state === 'string' && state.state.toUpperCase() === 'OFF') current = 0;
    else if (adjust.property === 'target_temperature' && typeof state?.current_temperature === 'number') current = state.current_temperature;
    else if (adjust.property === 'position' && typeof state?.state === 'string') current = /^CLOSED?$/i.test(state.state) ? 0 : /^OPEN/i.test(state.state) ? 100 : null;
    else return null;
  }
  if (typeof current !== 'number') return null;
  let value = current + adjust.by;
  if (adjust.step) value = Math.round(value / adjust.step) * adjust.step;
  if (adjust.min !== undefined) value = Math.max(adjust.min, value);
  if (adjust.max !== undefined) value = Math.min(adjust.max, value);
  return Number(value.toFixed(4));
}

function editDistanceAtMost(a: string, b: string, limit: number): boolean {
  if (Math.abs(a.length - b.length) > limit) return false;
  // Damerau-Levenshtein (optimal string alignment): a swapped pair of letters is one typo.
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    let best = Number.POSITIVE_INFINITY;
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[(i - 1) * cols + j]! + 1, d[i * cols + j - 1]! + 1, d[(i - 1) * cols + j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[(i - 2) * cols + j - 2]! + 1);
      d[i * cols + j] = v;
      if (v < best) best = v;
    }
    if (best > limit) return false;
  }
  return d[rows * cols - 1]! <= limit;
}

export class IntentMatcher {
  readonly #language: IntentLanguage;
  readonly #devices: IndexedDevice[];
  /** Every phrase the language and the devices know, with what it means. */
  readonly #phrases = new Map<string, Roles>();
  #longest = 1;
  /** Multi-character words of an unspaced language, for segmentation. */
  readonly #lexicon = new Set<string>();
  #lexiconLongest = 1;
  /** Single words long enough to be corrected when misspelt, by length. */
  readonly #vocabulary = new Map<number, string[]>();

  constructor(inputs: readonly IntentDeviceInput[], language: IntentLanguage) {
    this.#language = language;
    const L = language;
    const add = (phrase: string, roles: Roles) => {
      const key = phrase.trim().toLowerCase();
      if (!key) return;
      const entry = this.#phrases.get(key) ?? {};
      for (const [k, value] of Object.entries(roles) as Array<[keyof Roles, unknown]>) {
        if ((k === 'named' || k === 'area') && entry[k]) for (const d of value as Set<number>) entry[k]!.add(d);
        else if (entry[k] === undefined) (entry as Record<string, unknown>)[k] = value instanceof Set ? new Set(value) : value;
      }
      this.#phrases.set(key, entry);
      if (!L.spaced && key.length > 1 && !/^[a-z0-9 .]+$/.test(key)) {
        this.#lexicon.add(key.replace(/ /g, ''));
        this.#lexiconLongest = Math.max(this.#lexiconLongest, key.length);
      }
    };
    for (const w of L.fillers) add(w, { filler: true });
    for (const w of L.conjunctions) add(w, { conjunction: true });
    add(',', { conjunction: true });
    for (const w of L.negations) add(w, { negation: true });
    for (const [w, verb] of Object.entries(L.verbs)) add(w, { verb });
    for (const [w, state] of Object.entries(L.states)) add(w, { state });
    for (const [w, mode] of Object.entries(L.modes)) add(w, { mode });
    for (const [w, property] of Object.entries(L.properties)) add(w, { property });
    for (const [w, adjective] of Object.entries(L.adjectives)) add(w, { adjective });
    for (const [w, unit] of Object.entries(L.units)) add(w, { unit });
    for (const [w, amount] of Object.entries(L.amounts)) add(w, { amount });
    for (const [w, level] of Object.entries(L.levels)) add(w, { level });
    for (const w of L.quantifiers) add(w, { quantifier: true });
    for (const w of L.pronouns) add(w, { pronoun: true });
    for (const [w, question] of Object.entries(L.questions)) add(w, { question });
    for (const [w, marker] of Object.entries(L.markers)) add(w, { marker });
    for (const [w, noun] of Object.entries(L.nouns)) add(w, { noun });
    for (const [w, ordinal] of Object.entries(L.ordinals)) add(w, { ordinal });
    for (const kind of ['leads', 'corrections', 'other', 'others'] as const) {
      const followUp = kind === 'leads' ? 'lead' : kind === 'corrections' ? 'correction' : kind;
      for (const w of L.followUps?.[kind] ?? []) add(w, { followUp });
    }
    for (const w of [...Object.keys(L.numbers.values), ...Object.keys(L.numbers.multipliers)]) if (!L.spaced) this.#lexicon.add(w);

    // Device words are segmented with the language's own words first, so a Chinese name splits the same way an utterance does.
    const tokenize = (text: string) => segment(text, L, this.#lexicon, this.#lexiconLongest);
    this.#devices = inputs.map(({ device, schema }) => this.#index(device, schema));
    for (const { device } of inputs) {
      const nameLists = [device.name, device.id, ...(device.aliases ?? [])].map((n) => n.toLowerCase());
      if (!L.spaced) for (const n of nameLists) for (const part of n.split(/[\s_-]+/)) if (part.length > 1 && !/^[a-z0-9.]+$/.test(part)) this.#lexicon.add(part);
      const area = device.area;
      if (!L.spaced && area) this.#lexicon.add(area.toLowerCase().replace(/\s+/g, ''));
    }
    for (const word of this.#lexicon) this.#lexiconLongest = Math.max(this.#lexiconLongest, word.length);
    inputs.forEach(({ device }, i) => {
      const indexed = this.#devices[i]!;
      for (const name of [device.name, device.id, ...(device.aliases ?? [])]) {
        const tokens = tokenize(name).filter((t) => t !== ',');
        for (const t of tokens) indexed.names.add(t);
        // Every run of two or more words of a name names the devices that hold it ("window blind").
        for (let a = 0; a < tokens.length; a++) {
          for (let b = a + 1; b <= tokens.length; b++) add(tokens.slice(a, b).join(' '), { named: new Set([i]) });
        }
        for (const t of tokens) {
          const noun = this.#nounOf(t);
          if (noun) indexed.classes.add(noun);
        }
      }
      const area = device.area;
      if (area) {
        const tokens = tokenize(area);
        for (const t of tokens) indexed.areas.add(t);
        for (let a = 0; a < tokens.length; a++) {
          for (let b = a + 1; b <= tokens.length; b++) add(tokens.slice(a, b).join(' '), { area: new Set([i]) });
        }
      }
      for (const cap of device.capabilities) {
        const cls = CAPABILITY_CLASS[cap.type];
        if (cls) indexed.classes.add(cls);
      }
      // A cover is a window covering unless its name says door or gate.
      if (indexed.classes.has('cover') && !indexed.classes.has('door')) indexed.classes.add('blind');
      for (const cls of [...indexed.classes]) {
        const parent = CLASS_PARENT[cls];
        if (parent) indexed.classes.add(parent);
      }
      indexed.classes.add('device');
      // Enum values that are modes ("heat", "fan only") match as themselves.
      for (const values of indexed.enums.values()) {
        for (const value of values) {
          if (typeof value !== 'string' || VERB_VALUES.has(value.toUpperCase())) continue;
          add(tokenize(value).join(' '), { mode: value });
        }
      }
    });
    for (const key of this.#phrases.keys()) {
      this.#longest = Math.max(this.#longest, key.split(' ').length);
      if (!key.includes(' ') && key.length >= 4 && /^\p{L}+$/u.test(key) && L.spaced) {
        const list = this.#vocabulary.get(key.length) ?? [];
        list.push(key);
        this.#vocabulary.set(key.length, list);
      }
    }
  }

  #nounOf(token: string): DeviceClass | undefined {
    const nouns = this.#language.nouns;
    const direct = nouns[token] ?? (CLASSES.has(token) ? (token as DeviceClass) : undefined);
    if (direct) return direct;
    const singular = this.#singular(token);
    return singular ? (nouns[singular] ?? (CLASSES.has(singular) ? (singular as DeviceClass) : undefined)) : undefined;
  }

  /** The singular of a plural the language's rules recognise, when that singular is a known word. */
  #singular(token: string): string | undefined {
    for (const [suffix, to] of this.#language.plurals) {
      if (token.length > suffix.length + 1 && token.endsWith(suffix)) {
        const candidate = token.slice(0, -suffix.length) + to;
        if (this.#phrases.has(candidate) || this.#language.nouns[candidate] || CLASSES.has(candidate)) return candidate;
      }
    }
    return undefined;
  }

  #index(device: AgentDevice, schema: JsonSchema | undefined): IndexedDevice {
    const enums = new Map<string, StateValue[]>();
    const numeric = new Map<string, NumericRange>();
    for (const [property, propSchema] of schemaProperties(schema)) {
      const values = enumValues(propSchema);
      if (values) enums.set(property, values);
      const range = numericRange(propSchema);
      if (range) numeric.set(property, range);
    }
    const primary: string[] = [];
    for (const cap of device.capabilities) {
      for (const r of cap.readings ?? []) primary.push(r.property);
      for (const p of CAPABILITY_READINGS[cap.type] ?? []) primary.push(p);
    }
    const readable = new Set<string>([...primary, ...Object.keys(device.state ?? {}), ...enums.keys(), ...numeric.keys()]);
    return { device, enums, numeric, readable, primary, names: new Set(), areas: new Set(), classes: new Set() };
  }

  tokenize(text: string): string[] {
    return segment(text, this.#language, this.#lexicon, this.#lexiconLongest);
  }

  /** What the utterance asks for, or null when it is not a fast-path command (it goes to the model). */
  match(text: string, context: MatchContext = {}): FastMatch | null {
    return this.#understand(text, context) ?? this.#beside(text, context);
  }

  #understand(text: string, context: MatchContext): FastMatch | null {
    if (context.pending?.language === this.#language.code) {
      const answered = this.#answer(text, context.pending, context);
      if (answered) return answered;
    }
    return this.#followUp(text, context) ?? this.#match(text, context, null);
  }

  /**
   * A command with a remark before or after it ("it's getting dark, turn the light on", "lamp off, I'm off
   * to bed"): the remark is set aside unread and the rest must be a whole command on its own.
   */
  #beside(text: string, context: MatchContext): FastMatch | null {
    for (const candidate of commandCandidates(text, this.#language, (clause) => this.#isAside(clause))) {
      // "I'll go to bed, then turn off the lamp": the remark was a step before the command, a time.
      if (spells(this.tokenize(candidate), 0, this.#language.asides?.sequels ?? [], this.#language.spaced) > 0) return null;
      const match = this.#understand(candidate, context);
      if (match) return match;
    }
    return null;
  }

  /**
   * A remark that may be set aside: it starts like a statement or an exclamation ("it's", "I'm", "ugh"),
   * and holds nothing a command could depend on (a device, a place, a number, a negation, a correction,
   * a condition or time, a wish, words to the assistant), so dropping it cannot change what is done.
   */
  #isAside(text: string): boolean {
    const L = this.#language;
    const asides = L.asides;
    if (!asides) return false;
    const tokens = this.tokenize(text).filter((t) => t !== ',');
    if (tokens.length === 0 || tokens.length > MAX_ASIDE_TOKENS) return false;
    if (L.spaced ? tokens.some((_, i) => spells(tokens, i, asides.blockers, true) > 0) : asides.blockers.some((b) => tokens.join('').includes(b))) return false;
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i]!;
      if (NUMBER.test(token) || L.numbers.values[token] !== undefined || L.numbers.multipliers[token] !== undefined) return false;
      for (let n = 1; n <= Math.min(this.#longest, tokens.length - i); n++) {
        const phrase = tokens.slice(i, i + n).join(' ');
        const roles = this.#phrases.get(phrase) ?? (n === 1 && this.#singular(phrase) ? this.#phrases.get(this.#singular(phrase)!) : undefined);
        if (!roles) continue;
        if (roles.named || roles.area || roles.noun || roles.negation || roles.unit || roles.ordinal !== undefined) return false;
        if (roles.followUp && roles.followUp !== 'lead') return false;
      }
    }
    let i = 0;
    for (let n = spells(tokens, i, asides.interjections, L.spaced); n > 0 && i < tokens.length; n = spells(tokens, i, asides.interjections, L.spaced)) i += n;
    return i === tokens.length || spells(tokens, i, asides.openers, L.spaced) > 0;
  }

  /**
   * "and the lamp", "no, the kitchen one", "what about the blind", "the other one": the last turn's command
   * (or question) again, for the devices this text names. Only the devices named change; the previous
   * devices are left as they are.
   */
  #followUp(text: string, context: MatchContext): FastMatch | null {
    const last = context.last;
    if (!last?.text) return null;
    const items = this.#items(this.tokenize(text));
    if (!items) return null;
    let marked = false;
    let other: 'other' | 'others' | null = null;
    const words: Item[] = [];
    for (const item of items) {
      const f = item.roles.followUp;
      if (f === 'other' || f === 'others') other = f;
      else if (f && !this.#isDescriptor(item)) marked = true;
      else if (item.roles.conjunction && words.length === 0) continue;
      else if (!item.roles.filler || item.roles.named || item.roles.area) words.push(item);
    }
    if (!marked && !other) return null;
    if (!words.every((w) => (this.#isDescriptor(w) && !w.roles.pronoun) || w.roles.conjunction)) return null;
    const index = (ids: readonly string[]) => ids.map((id) => this.#devices.findIndex((d) => d.device.id === id)).filter((i) => i >= 0);
    const previous = index(last.devices);
    let pool: number[];
    let singular = other !== 'others';
    if (words.length > 0) {
      const picked = new Set<number>();
      for (const part of split(words)) {
        const ref = this.#ref(part, {});
        if (!ref || ref.devices.length === 0) return null;
        if (ref.plural || ref.all) singular = false;
        for (const d of ref.devices) picked.add(d);
      }
      pool = [...picked];
      // "same for the light" after the lamp: the lights other than the lamp.
      if (other || pool.some((d) => !previous.includes(d))) pool = pool.filter((d) => !previous.includes(d));
      // "no, the kitchen one": a room named alone in a follow-up means one device in it, of the kind meant before.
      if (words.every((w) => w.roles.area && !w.roles.noun)) singular = true;
    } else if (other) {
      pool = (last.alternatives ? index(last.alternatives) : this.#kin(previous)).filter((d) => !previous.includes(d));
    } else return null;
    // Only the devices the last command (or question) fits; among several, those of the same kind as before.
    let fits = pool.filter((d) => {
      const m = this.#match(last.text!, {}, { clause: 0, devices: [d] });
      return m !== null && m.kind !== 'ask';
    });
    if (fits.length > 1 && singular) {
      const kin = new Set(this.#kin(previous));
      const same = fits.filter((d) => kin.has(d));
      if (same.length > 0) fits = same;
    }
    if (fits.length === 0) return null;
    if (fits.length > 1 && singular) {
      return {
        kind: 'ask',
        actions: [],
        queries: [],
        ask: { subject: this.#language.code === 'en' ? 'one' : '', candidates: fits.map((d) => this.#devices[d]!.device) },
        context: { ...context, pending: { language: this.#language.code, text: last.text, clause: 0, candidates: fits.map((d) => this.#devices[d]!.device.id) } },
      };
    }
    const resolved = this.#match(last.text, {}, { clause: 0, devices: fits });
    if (!resolved || resolved.kind === 'ask') return null;
    resolved.context.last = { ...resolved.context.last!, alternatives: [...new Set([...last.devices, ...pool.map((d) => this.#devices[d]!.device.id)])] };
    return resolved;
  }

  /** Devices that share a kind (light, blind, thermostat ...) with these, not counting "device" and "switch". */
  #kin(devices: readonly number[]): number[] {
    const classes = new Set<DeviceClass>(devices.flatMap((d) => [...this.#devices[d]!.classes].filter((c) => c !== 'device' && c !== 'switch')));
    return this.#devices.map((_, i) => i).filter((d) => [...this.#devices[d]!.classes].some((c) => classes.has(c)));
  }

  #match(text: string, context: MatchContext, override: { clause: number; devices: number[] } | null): FastMatch | null {
    const items = this.#items(this.tokenize(text));
    if (!items || items.length === 0) return null;
    if (items.some((i) => i.roles.negation)) return null;
    const requests = this.#language.requests ?? [];
    const polite = items.some((i) => requests.includes(i.text));
    const groups: Item[][] = [[]];
    for (const item of items) {
      if (item.roles.conjunction && !item.roles.named) groups.push([]);
      else if (!item.roles.filler || item.roles.named || item.roles.area) groups.at(-1)!.push(item);
    }
    const clauses: Clause[] = [];
    for (const group of groups) {
      if (group.length === 0) continue;
      const clause = this.#clause(group, context, polite);
      if (!clause) return null;
      clauses.push(clause);
    }
    if (clauses.length === 0) return null;
    if (override) {
      const clause = clauses[override.clause];
      if (!clause) return null;
      clause.ref = { devices: override.devices, generic: false, literal: new Set(override.devices), all: true, plural: true, pronoun: false, subject: '' };
    }
    // A command without a verb ("and the blind") borrows the verb of its neighbour ("open the lamp and the blind").
    for (let i = 0; i < clauses.length; i++) {
      const clause = clauses[i]!;
      if (clause.query || this.#hasAction(clause)) continue;
      if (!clause.ref && !clause.items.some((it) => it.role === 'property' || it.role === 'adjective')) return null;
      const donor = [...clauses.slice(0, i).reverse(), ...clauses.slice(i + 1)].find((c) => c.query === false && this.#hasAction(c));
      const asker = clause.ref ? clauses.slice(0, i).reverse().find((c) => c.query) : undefined;
      if (donor) clause.items = [...clause.items.filter((it) => it.role === 'desc'), ...donor.items.filter((it) => it.role !== 'desc')];
      else if (asker) {
        clause.query = true;
        clause.items = [...clause.items.filter((it) => it.role === 'desc'), ...asker.items.filter((it) => it.role !== 'desc')];
      } else if (clauses.length > 1) return null;
      else clause.query = true; // "the lamp" alone: its state
    }
    const actions: FastAction[] = [];
    const queries: FastQuery[] = [];
    let lastProperty: string | undefined;
    let direction: 'up' | 'down' | undefined;
    let ask: { clause: number; subject: string; candidates: number[] } | undefined;
    for (let i = 0; i < clauses.length; i++) {
      const clause = clauses[i]!;
      const result = clause.query ? this.#query(clause) : this.#act(clause, context);
      if (!result) return null;
      // The question back waits until every other clause is understood: an answer must lead to a command.
      if ('ask' in result) ask ??= { clause: i, ...result.ask };
      else if ('actions' in result) {
        actions.push(...result.actions);
        lastProperty = result.property ?? lastProperty;
        direction = result.direction ?? direction;
      } else queries.push(...result.queries);
    }
    const asksQuery = ask ? clauses[ask.clause]!.query : false;
    if ((actions.length > 0 || (ask && !asksQuery)) && (queries.length > 0 || (ask && asksQuery))) return null;
    if (ask) {
      return {
        kind: 'ask',
        actions: [],
        queries: [],
        ask: { subject: ask.subject, candidates: ask.candidates.map((d) => this.#devices[d]!.device) },
        context: { ...context, pending: { language: this.#language.code, text, clause: ask.clause, candidates: ask.candidates.map((d) => this.#devices[d]!.device.id) } },
      };
    }
    // The same device told two different things in one breath ("lamp on and off") is no command.
    const seen = new Map<string, string>();
    for (const action of actions) {
      for (const [key, value] of Object.entries(action.adjust ? { [action.adjust.property]: `~${action.adjust.by}` } : action.command)) {
        const id = `${action.device.id}\u0000${key}`;
        const v = JSON.stringify(value);
        if (seen.has(id) && seen.get(id) !== v) return null;
        seen.set(id, v);
      }
    }
    const unique = actions.filter((a, i) => actions.findIndex((b) => b.device.id === a.device.id && JSON.stringify(b.command) === JSON.stringify(a.command) && JSON.stringify(b.adjust) === JSON.stringify(a.adjust)) === i);
    const devices = [...new Set([...unique.map((a) => a.device.id), ...queries.map((q) => q.device.id)])];
    const last: NonNullable<MatchContext['last']> = { devices };
    if (clauses.length === 1) last.text = text;
    if (lastProperty) last.property = lastProperty;
    if (direction) last.direction = direction;
    return { kind: unique.length > 0 ? 'act' : 'query', actions: unique, queries, context: { last } };
  }

  /** The answer to "which one?": names among the candidates, an ordinal, or "both"/"all". */
  #answer(text: string, pending: NonNullable<MatchContext['pending']>, context: MatchContext): FastMatch | null {
    const items = this.#items(this.tokenize(text));
    if (!items) return null;
    const words = items.filter((i) => !i.roles.filler || i.roles.named || i.roles.area);
    if (words.length === 0) return null;
    const candidates = pending.candidates.map((id) => this.#devices.findIndex((d) => d.device.id === id)).filter((i) => i >= 0);
    let chosen: number[] | null = null;
    if (words.length === 1 && words[0]!.roles.ordinal !== undefined) {
      const n = words[0]!.roles.ordinal;
      const pick = n < 0 ? candidates.at(n) : candidates[n - 1];
      chosen = pick === undefined ? null : [pick];
    } else if (words.every((w) => this.#isDescriptor(w) || w.roles.conjunction)) {
      const picked = new Set<number>();
      for (const part of split(words)) {
        const ref = this.#ref(part, context);
        if (!ref) return null;
        let hit = ref.all ? candidates : candidates.filter((c) => ref.devices.includes(c));
        if (hit.length > 1 && !ref.all && !ref.plural) {
          const literal = hit.filter((c) => ref.literal.has(c));
          if (literal.length === 1) hit = literal;
          else return null;
        }
        if (hit.length === 0) return null;
        for (const h of hit) picked.add(h);
      }
      chosen = [...picked];
    }
    if (!chosen || chosen.length === 0) return null;
    const resolved = this.#match(pending.text, { ...(context.last ? { last: context.last } : {}) }, { clause: pending.clause, devices: chosen });
    if (!resolved || resolved.kind === 'ask') return null;
    if (resolved.context.last) resolved.context.last.alternatives = pending.candidates;
    return resolved;
  }

  /** Words to items: phrases by longest match, numbers, plurals, and a misspelt word corrected when one known word is that close. */
  #items(tokens: string[]): Item[] | null {
    if (tokens.length === 0 || tokens.length > MAX_TOKENS) return null;
    const L = this.#language;
    const out: Item[] = [];
    let i = 0;
    while (i < tokens.length) {
      // Numbers: digits, or number words ("twenty one", "二十二").
      const token = tokens[i]!;
      if (NUMBER.test(token)) {
        out.push({ text: token, roles: {}, number: Number(token) });
        i++;
        continue;
      }
      let j = i;
      let total = 0;
      let current = 0;
      while (j < tokens.length) {
        const w = tokens[j]!;
        const value = L.numbers.values[w];
        const mult = L.numbers.multipliers[w];
        if (value !== undefined) current += value;
        else if (mult !== undefined) {
          total += (current || 1) * mult;
          current = 0;
        } else break;
        j++;
      }
      // "the dimmable one": a lone "one" after a device word is no number.
      const lastItem = out.at(-1);
      if (j === i + 1 && total + current === 1 && lastItem && this.#isDescriptor(lastItem) && !NUMBER.test(token)) {
        i = j;
        continue;
      }
      if (j > i && !this.#phrases.has(tokens.slice(i, j + 1).join(' '))) {
        out.push({ text: tokens.slice(i, j).join(' '), roles: {}, number: total + current });
        i = j;
        continue;
      }
      let found = false;
      for (let n = Math.min(this.#longest, tokens.length - i); n >= 1; n--) {
        const phrase = tokens.slice(i, i + n).join(' ');
        const roles = this.#phrases.get(phrase);
        if (roles) {
          out.push({ text: phrase, roles, plural: n === 1 && L.pluralNouns?.includes(phrase) ? true : this.#singular(phrase) !== undefined && !roles.named });
          i += n;
          found = true;
          break;
        }
      }
      if (found) continue;
      const singular = this.#singular(token);
      if (singular) {
        out.push({ text: token, roles: this.#phrases.get(singular) ?? { noun: this.#nounOf(singular)! }, plural: true });
        i++;
        continue;
      }
      const corrected = this.#correct(token);
      if (corrected === undefined) return null;
      tokens[i] = corrected;
    }
    return out;
  }

  #correct(token: string): string | undefined {
    if (!this.#language.spaced || token.length < 4 || !/^\p{L}+$/u.test(token)) return undefined;
    const limit = token.length >= 9 ? 2 : 1;
    const hits = new Set<string>();
    for (let len = token.length - limit; len <= token.length + limit; len++) {
      for (const word of this.#vocabulary.get(len) ?? []) if (editDistanceAtMost(token, word, limit)) hits.add(word);
    }
    // A word and its own plural are one candidate ("thermostate": thermostat, not thermostats).
    for (const hit of [...hits]) {
      const singular = this.#singular(hit);
      if (singular && hits.has(singular)) hits.delete(hit);
    }
    // Otherwise only a correction with one candidate; two equally close words are a guess.
    return hits.size === 1 ? [...hits][0] : undefined;
  }

  #isDescriptor(item: Item): boolean {
    const r = item.roles;
    return !!(r.named || r.area || r.noun || r.quantifier || r.pronoun);
  }

  /** Gives each word one role from the words around it, and finds the devices the clause names. */
  #clause(group: Item[], context: MatchContext, polite: boolean): Clause | null {
    const verbPresent = group.some((i) => i.roles.verb && !i.roles.question);
    const query = group.some((i) => i.roles.question === 'strong') || (group.some((i) => i.roles.question) && (!verbPresent || !polite));
    const pure = (item: Item | undefined) => !!item && this.#isDescriptor(item) && !item.roles.verb && !item.roles.property && !item.roles.mode && !item.roles.marker && !item.roles.state && !item.roles.question && item.number === undefined;
    const items: Clause['items'] = [];
    for (let k = 0; k < group.length; k++) {
      const item = group[k]!;
      const r = item.roles;
      const prev = group[k - 1];
      const next = group[k + 1];
      // A polite "吗" on a request is no question.
      if (!query && r.question === 'weak' && !this.#isDescriptor(item) && !r.verb && item.number === undefined) continue;
      const afterTo = !!prev && ((prev.roles.marker === 'to' && !prev.roles.verb) || (prev.roles.marker === 'in' && !!group[k - 2] && pure(group[k - 2])));
      let role: Role | null = null;
      if (item.number !== undefined) role = 'number';
      else if (r.ordinal !== undefined && !this.#isDescriptor(item)) role = 'ordinal';
      else if (this.#isDescriptor(item)) {
        const other = r.verb || r.property || r.mode || r.state || r.adjective || r.question || r.marker || r.unit || r.amount || r.level;
        if (!other) role = 'desc';
        else if (afterTo && (r.mode || r.level || r.state)) role = r.mode ? 'mode' : r.level !== undefined ? 'level' : 'state';
        else if (pure(next) || (prev?.roles.quantifier && !prev.roles.verb)) role = 'desc';
        else if (next?.roles.marker === 'mode' && r.mode) role = 'mode';
        else if (k === 0 && r.verb && !query) role = 'verb';
        else if (r.property || r.adjective) role = query && r.adjective && !r.property ? 'adjective' : 'property';
        else if (r.question && query && !r.named) role = 'question';
        else if ((r.mode || r.verb) && group.some((g, other) => other !== k && pure(g))) role = this.#otherRole(item, query, afterTo, k === 0, next);
        else role = 'desc';
      } else role = this.#otherRole(item, query, afterTo, k === 0, next);
      // "how open is the blind": after a question word, the adjective reading wins.
      if (query && r.adjective && prev?.roles.question && role !== 'desc') role = 'adjective';
      if (!role) return null;
      items.push({ ...item, role });
    }
    const descs = split(items.map((it) => (it.role === 'desc' ? it : null)));
    const refs: Ref[] = [];
    for (const run of descs) {
      const r = this.#ref(run, context);
      if (!r) return null;
      refs.push(r);
    }
    // "how warm is it in the living room": a place named beside "it" is what "it" means.
    const named = refs.filter((r) => !r.pronoun);
    let ref: Ref | null = null;
    for (const r of named.length > 0 ? named : refs) {
      ref = ref ? intersect(ref, r) : r;
      if (ref.devices.length === 0 && !ref.pronoun) return null;
    }
    return { items, query, ref };
  }

  #otherRole(item: Item, query: boolean, afterTo: boolean, first: boolean, next: Item | undefined): Role | null {
    const r = item.roles;
    if (query) {
      if (r.question) return 'question';
      if (r.state) return 'state';
      if (r.adjective) return 'adjective';
      if (r.property) return 'property';
      if (r.marker) return 'marker';
      if (r.verb?.kinds[0] === 'set') return 'marker';
      if (r.mode) return 'mode';
      return null;
    }
    if (afterTo && r.mode) return 'mode';
    if (afterTo && r.level !== undefined) return 'level';
    if (r.mode && next?.roles.marker === 'mode') return 'mode';
    if (r.verb?.property && r.mode && !first) return 'mode';
    if (r.verb) return 'verb';
    if (r.mode) return 'mode';
    if (r.property) return 'property';
    if (r.unit) return 'unit';
    if (r.amount) return 'amount';
    if (r.level !== undefined) return 'level';
    if (r.marker) return 'marker';
    if (r.question) return 'question';
    if (r.state) return 'state';
    return null;
  }

  /** The devices a run of device words names: every word must fit each device. */
  #ref(run: Item[], context: MatchContext): Ref | null {
    let devices = this.#devices.map((_, i) => i);
    const literal = new Set<number>(devices);
    let all = false;
    let plural = false;
    let pronoun = false;
    let narrowed = false;
    let specific = false;
    let onlyArea = true;
    for (const item of run) {
      const r = item.roles;
      if (item.plural || (this.#language.numberless && r.noun && !r.named)) plural = true;
      if (r.quantifier) {
        all = true;
        continue;
      }
      if (r.pronoun) {
        pronoun = true;
        const last = context.last?.devices ?? [];
        const ids = new Set(last);
        devices = devices.filter((d) => ids.has(this.#devices[d]!.device.id));
        if (last.length > 1) plural = true;
        narrowed = true;
        continue;
      }
      const noun = r.noun ?? (item.plural ? this.#nounOf(item.text) : undefined);
      if (noun !== 'device' || r.named) specific = true;
      if (!r.area || r.noun) onlyArea = false;
      const singular = item.plural ? this.#singular(item.text) : undefined;
      const fits = (d: number) => {
        const dev = this.#devices[d]!;
        const named = r.named?.has(d) || (singular !== undefined && dev.names.has(singular)) || (!!singular && !!this.#phrases.get(singular)?.named?.has(d));
        if (!named && !r.area?.has(d)) literal.delete(d);
        if (named) return true;
        if (r.area?.has(d)) return true;
        if (noun === 'device') return true;
        return noun !== undefined && dev.classes.has(noun);
      };
      devices = devices.filter(fits);
      narrowed = true;
    }
    if (!narrowed && !all) return null;
    if (all && !narrowed) plural = true;
    if (pronoun && devices.length === 0) return { devices: [], generic: false, literal: new Set(), all: false, plural: false, pronoun: true, subject: '' };
    const head = [...run].reverse().find((i) => !i.roles.quantifier && !i.roles.pronoun);
    // A room alone ("kitchen off") means everything in it.
    if (onlyArea && narrowed && !pronoun) plural = true;
    const generic = !specific && !pronoun;
    return { devices, generic, literal, all, plural: plural || all, pronoun, subject: head ? (this.#singular(head.text) ?? head.text) : '' };
  }

  #hasAction(clause: Clause): boolean {
    return clause.items.some((i) => ['verb', 'number', 'mode', 'level', 'amount'].includes(i.role));
  }

  #query(clause: Clause): { queries: FastQuery[] } | { ask: { subject: string; candidates: number[] } } | null {
    const L = this.#language;
    const words = clause.items;
    let wanted: string[] | null = null;
    let subject = '';
    for (const it of words) {
      if (it.role === 'property' && it.roles.property) {
        wanted = [...it.roles.property];
        subject = it.text;
      } else if ((it.role === 'adjective' || it.role === 'question') && it.roles.adjective) {
        wanted = [...it.roles.adjective];
        subject = Object.entries(L.properties).find(([, props]) => props.includes(wanted![0]!))?.[0] ?? it.text;
      } else if (it.role === 'state' && !wanted) wanted = ['state'];
    }
    // "what is the thermostat set to": the value it was set to.
    if (!wanted && words.some((it) => it.role === 'marker' && it.roles.verb?.kinds[0] === 'set')) wanted = ['target_temperature', 'mode', 'brightness', 'position'];
    if (words.some((it) => it.role === 'verb' || it.role === 'number' || it.role === 'amount' || it.role === 'level' || it.role === 'unit')) return null;
    // A question reads the current value before the target, unless it names the target.
    if (wanted?.includes('current_temperature')) wanted.sort((a, b) => Number(a === 'target_temperature') - Number(b === 'target_temperature'));
    const ref = clause.ref;
    if (ref?.pronoun && ref.devices.length === 0 && !wanted) return null;
    let pool = ref && !(ref.pronoun && ref.devices.length === 0) ? ref.devices : this.#devices.map((_, i) => i);
    if (!ref && !wanted) return null;
    const propertyOf = (d: number): string | undefined => {
      const dev = this.#devices[d]!;
      if (wanted) return wanted.find((p) => dev.readable.has(p));
      return dev.readable.has('state') ? 'state' : dev.primary[0];
    };
    pool = pool.filter((d) => propertyOf(d) !== undefined);
    // "how hot is it" after talking about the lamp: "it" is the weather in the room, not the lamp.
    const fallback = pool.length === 0 && !!ref?.pronoun && !!wanted;
    if (fallback) pool = this.#devices.map((_, i) => i).filter((d) => propertyOf(d) !== undefined);
    if (pool.length === 0) return null;
    const singular = !ref || fallback || (!ref.plural && !ref.all);
    if (pool.length > 1 && singular) {
      const literal = ref ? pool.filter((d) => ref.literal.has(d)) : [];
      if (literal.length > 0) pool = literal;
      if (pool.length > 1) return { ask: { subject: ref?.subject || subject || 'device', candidates: pool } };
    }
    return { queries: pool.map((d) => ({ device: this.#devices[d]!.device, property: propertyOf(d)! })) };
  }

  #act(
    clause: Clause,
    context: MatchContext,
  ): { actions: FastAction[]; property?: string; direction?: 'up' | 'down' } | { ask: { subject: string; candidates: number[] } } | null {
    const words = clause.items;
    const verbs = words.filter((i) => i.role === 'verb').map((i) => i.roles.verb!);
    const specific = verbs.filter((v) => v.kinds[0] !== 'set');
    let verb: VerbMeaning | undefined = specific[0] ?? verbs[0];
    for (const other of specific.slice(1)) {
      if (!verb) break;
      const same = other.kinds.join() === verb.kinds.join();
      const relative = ['up', 'down'];
      if (same) verb = { kinds: verb.kinds, ...((verb.property ?? other.property) ? { property: (verb.property ?? other.property)! } : {}) };
      else if (relative.includes(other.kinds.at(-1)!) && relative.includes(verb.kinds.at(-1)!) && other.kinds.at(-1) === verb.kinds.at(-1)) {
        verb = { kinds: [verb.kinds.at(-1)!], ...((verb.property ?? other.property) ? { property: (verb.property ?? other.property)! } : {}) };
      } else return null;
    }
    const numbers = words.filter((i) => i.role === 'number');
    const units = words.filter((i) => i.role === 'unit').map((i) => i.roles.unit!);
    const levels = words.filter((i) => i.role === 'level').map((i) => i.roles.level!);
    const amounts = words.filter((i) => i.role === 'amount').map((i) => i.roles.amount!);
    const modes = words.filter((i) => i.role === 'mode').map((i) => i.roles.mode!);
    const props = words.filter((i) => i.role === 'property').flatMap((i) => [...i.roles.property!]);
    if (words.some((i) => i.role === 'question' || i.role === 'adjective' || i.role === 'state' || i.role === 'ordinal')) return null;
    if (numbers.length > 1 || units.length > 1 || levels.length > 1 || modes.length > 1 || amounts.length > 1) return null;
    if (units.length > 0 && numbers.length === 0) return null;
    const byIndex = words.findIndex((i) => i.role === 'marker' && i.roles.marker === 'by');
    const numberIndex = words.findIndex((i) => i.role === 'number');
    // "by 10" is a change; so is a bare number after a comparative ("2 degrees warmer", "increase it 10 %").
    const delta = (byIndex >= 0 && numberIndex > byIndex) || (numberIndex >= 0 && !!verbs.find((v) => v.by) && !words.some((i) => i.role === 'marker' && i.roles.marker === 'to'));
    if (byIndex >= 0 && !delta) return null;
    const toMarker = words.some((i) => i.role === 'marker' && i.roles.marker === 'to');
    // A bare number needs a verb, a unit or "to" to be a value ("lamp 50" alone is not a command).
    if (numbers.length === 1 && !verb && units.length === 0 && !toMarker && props.length === 0) return null;
    const unit = units[0];
    const number = numbers[0]?.number;
    const ref = clause.ref;
    const relativeKind = verb?.kinds.find((k) => k === 'up' || k === 'down');
    const hint = verb?.property;

    const commandFor = (d: number, strict: boolean): FastAction | null => {
      const dev = this.#devices[d]!;
      const device = dev.device;
      const numericProps = (extra?: string[]) => {
        let list = [...dev.numeric.keys()];
        if (hint) list = list.filter((p) => p === hint);
        if (props.length > 0) list = list.filter((p) => props.includes(p));
        if (unit === '%' || levels.length > 0) list = list.filter((p) => PERCENT_PROPERTIES.has(p));
        if (unit && unit !== '%') list = list.filter((p) => /temperature/.test(p));
        if (extra) list = list.filter((p) => extra.includes(p));
        return list;
      };
      if (modes.length === 1 && number === undefined) {
        if (verb && !['set', 'on'].includes(verb.kinds[0]!)) return null;
        const wantedMode = modes[0]!.toLowerCase();
        for (const [property, values] of dev.enums) {
          if (props.length > 0 && !props.includes(property)) continue;
          const value = values.find((v) => typeof v === 'string' && v.toLowerCase().replace(/ /g, '_') === wantedMode.replace(/ /g, '_'));
          if (value !== undefined) return { device, command: { [property]: value } };
        }
        return null;
      }
      if (number !== undefined || levels.length > 0) {
        if (modes.length > 0) return null;
        let value = number ?? levels[0]!;
        let candidates = numericProps();
        if (candidates.length > 1) candidates = candidates.filter((p) => RELATIVE_ORDER.includes(p));
        if (candidates.length !== 1) return null;
        const property = candidates[0]!;
        if (unit === '°f' && /temperature/.test(property)) value = Math.round(((value - 32) * 5) / 9 / 0.5) * 0.5;
        // "turn the thermostat up to 23": with a number, the verb's setting meaning counts.
        const k = verb?.kinds.find((kind) => kind === 'set' || kind === 'up' || kind === 'down' || kind === 'on') ?? verb?.kinds[0];
        if (delta) {
          const sign = k === 'down' || k === 'close' || verb?.kinds.includes('down') ? -1 : k === 'up' || k === 'open' || verb?.kinds.includes('up') ? 1 : 0;
          if (sign === 0) return null;
          return { device, command: {}, adjust: { property, by: sign * value, ...dev.numeric.get(property)! } };
        }
        if (verb && !['set', 'on', 'open', 'close', 'up', 'down'].includes(k!)) return null;
        // "open the blind to 40 %" sets the position; "dim to 30" the brightness: the verb only picks the property.
        if ((k === 'open' || k === 'close') && !PERCENT_PROPERTIES.has(property)) return null;
        // "close the blind all the way" is position 0, "close it halfway" 50.
        if (k === 'close' && number === undefined && property === 'position') value = 100 - value;
        return { device, command: { [property]: value } };
      }
      if (amounts.length > 0 || relativeKind) {
        if (modes.length > 0) return null;
        const kinds = verb?.kinds ?? ['up'];
        // "raise the blind" opens it; "raise the blind a bit" moves it; "lower the temperature" is no blind.
        if (amounts.length === 0 && !hint && props.length === 0) {
          for (const kind of kinds) {
            if (kind === 'up' || kind === 'down') break;
            const hit = this.#enumCommand(dev, kind, strict);
            if (hit) return { device, command: hit };
          }
        }
        let direction = kinds.find((k) => k === 'up' || k === 'down') ?? (kinds[0] === 'open' ? 'up' : kinds[0] === 'close' ? 'down' : undefined);
        // "more" after "dim the light" dims it more.
        const lastDirection = context.last?.direction;
        if (verb?.again && lastDirection && !ref && !hint && props.length === 0) {
          direction = verb.again === 'same' ? lastDirection : lastDirection === 'up' ? 'down' : 'up';
        }
        // "a bit more" alone (an amount, no verb) goes on in the last change's direction.
        if (!verb && lastDirection && !ref && props.length === 0) direction = lastDirection;
        if (!direction) return null;
        let list = numericProps();
        if (!hint && props.length === 0 && context.last?.property && !ref) list = list.filter((p) => p === context.last!.property);
        const property = RELATIVE_ORDER.find((p) => list.includes(p)) ?? (list.length === 1 ? list[0] : undefined);
        if (!property) return null;
        const size = amounts[0] ?? 'normal';
        const step = PERCENT_PROPERTIES.has(property) ? STEPS.percent[size] : STEPS.degrees[size];
        return { device, command: {}, adjust: { property, by: direction === 'up' ? step : -step, ...dev.numeric.get(property)! } };
      }
      if (!verb) return null;
      for (const kind of ref?.generic ? verb.kinds.slice(0, 1) : verb.kinds) {
        const hit = this.#enumCommand(dev, kind, strict);
        if (hit) return { device, command: hit };
      }
      return null;
    };

    const relative = number === undefined && levels.length === 0 && modes.length === 0 && (amounts.length > 0 || !!relativeKind);
    let pool: number[];
    let singular: boolean;
    if (ref && !(ref.pronoun && ref.devices.length === 0)) {
      pool = ref.devices;
      singular = !ref.plural && !ref.all;
    } else {
      // No device named: only a change that says what it changes ("warmer", "set the temperature to 22", "a bit more").
      if (!hint && props.length === 0 && modes.length === 0 && !(relative && context.last) && !(unit && unit !== '%')) return null;
      const last = context.last && !hint && props.length === 0 ? context.last.devices : [];
      pool = last.length > 0 ? this.#devices.map((_, i) => i).filter((d) => last.includes(this.#devices[d]!.device.id)) : this.#devices.map((_, i) => i);
      singular = last.length <= 1;
    }
    const strict = !ref?.all;
    let results = pool.map((d) => ({ d, action: commandFor(d, strict) })).filter((r): r is { d: number; action: FastAction } => r.action !== null);
    if (results.length === 0 && ref?.pronoun && (hint || props.length > 0)) {
      // "make it warmer" after the lamp: "it" cannot be warmer, so the device that can is meant (or asked for).
      const able = this.#devices.map((_, d) => ({ d, action: commandFor(d, true) })).filter((r): r is { d: number; action: FastAction } => r.action !== null);
      if (able.length > 1) {
        const subject = words.find((i) => i.role === 'property')?.text || (Object.entries(this.#language.properties).find(([, p]) => p.length === 1 && p[0] === hint)?.[0] ?? hint ?? 'device');
        return { ask: { subject, candidates: able.map((r) => r.d) } };
      }
      results = able;
      pool = able.map((r) => r.d);
    }
    if (results.length === 0) return null;
    // A device named by its own name must do what was asked ("open the kitchen lamp" is not a command).
    if (ref && !ref.pronoun && singular && ref.literal.size > 0) {
      const literal = pool.filter((d) => ref.literal.has(d));
      if (literal.length === 1 && !results.some((r) => r.d === literal[0])) return null;
    }
    if (results.length > 1 && singular) {
      const literal = ref ? results.filter((r) => ref.literal.has(r.d)) : [];
      if (literal.length > 0) results = literal;
      if (results.length > 1) {
        const subject = ref?.subject || words.find((i) => i.role === 'property')?.text || (hint ? (Object.entries(this.#language.properties).find(([, p]) => p.length === 1 && p[0] === hint)?.[0] ?? hint) : 'device');
        return { ask: { subject, candidates: results.map((r) => r.d) } };
      }
    }
    const first = results[0]!.action;
    const property = first.adjust?.property ?? Object.keys(first.command).find((k) => this.#devices[results[0]!.d]!.numeric.has(k));
    const direction = first.adjust ? (first.adjust.by > 0 ? 'up' : 'down') : undefined;
    return { actions: results.map((r) => r.action), ...(property ? { property } : {}), ...(direction ? { direction } : {}) };
  }

  /** ON/OFF/OPEN ... as the schema spells it; a thermostat turns on and off through its mode when named directly. */
  #enumCommand(dev: IndexedDevice, kind: VerbKind, strict: boolean): Record<string, StateValue> | null {
    const fixed = KIND_VALUES[kind];
    if (!fixed) return null;
    // Only an enum of verbs (ON/OFF/TOGGLE, OPEN/CLOSE/STOP); a mode enum's "off" is reached below.
    const hits = [...dev.enums]
      .filter(([, values]) => values.every((v) => typeof v === 'string' && VERB_VALUES.has(v.toUpperCase())))
      .flatMap(([property, values]) => values.filter((v) => (v as string).toUpperCase() === fixed).map((value) => ({ property, value })));
    if (hits.length === 1) return { [hits[0]!.property]: hits[0]!.value };
    if (hits.length > 1) return null;
    const modes = dev.enums.get('mode');
    if (!strict || !modes || (kind !== 'on' && kind !== 'off')) return null;
    const lower = modes.filter((m): m is string => typeof m === 'string');
    if (kind === 'off') return lower.includes('off') ? { mode: 'off' } : null;
    const on = ['heat', 'auto', 'heat_cool', 'cool'].find((m) => lower.includes(m));
    return on ? { mode: on } : null;
  }
}

/**
 * How many tokens from `at` spell one of the words (the longest; 0 when none). A language without spaces
 * compares letters, since its remarks are not in the lexicon that cuts it into tokens.
 */
function spells(tokens: readonly string[], at: number, words: readonly string[], spaced: boolean): number {
  let best = 0;
  if (spaced) {
    for (const word of words) {
      const parts = word.split(' ');
      if (parts.length > best && parts.every((p, k) => tokens[at + k] === p)) best = parts.length;
    }
    return best;
  }
  const rest = tokens.slice(at).join('');
  const longest = words.filter((w) => w && rest.startsWith(w)).reduce((a, w) => Math.max(a, w.length), 0);
  for (let letters = 0; letters < longest && at + best < tokens.length; best++) letters += tokens[at + best]!.length;
  return best;
}

/** Runs of consecutive non-null entries. */
function split<T>(list: ReadonlyArray<T | null>): T[][] {
  const out: T[][] = [];
  let run: T[] = [];
  for (const x of list) {
    if (x === null || (x as { roles?: Roles }).roles?.conjunction) {
      if (run.length > 0) out.push(run);
      run = [];
    } else run.push(x);
  }
  if (run.length > 0) out.push(run);
  return out;
}

function intersect(a: Ref, b: Ref): Ref {
  const devices = a.devices.filter((d) => b.devices.includes(d));
  const literal = new Set([...a.literal].filter((d) => b.literal.has(d) || b.devices.includes(d)));
  return {
    devices,
    literal,
    generic: a.generic && b.generic,
    all: a.all || b.all,
    plural: a.plural || b.plural,
    pronoun: a.pronoun || b.pronoun,
    subject: [a.subject, b.subject].filter(Boolean).join(' '),
  };
}
