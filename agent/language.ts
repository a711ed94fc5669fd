/**
 * The language-specific half of the intent fast path, as data: how an utterance is normalised and cut
 * into words, and what each word or phrase means (a verb, a property, a device class, a filler ...).
 * The matcher (intents.ts) is language-neutral; a language is one of these objects (lang-en.ts,
 * lang-zh.ts), so a third language is a data file. `segment` (below) is the one tokenizer for all of
 * them: languages written without spaces set `spaced: false` and are cut by longest match against
 * their own words and the device names.
 *
 * Phrases are written as the tokenizer emits them: lower case, words separated by single spaces.
 */

/**
 * What a verb asks for. on/off/open/close/stop/toggle map to the device's enum values; set is a neutral
 * verb ("set", "turn"); up/down are relative changes of a numeric property.
 */
export type VerbKind = 'on' | 'off' | 'toggle' | 'open' | 'close' | 'stop' | 'set' | 'up' | 'down';

export interface VerbMeaning {
  /** Tried in order per device: "raise" is open for a blind, up for a light; "打开" is on or open. */
  kinds: readonly VerbKind[];
  /** "more"/"less" alone: continue (or reverse) the direction of the previous change. */
  again?: 'same' | 'reverse';
  /** The property the verb is about ("dim" -> brightness, "warmer" -> target_temperature). */
  property?: string;
  /** A bare number after it is a change, not a value ("2 degrees warmer", "increase by 10"). */
  by?: boolean;
}

/** Canonical device classes; a language maps its nouns to these. */
export type DeviceClass = 'light' | 'lamp' | 'blind' | 'door' | 'cover' | 'thermostat' | 'sensor' | 'fan' | 'switch' | 'device';

export type Unit = '%' | '°' | '°c' | '°f';

export interface IntentLanguage {
  code: string;
  /** Words are separated by spaces; false: cut runs of letters by longest match (CJK). */
  spaced: boolean;
  /** Rewrites of the lower-cased, NFKC-normalised text before it is cut into words (contractions, symbols). */
  rewrite: ReadonlyArray<readonly [RegExp, string]>;
  /** Plural endings [suffix, singular ending], tried when a word is not known as it is. */
  plurals: ReadonlyArray<readonly [string, string]>;
  /** Number words: values are added, multipliers multiply what came before ("twenty one", "二十二"). */
  numbers: { values: Readonly<Record<string, number>>; multipliers: Readonly<Record<string, number>> };
  /** Politeness and filler, dropped wherever they stand ("please", "could you", "请", "帮我"). */
  fillers: readonly string[];
  /** Words that join two commands ("and", "then", "和"); "," always does. */
  conjunctions: readonly string[];
  /** Any of these and the utterance is not a fast-path command ("don't", "never", "不要"). */
  negations: readonly string[];
  verbs: Readonly<Record<string, VerbMeaning>>;
  /** Words for a state in a yes/no question ("is the lamp on", "is the blind open"). */
  states: Readonly<Record<string, 'on' | 'off' | 'open' | 'closed'>>;
  /** Mode words mapped to the enum value they mean ("heating" -> heat); enum values match as themselves. */
  modes: Readonly<Record<string, string>>;
  /** Property words, each mapped to the properties it may mean (set and read). */
  properties: Readonly<Record<string, readonly string[]>>;
  /** "how warm is ...": adjectives mapped to the properties they ask about. */
  adjectives: Readonly<Record<string, readonly string[]>>;
  units: Readonly<Record<string, Unit>>;
  /** "a bit", "a lot": the size of a relative change. */
  amounts: Readonly<Record<string, 'small' | 'large'>>;
  /** Level words, in percent ("half" -> 50, "full" -> 100). */
  levels: Readonly<Record<string, number>>;
  /** "all", "every", "everything", "所有". */
  quantifiers: readonly string[];
  /** "it", "them": the devices of the previous turn. */
  pronouns: readonly string[];
  /** Question words: strong ones make a question; weak ones only when no verb is present ("吗"). */
  questions: Readonly<Record<string, 'strong' | 'weak'>>;
  /** Small words with a role: "to" an absolute value, "by" a change, "in" a place, "mode". */
  markers: Readonly<Record<string, 'to' | 'by' | 'in' | 'mode'>>;
  /** Nouns for device classes (singular and plural): "lights" -> light, "blind" -> blind. */
  nouns: Readonly<Record<string, DeviceClass>>;
  /** Nouns carry no number (Chinese "灯" is the light or the lights): a class noun names every device of the class. */
  numberless?: boolean;
  /** Nouns that mean "all of them": plural forms the plural rules would not find. */
  pluralNouns?: readonly string[];
  /** Words that make a yes/no question a request ("能打开台灯吗" asks for an action, "台灯开了吗" for a state). */
  requests?: readonly string[];
  /** Ordinals in an answer to "which one?" ("the first", "第二个"), 1-based. */
  ordinals: Readonly<Record<string, number>>;
  /**
   * Follow-ups that say the previous turn again for other devices: leads ("and the lamp", "what about the
   * blind"), corrections ("no, the kitchen one") and the others of the last devices ("the other one").
   */
  followUps?: {
    leads: readonly string[];
    corrections: readonly string[];
    /** One of the others ("the other one"): a question back when there are several. */
    other: readonly string[];
    /** All of the others ("the others", "the rest"). */
    others: readonly string[];
  };
  /**
   * Context beside a command ("it's getting dark, turn the light on", "turn the heating up because I'm
   * cold"): how such a clause is recognised so it can be set aside (see asides.ts). It is never read for
   * meaning; a clause that names a device, a number, a negation or a blocker is never set aside.
   */
  asides?: {
    /** Exclamations a context clause may start with or be ("ugh", "oh man"). */
    interjections: readonly string[];
    /** How a statement starts ("i", "it", "the"); a clause that starts otherwise may be a request, so it stays. */
    openers: readonly string[];
    /** Words that join context and command inside one clause ("so", "because"). */
    joiners: readonly string[];
    /** A condition, a time, a wish or words to the assistant ("if", "tomorrow", "want", "you"): the clause may change the command. */
    blockers: readonly string[];
    /** Words that put the command after the remark in time ("then", "after that"): a command that starts with one stays. */
    sequels: readonly string[];
  };
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
  /** A question back when a name fits several devices: "Which light: A or B?". */
  which(subject: string, names: readonly string[]): string;
}

