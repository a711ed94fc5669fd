/**
 * The language-specific half of the intent fast path: how to normalise an utterance into tokens, the
 * sentence templates for each intent, and the words for properties and units. The matcher (intents.ts)
 * is language-neutral; add a language by writing one of these (see lang-en.ts).
 *
 * Template syntax, one sentence per string, matched against the whole normalised utterance:
 *   word        a literal token            a|b       one of several literals
 *   word?       an optional literal        a|b?      optional alternatives
 *   {D}         a device phrase (name, id, alias; an area phrase for questions)
 *   {N}         a number                   {V}       one of the device's enum values ("heat", "on")
 *   {P}         a settable property word   {R}       a readable property word ("temperature")
 *   {U}         a unit word (percent, degrees)         {A}       an adjective ("warm" in "how warm is ...")
 */

export type IntentKind = 'on' | 'off' | 'toggle' | 'open' | 'close' | 'stop' | 'set_number' | 'set_value' | 'query';

export interface IntentTemplate {
  kind: IntentKind;
  pattern: string;
  /** For set_number: the properties this verb can set ("dim" -> brightness). */
  hint?: readonly string[];
}

export interface IntentLanguage {
  code: string;
  /** Lower-cases, expands contractions, maps unit symbols to words, drops fillers; returns tokens. */
  tokenize(text: string): string[];
  templates: readonly IntentTemplate[];
  /** Words that name settable properties, each mapped to the property names it may mean. */
  propertyWords: Readonly<Record<string, readonly string[]>>;
  /** Words that name readable properties (questions). */
  readingWords: Readonly<Record<string, readonly string[]>>;
  /** Adjectives in "how warm is ..." mapped to properties. */
  adjectives: Readonly<Record<string, readonly string[]>>;
  /** Unit words mapped to the properties a bare number with that unit may set. */
  unitWords: Readonly<Record<string, readonly string[]>>;
  /** Trailing nouns that may be left out when naming a device by its room ("living room sensor" -> "living room"). */
  genericNouns: readonly string[];
  /** Sentences the agent says back. */
  say: LanguagePhrases;
}

export interface LanguagePhrases {
  done(deviceName: string, command: Record<string, unknown>): string;
  reading(deviceName: string, property: string, value: unknown, unit: string | undefined): string;
  unknownReading(deviceName: string, property: string): string;
  refused(reason: string): string;
  /** The action waits for the caller to confirm it with `id` (the device's safety policy). */
  confirm(deviceName: string, command: Record<string, unknown>, id: string): string;
  failed(deviceName: string, message: string): string;
  noModel(): string;
}
