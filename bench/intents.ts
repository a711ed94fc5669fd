/**
 * Intent fast-path benchmark: the golden phrasings (agent/golden/phrasings.<lang>.json) against the
 * demo devices (plus a kitchen light, a coffee machine and a bedroom shutter with areas and aliases
 * where a case says so), with no model loaded.
 *
 *   new       the agent as shipped: IntentMatcher with English and Chinese, sessions for follow-ups,
 *             every action executed on a simulated directory; a case counts when what ran (or was read,
 *             or asked back) is exactly what the file expects.
 *   baseline  the matcher before this work (bench/baseline/intents-v1.ts with its English templates,
 *             copied from git): one utterance, one device, one command or question; no sessions, so a
 *             follow-up is judged on its last turn alone. Chinese has no baseline matcher (0 %).
 *
 * Match time is the matcher alone (all languages tried in order, as the agent does), each phrase
 * repeated; "handle" is the whole fast path through Agent.handle on the simulated directory.
 * Prints a table, writes bench/results/intents-<time>.json. Knob: BENCH_REPEAT (default 20).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { ClawboxError } from '../runtime/errors.js';
import { Agent, type AgentResponse } from '../agent/agent.js';
import { IntentMatcher, type MatchContext } from '../agent/intents.js';
import { english } from '../agent/lang-en.js';
import { chinese } from '../agent/lang-zh.js';
import { GOLDEN_LANGUAGES, type GoldenCase, type Outcome, expected, homeFor, loadGolden, outcomeOf, same, turns } from '../agent/testing/golden.js';
import { SimDirectory, commandSchemaFor } from '../agent/testing/sim-directory.js';
import { IntentMatcher as BaselineMatcher } from './baseline/intents-v1.js';
import { english as baselineEnglish } from './baseline/lang-en-v1.js';
import { percentile } from './stats.js';

const REPEAT = Number(process.env.BENCH_REPEAT ?? 20);

interface Tally {
  total: number;
  baseline: number;
  now: number;
}

async function runNew(c: GoldenCase): Promise<{ outcome: Outcome; handleMs: number }> {
  const home = new SimDirectory(homeFor(c));
  const agent = new Agent({ directory: home, engine: () => null });
  // Builds the matchers and prompt for this device list once, as a running agent has.
  await agent.match('warm-up');
  let response: AgentResponse | null = null;
  let before = 0;
  let handleMs = 0;
  for (const text of turns(c)) {
    before = home.executed.length;
    response = null;
    const started = performance.now();
    try {
      response = await agent.handle({ text, session: 'bench' });
    } catch (error) {
      if (!(error instanceof ClawboxError)) throw error;
    }
    handleMs = performance.now() - started;
  }
  agent.close();
  return { outcome: outcomeOf(response, home.executed.slice(before)), handleMs };
}

function runBaseline(c: GoldenCase, language: string): Outcome {
  if (language !== 'en') return { kind: 'none' };
  const inputs = homeFor(c).map((device) => ({ device, schema: commandSchemaFor(device) }));
  const match = new BaselineMatcher(inputs, baselineEnglish).match(turns(c).at(-1)!.trim());
  if (!match) return { kind: 'none' };
  if (match.query) return { kind: 'query', query: [[match.device.id, match.query.property]] };
  return { kind: 'act', act: [[match.device.id, match.command ?? {}]] };
}

/** Matcher time of the judged turn: languages in order, with the context the earlier turns left. */
function matchTimes(c: GoldenCase, samples: number[]): void {
  const inputs = homeFor(c).map((device) => ({ device, schema: commandSchemaFor(device) }));
  const matchers = [new IntentMatcher(inputs, english), new IntentMatcher(inputs, chinese)];
  const all = turns(c);
  let context: MatchContext = {};
  const run = (text: string, ctx: MatchContext) => {
    for (const m of matchers) {
      const r = m.match(text, ctx);
      if (r) return r;
    }
    return null;
  };
  for (const text of all.slice(0, -1)) context = run(text, context)?.context ?? {};
  const last = all.at(-1)!;
  run(last, context);
  for (let i = 0; i < REPEAT; i++) {
    const started = performance.now();
    run(last, context);
    samples.push(performance.now() - started);
  }
}