/** Punctuation that ends a command the way "and" does. */
const COMMA = /[,;，、；]/g;

/**
 * Normalises and cuts an utterance into words. `lexicon` holds the multi-character words of an unspaced
 * language (its phrases and the device names); unknown letters of such a language become one word each,
 * so an unknown word never hides inside a known one.
 */
export function segment(text: string, language: IntentLanguage, lexicon: ReadonlySet<string>, longest: number): string[] {
  let s = text.normalize('NFKC').toLowerCase();
  for (const [pattern, to] of language.rewrite) s = s.replace(pattern, to);
  s = s
    .replace(/(\d),(\d)/g, '$1.$2')
    .replace(COMMA, ' , ')
    .replace(/°\s*f\b|℉/g, ' °f ')
    .replace(/°\s*c\b|℃/g, ' °c ')
    .replace(/°(?![cf] )/g, ' ° ')
    .replace(/%/g, ' % ')
    .replace(/(\d)([^\d\s.,%°-])/gu, '$1 $2')
    .replace(/([^\d\s.,%°-])(\d)/gu, '$1 $2')
    .replace(/_/g, ' ')
    .replace(/-(?!\d)/g, ' ')
    .replace(/(?<!\d)\.|\.(?!\d)/g, ' ')
    .replace(/[^\p{L}\p{N}.\s,%°-]/gu, ' ');
  const out: string[] = [];
  for (const chunk of s.split(/\s+/)) {
    if (!chunk) continue;
    if (language.spaced || /^[\p{N}.,%°-]+$/u.test(chunk) || /^[a-z0-9.'-]+$/.test(chunk)) {
      if (chunk !== '-') out.push(chunk);
      continue;
    }
    // Longest match from the left; letters of another script inside the run (e.g. a Latin device name) stay whole.
    let i = 0;
    while (i < chunk.length) {
      const latin = /^[a-z0-9.]+/.exec(chunk.slice(i));
      if (latin) {
        out.push(latin[0]);
        i += latin[0].length;
        continue;
      }
      let taken = 1;
      for (let n = Math.min(longest, chunk.length - i); n > 1; n--) {
        if (lexicon.has(chunk.slice(i, i + n))) {
          taken = n;
          break;
        }
      }
      out.push(chunk.slice(i, i + taken));
      i += taken;
    }
  }
  return out;
}
