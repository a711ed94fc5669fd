/**
 * The content-safety rules engine (pure: no I/O). Rules are word lists or regular expressions, each in a
 * category; a policy maps categories to an action — allow, flag, mask or block — globally and per channel.
 * A text's action is the strongest among its matches; masking replaces the matched spans. Texts are NFKC
 * normalised first, so full-width and other look-alike forms match as their plain letters.
 *
 * Which action applies to a match, first found wins: the channel's action for the category, the channel's
 * default_action, the global action for the category, the built-in action for a built-in category
 * (secret: block, pii: mask), the global default_action.
 */

export type SafetyAction = 'allow' | 'flag' | 'mask' | 'block';
export type SafetyDirection = 'input' | 'output';

export interface SafetyRuleConfig {
  id?: string;
  category: string;
  words?: string[];
  pattern?: string;
  flags?: string;
}

export interface ChannelPolicy {
  default_action?: SafetyAction;
  categories?: Record<string, SafetyAction>;
  directions?: SafetyDirection[];
}

export interface ContentSafetyConfig {
  builtin_rules: boolean;
  rules: SafetyRuleConfig[];
  default_action: SafetyAction;
  categories: Record<string, SafetyAction>;
  channels: Record<string, ChannelPolicy>;
  mask: string;
  max_text_bytes: number;
  record: boolean;
  record_max_bytes: number;
}

export interface SafetyMatch {
  rule: string;
  category: string;
  action: SafetyAction;
  start: number;
  end: number;
}

export interface SafetyDecision {
  action: SafetyAction;
  /** The text to pass on: masked for mask, as given (normalised) for allow/flag, null for block. */
  text: string | null;
  categories: string[];
  matches: SafetyMatch[];
  /** Why, when no rule was the reason (e.g. too_large). */
  reason?: string;
}

export interface CheckContext {
  channel?: string;
  direction?: SafetyDirection;
}

interface CompiledRule {
  id: string;
  category: string;
  regex: RegExp;
  /** Extra check of a match (e.g. the Luhn digit of a card number). */
  accept?: (match: string) => boolean;
}

const STRENGTH: Record<SafetyAction, number> = { allow: 0, flag: 1, mask: 2, block: 3 };
const MAX_MATCHES = 1000;

const BUILTIN_CATEGORY_ACTIONS: Record<string, SafetyAction> = { secret: 'block', pii: 'mask' };

const BUILTIN_RULES: CompiledRule[] = [
  { id: 'secret.private-key', category: 'secret', regex: /-----BEGIN [A-Z ]{0,20}PRIVATE KEY-----/g },
  { id: 'secret.api-key', category: 'secret', regex: /\bsk-[A-Za-z0-9_-]{20,200}/g },
  { id: 'secret.aws-access-key', category: 'secret', regex: /\bAKIA[0-9A-Z]{16}\b/g },
  { id: 'secret.github-token', category: 'secret', regex: /\bgh[pousr]_[A-Za-z0-9]{36,255}\b/g },
  { id: 'pii.email', category: 'pii', regex: /\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}\b/g },
  { id: 'pii.card-number', category: 'pii', regex: /\b\d(?:[ -]?\d){12,18}\b/g, accept: luhn },
];

export class ContentSafetyConfigError extends Error {
  override readonly name = 'ContentSafetyConfigError';
}

export class ContentFilter {
  readonly #config: ContentSafetyConfig;
  readonly #rules: CompiledRule[];

  constructor(config: ContentSafetyConfig) {
    this.#config = config;
    this.#rules = [...(config.builtin_rules ? BUILTIN_RULES : []), ...config.rules.map(compileRule)];
  }

  get ruleCount(): number {
    return this.#rules.length;
  }

