/**
 * Where the command may be in an utterance that also says something about the moment: "it's getting
 * dark, turn the light on", "I'm heading to bed so turn off the lamp", "turn the heating up because I'm
 * cold". The text is cut into clauses at punctuation and at the language's joiners ("so", "because");
 * context clauses are set aside from the front and the back, and what remains between them is a
 * candidate command. This module only finds the candidates; whether a clause is context (`isAside`)
 * and whether a candidate is a command are the matcher's to decide, from the words it knows.
 */
import type { IntentLanguage } from './language.js';

/** Longer text is not a short remark plus a command. */
const MAX_TEXT = 300;
const MAX_CLAUSES = 6;
/** Joiners looked at per clause. */
const MAX_JOINERS = 3;
/** Candidates tried per utterance (each is one match of a short text). */
const MAX_CANDIDATES = 16;
/**
 * Where one clause ends, in NFKC text (full-width commas, semicolons, ! and ? are ASCII by then): , ; . ! ?
 * (not a decimal point or comma), a spaced hyphen, an en or em dash, and the ideographic full stop; escaped,
 * so the compiled file stays ASCII.
 */
const BREAK = /[;!?]+|[,.](?!\d)|(?<!\d)[,.]|\s-+\s|[\u2013\u2014\u3002]+/gu;

interface Clause {
  start: number;
  end: number;
  /** The punctuation after it ("?" makes it a question, never context). */
  after: string;
}

function clauses(text: string): Clause[] | null {
  const out: Clause[] = [];
  let start = 0;
  const close = (end: number, after: string) => {
    if (text.slice(start, end).trim()) out.push({ start, end, after });
    else if (out.length > 0) out.at(-1)!.after += after;
  };
  for (const m of text.matchAll(BREAK)) {
    close(m.index, m[0]);
    start = m.index + m[0].length;
    if (out.length > MAX_CLAUSES) return null;
  }
  close(text.length, '');
  return out.length > MAX_CLAUSES ? null : out;
}

/** One compiled pattern per language: a request that misses the fast path may look for joiners in every clause. */
const joinerPatterns = new WeakMap<IntentLanguage, RegExp | null>();

function joinerPattern(language: IntentLanguage): RegExp | null {
  let pattern = joinerPatterns.get(language);
  if (pattern !== undefined) return pattern;
  const words = language.asides?.joiners ?? [];
  const alternatives = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  pattern =
    words.length === 0
      ? null
      : language.spaced
        ? new RegExp(`(?<![\\p{L}\\p{N}'])(?:${alternatives})(?![\\p{L}\\p{N}'])`, 'giu')
        : new RegExp(`(?:${alternatives})`, 'gu');
  joinerPatterns.set(language, pattern);
  return pattern;
}

/** The joiners inside text[start, end), as [start, end) of each joiner word. */
function joinersIn(text: string, clause: Clause, language: IntentLanguage): Array<[number, number]> {
  const pattern = joinerPattern(language);
  if (!pattern) return [];
  const out: Array<[number, number]> = [];
  for (const m of text.slice(clause.start, clause.end).matchAll(pattern)) {
    out.push([clause.start + m.index, clause.start + m.index + m[0].length]);
    if (out.length >= MAX_JOINERS) break;
  }
  return out;
}

/**
 * Candidate commands of an utterance with context clauses before and/or after it, most of the text
 * first (the least set aside); empty when nothing can be set aside. `isAside` says whether a piece of
 * text is a context clause.
 */
export function commandCandidates(input: string, language: IntentLanguage, isAside: (text: string) => boolean): string[] {
  if (!language.asides || input.length > MAX_TEXT) return [];
  const text = input.normalize('NFKC');
  const parts = clauses(text);
  if (!parts || parts.length === 0) return [];
  const aside = parts.map((c) => !c.after.includes('?') && isAside(text.slice(c.start, c.end)));

  // Where the command may start: after leading context clauses, or after "<context> so" inside a clause.
  const starts = new Set<number>([0]);
  for (let k = 0; k < parts.length; k++) {
    const c = parts[k]!;
    if (k > 0) starts.add(c.start);
    for (const [from, to] of joinersIn(text, c, language)) if (isAside(text.slice(c.start, from))) starts.add(to);
    if (!aside[k]) break;
  }
  // Where it may end: before trailing context clauses, or before "because <context>" inside a clause.
  const ends = new Set<number>([text.length]);
  for (let k = parts.length - 1; k >= 0; k--) {
    const c = parts[k]!;
    if (k < parts.length - 1) ends.add(c.end);
    if (!c.after.includes('?')) {
      for (const [from, to] of joinersIn(text, c, language)) if (isAside(text.slice(to, c.end))) ends.add(from);
    }
    if (!aside[k]) break;
  }
  const spans: Array<[number, number]> = [];
  for (const s of starts) for (const e of ends) if (s < e && (s > 0 || e < text.length) && text.slice(s, e).trim()) spans.push([s, e]);
  spans.sort((a, b) => b[1] - b[0] - (a[1] - a[0]));
  return spans.slice(0, MAX_CANDIDATES).map(([s, e]) => text.slice(s, e).trim());
}
