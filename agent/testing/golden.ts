/**
 * The golden phrasings (agent/golden/*.json) and how one is judged: what the agent did with it (actions
 * run, state read, a question back, or nothing) compared with what the file expects. Used by
 * agent/golden.test.ts and bench/intents.ts.
 */
import { readFileSync } from 'node:fs';
import type { AgentResponse } from '../agent.js';
import type { AgentDevice, StateValue } from '../directory.js';
import { demoHome, demoPlusHome } from './demo-home.js';

export interface GoldenCase {
  category: string;
  /** One utterance, or a conversation whose last turn is judged. */
  say: string | string[];
  home?: 'plus';
  act?: Array<[string, Record<string, StateValue>]>;
  query?: Array<[string, string]>;
  ask?: string[];
  none?: true;
}

export interface GoldenSet {
  language: string;
  cases: GoldenCase[];
}

/** What became of the judged turn. */
export type Outcome =
  | { kind: 'act'; act: Array<[string, Record<string, StateValue>]> }
  | { kind: 'query'; query: Array<[string, string]> }
  | { kind: 'ask'; ask: string[] }
  | { kind: 'none' };

export const GOLDEN_LANGUAGES = ['en', 'zh'] as const;

export function loadGolden(language: string): GoldenSet {
  return JSON.parse(readFileSync(new URL(`../golden/phrasings.${language}.json`, import.meta.url), 'utf8')) as GoldenSet;
}

export function homeFor(c: GoldenCase): AgentDevice[] {
  return c.home === 'plus' ? demoPlusHome() : demoHome();
}

export function turns(c: GoldenCase): string[] {
  return typeof c.say === 'string' ? [c.say] : c.say;
}

export function expected(c: GoldenCase): Outcome {
  if (c.act) return { kind: 'act', act: c.act };
  if (c.query) return { kind: 'query', query: c.query };
  if (c.ask) return { kind: 'ask', ask: c.ask };
  return { kind: 'none' };
}

/** The outcome of an agent response plus the commands it ran, for the judged turn. */
export function outcomeOf(response: AgentResponse | null, executed: ReadonlyArray<{ id: string; command: Record<string, StateValue> }>): Outcome {
  if (!response) return executed.length > 0 ? { kind: 'act', act: executed.map((e) => [e.id, e.command]) } : { kind: 'none' };
  if (response.question) return { kind: 'ask', ask: response.question.candidates };
  if (response.answers) return { kind: 'query', query: response.answers.map((a) => [a.device, a.property]) };
  return { kind: 'act', act: executed.map((e) => [e.id, e.command]) };
}

const key = (x: unknown) => JSON.stringify(x);

/** Same kind and the same operations, in any order. */
export function same(a: Outcome, b: Outcome): boolean {
  if (a.kind !== b.kind) return false;
  const list = (o: Outcome) => (o.kind === 'act' ? o.act.map(key) : o.kind === 'query' ? o.query.map(key) : o.kind === 'ask' ? o.ask.map(key) : []);
  const x = list(a).sort();
  const y = list(b).sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

export function describe(o: Outcome): string {
  if (o.kind === 'none') return 'nothing';
  if (o.kind === 'ask') return `ask ${o.ask.join(' or ')}`;
  if (o.kind === 'query') return `read ${o.query.map(([d, p]) => `${d}.${p}`).join(', ')}`;
  return `run ${o.act.map(([d, c]) => `${d} ${key(c)}`).join(', ')}`;
}