function baselineTimes(c: GoldenCase, samples: number[]): void {
  const inputs = homeFor(c).map((device) => ({ device, schema: commandSchemaFor(device) }));
  const matcher = new BaselineMatcher(inputs, baselineEnglish);
  const text = turns(c).at(-1)!;
  for (let i = 0; i < REPEAT; i++) {
    const started = performance.now();
    matcher.match(text);
    samples.push(performance.now() - started);
  }
}

const pct = (n: number, d: number) => (d === 0 ? '-' : `${((100 * n) / d).toFixed(0)} %`);
const ms = (v: number) => `${v.toFixed(3)} ms`;

const results: Record<string, unknown> = {};
const matchSamples: number[] = [];
const baselineSamples: number[] = [];
const handleSamples: number[] = [];
const misses: string[] = [];
for (const language of GOLDEN_LANGUAGES) {
  const golden = loadGolden(language);
  const byCategory = new Map<string, Tally>();
  const total: Tally = { total: 0, baseline: 0, now: 0 };
  for (const c of golden.cases) {
    const want = expected(c);
    const { outcome, handleMs } = await runNew(c);
    handleSamples.push(handleMs);
    const ok = same(outcome, want);
    const base = same(runBaseline(c, language), want);
    if (!ok) misses.push(`${language} [${c.category}] ${JSON.stringify(c.say)}`);
    matchTimes(c, matchSamples);
    if (language === 'en') baselineTimes(c, baselineSamples);
    const tally = byCategory.get(c.category) ?? { total: 0, baseline: 0, now: 0 };
    for (const t of [tally, total]) {
      t.total++;
      if (base) t.baseline++;
      if (ok) t.now++;
    }
    byCategory.set(c.category, tally);
  }
  console.log(`\n${language}: ${golden.cases.length} phrasings`);
  console.log(`${'category'.padEnd(16)}${'cases'.padStart(7)}${'baseline'.padStart(10)}${'now'.padStart(8)}`);
  for (const [category, t] of byCategory) {
    console.log(`${category.padEnd(16)}${String(t.total).padStart(7)}${pct(t.baseline, t.total).padStart(10)}${pct(t.now, t.total).padStart(8)}`);
  }
  console.log(`${'all'.padEnd(16)}${String(total.total).padStart(7)}${pct(total.baseline, total.total).padStart(10)}${pct(total.now, total.total).padStart(8)}`);
  results[language] = { total, categories: Object.fromEntries(byCategory) };
}

const sorted = (v: number[]) => [...v].sort((a, b) => a - b);
const timing = {
  match_ms: { p50: percentile(sorted(matchSamples), 50), p99: percentile(sorted(matchSamples), 99), max: Math.max(...matchSamples), samples: matchSamples.length },
  baseline_match_ms: { p50: percentile(sorted(baselineSamples), 50), p99: percentile(sorted(baselineSamples), 99), max: Math.max(...baselineSamples), samples: baselineSamples.length },
  handle_ms: { p50: percentile(sorted(handleSamples), 50), p99: percentile(sorted(handleSamples), 99), samples: handleSamples.length },
};
console.log(`\nmatch time (new, en+zh tried in order): p50 ${ms(timing.match_ms.p50)}, p99 ${ms(timing.match_ms.p99)}, max ${ms(timing.match_ms.max)}`);
console.log(`match time (baseline, en only):         p50 ${ms(timing.baseline_match_ms.p50)}, p99 ${ms(timing.baseline_match_ms.p99)}`);
console.log(`Agent.handle, fast path (simulated):    p50 ${ms(timing.handle_ms.p50)}, p99 ${ms(timing.handle_ms.p99)}`);
if (misses.length > 0) console.log(`\nnot understood:\n  ${misses.join('\n  ')}`);

mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const file = new URL(`./results/intents-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, import.meta.url);
writeFileSync(
  file,
  `${JSON.stringify({ machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version }, repeat: REPEAT, baseline: 'bench/baseline/intents-v1.ts (the matcher before this work, English only)', rates: results, timing, misses }, null, 2)}\n`,
);
console.log(`\nwrote ${file.pathname}`);