  check(input: string, context: CheckContext = {}): SafetyDecision {
    const channel = context.channel ?? 'default';
    const direction = context.direction ?? 'input';
    const policy = this.#config.channels[channel];
    if (Buffer.byteLength(input) > this.#config.max_text_bytes) {
      return { action: 'block', text: null, categories: [], matches: [], reason: 'too_large' };
    }
    const text = input.normalize('NFKC');
    if (policy?.directions && !policy.directions.includes(direction)) {
      return { action: 'allow', text, categories: [], matches: [] };
    }
    const matches: SafetyMatch[] = [];
    for (const rule of this.#rules) {
      rule.regex.lastIndex = 0;
      for (let m = rule.regex.exec(text); m !== null && matches.length < MAX_MATCHES; m = rule.regex.exec(text)) {
        if (m[0].length === 0) {
          rule.regex.lastIndex++;
          continue;
        }
        if (rule.accept && !rule.accept(m[0])) continue;
        matches.push({ rule: rule.id, category: rule.category, action: this.#actionFor(rule.category, policy), start: m.index, end: m.index + m[0].length });
      }
    }
    const action = matches.reduce<SafetyAction>((a, m) => (STRENGTH[m.action] > STRENGTH[a] ? m.action : a), 'allow');
    const categories = [...new Set(matches.filter((m) => m.action !== 'allow').map((m) => m.category))].sort();
    return {
      action,
      text: action === 'block' ? null : action === 'mask' ? this.#mask(text, matches) : text,
      categories,
      matches: matches.sort((a, b) => a.start - b.start || a.end - b.end),
    };
  }

  #actionFor(category: string, policy: ChannelPolicy | undefined): SafetyAction {
    return (
      policy?.categories?.[category] ??
      policy?.default_action ??
      this.#config.categories[category] ??
      BUILTIN_CATEGORY_ACTIONS[category] ??
      this.#config.default_action
    );
  }

  #mask(text: string, matches: SafetyMatch[]): string {
    const spans = matches.filter((m) => m.action === 'mask' || m.action === 'block').map((m) => [m.start, m.end] as [number, number]);
    spans.sort((a, b) => a[0] - b[0]);
    let out = '';
    let at = 0;
    for (const [start, end] of spans) {
      if (end <= at) continue;
      const from = Math.max(start, at);
      out += text.slice(at, from) + this.#config.mask.repeat(end - from);
      at = end;
    }
    return out + text.slice(at);
  }
}

function compileRule(rule: SafetyRuleConfig, index: number): CompiledRule {
  const id = rule.id ?? `${rule.category}.${index + 1}`;
  const flags = new Set(`${rule.flags ?? 'i'}gu`);
  flags.delete('y');
  const flagText = [...flags].join('');
  if (rule.words && rule.words.length > 0) {
    if (rule.pattern) throw new ContentSafetyConfigError(`rule ${id}: give words or a pattern, not both`);
    const alternatives = [...rule.words].sort((a, b) => b.length - a.length).map((w) => escapeRegExp(w.normalize('NFKC')));
    // Whole words only: no letter, digit or underscore on either side.
    return { id, category: rule.category, regex: new RegExp(`(?<![\\p{L}\\p{N}_])(?:${alternatives.join('|')})(?![\\p{L}\\p{N}_])`, flagText) };
  }
  if (!rule.pattern) throw new ContentSafetyConfigError(`rule ${id}: needs words or a pattern`);
  if (hasNestedQuantifier(rule.pattern)) {
    throw new ContentSafetyConfigError(`rule ${id}: the pattern repeats a repeated group (e.g. (a+)+), which can take exponential time; rewrite it`);
  }
  try {
    return { id, category: rule.category, regex: new RegExp(rule.pattern, flagText) };
  } catch (error) {
    throw new ContentSafetyConfigError(`rule ${id}: invalid pattern: ${(error as Error).message}`);
  }
}

/** A cheap guard against catastrophic backtracking: a quantified group that itself contains a quantifier. */
export function hasNestedQuantifier(pattern: string): boolean {
  const stack: boolean[] = [];
  let quantifiedInside = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '[') {
      while (i < pattern.length && pattern[i] !== ']') i += pattern[i] === '\\' ? 2 : 1;
      continue;
    }
    if (c === '(') {
      stack.push(quantifiedInside);
      quantifiedInside = false;
    } else if (c === ')') {
      const inner = quantifiedInside;
      quantifiedInside = stack.pop() ?? false;
      const next = pattern[i + 1];
      const quantified = next === '*' || next === '+' || next === '{';
      if (inner && quantified) return true;
      if (inner) quantifiedInside = true;
    } else if (c === '*' || c === '+' || c === '{') {
      quantifiedInside = true;
    }
  }
  return false;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function luhn(candidate: string): boolean {
  const digits = candidate.replace(/\D/g, '');
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return digits.length >= 13 && sum % 10 === 0;
}
