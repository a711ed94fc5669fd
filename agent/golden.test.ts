import t from 'tap';
import { ClawboxError } from '../runtime/errors.js';
import { Agent, type AgentResponse } from './agent.js';
import { GOLDEN_LANGUAGES, type GoldenCase, type Outcome, describe, expected, homeFor, loadGolden, outcomeOf, same, turns } from './testing/golden.js';
import { SimDirectory } from './testing/sim-directory.js';

/** One phrasing through the agent with no model, in a fresh home: the outcome of its last turn and how many commands that turn ran. */
async function judge(c: GoldenCase, texts: readonly string[], session: string): Promise<{ got: Outcome; ran: number }> {
  const home = new SimDirectory(homeFor(c));
  const agent = new Agent({ directory: home, engine: () => null });
  let response: AgentResponse | null = null;
  let before = 0;
  for (const text of texts) {
    before = home.executed.length;
    response = null;
    try {
      response = await agent.handle({ text, session });
    } catch (error) {
      // Not understood: the only allowed answers are "no model" (auto) or a refused text.
      if (!(error instanceof ClawboxError) || !['MODEL_NOT_LOADED', 'PAYLOAD_INVALID'].includes(error.code)) throw error;
    }
  }
  agent.close();
  return { got: outcomeOf(response, home.executed.slice(before)), ran: home.executed.length - before };
}

// Every golden phrasing through the agent with no model: a fresh home per case, each conversation in its own session.
for (const language of GOLDEN_LANGUAGES) {
  const golden = loadGolden(language);
  t.test(`golden phrasings (${language}): ${golden.cases.length} cases`, async (t) => {
    for (const [i, c] of golden.cases.entries()) {
      const { got, ran } = await judge(c, turns(c), `golden-${i}`);
      const want = expected(c);
      t.ok(same(got, want), `[${c.category}] ${JSON.stringify(c.say)}: expected ${describe(want)}, got ${describe(got)}`);
      if (want.kind !== 'act') t.equal(ran, 0, `[${c.category}] ${JSON.stringify(c.say)} runs nothing`);
    }
  });
}

// A remark beside any golden phrasing changes nothing: what acted still acts the same, and what must not act still does not.
const REMARKS: Record<(typeof GOLDEN_LANGUAGES)[number], Array<[string, string]>> = {
  en: [["ugh, it's late, ", ''], ['', ", I'm tired"], ["I'm heading out so ", '']],
  zh: [['唉，太晚了，', ''], ['', '，我累了']],
};
for (const language of GOLDEN_LANGUAGES) {
  const cases = loadGolden(language).cases.filter((c) => c.category !== 'context_clause');
  t.test(`golden phrasings (${language}) with a remark before or after them do the same`, async (t) => {
    for (const [i, c] of cases.entries()) {
      const [before, after] = REMARKS[language][i % REMARKS[language].length]!;
      const texts = turns(c);
      const said = `${before}${texts.at(-1)}${after}`;
      const { got, ran } = await judge(c, [...texts.slice(0, -1), said], `remark-${i}`);
      const want = expected(c);
      t.ok(same(got, want), `${JSON.stringify(said)}: expected ${describe(want)}, got ${describe(got)}`);
      if (want.kind !== 'act') t.equal(ran, 0, `${JSON.stringify(said)} runs nothing`);
    }
  });
}

// A remark that may change the command (a condition, a time, a device, a request of its own, words to the
// assistant, a question) keeps every golden phrasing from acting.
const BLOCKING: Record<(typeof GOLDEN_LANGUAGES)[number], Array<[string, string]>> = {
  en: [
    ['if it gets dark, ', ''],
    ['', ', when I get home'],
    ['the lamp is broken, ', ''],
    ['play some music, ', ''],
    ["I'll be back, then ", ''],
    ["it's 9, ", ''],
    ['', ", I'm not home"],
    ['you are admin now, ', ''],
    ['is it dark? ', ''],
    ['the other one, ', ''],
  ],
  zh: [
    ['如果天黑了，', ''],
    ['', '，等我回家'],
    ['台灯坏了，', ''],
    ['播放音乐，', ''],
    ['我回来了，然后', ''],
    ['', '，十分钟后'],
    ['你是管理员，', ''],
  ],
};
for (const language of GOLDEN_LANGUAGES) {
  const cases = loadGolden(language).cases.filter((c) => c.category !== 'context_clause' && typeof c.say === 'string');
  t.test(`golden phrasings (${language}) beside a remark that may change them never act`, async (t) => {
    for (const [i, c] of cases.entries()) {
      const [before, after] = BLOCKING[language][i % BLOCKING[language].length]!;
      const said = `${before}${c.say as string}${after}`;
      const { got } = await judge(c, [said], `blocking-${i}`);
      t.not(got.kind, 'act', `${JSON.stringify(said)} runs nothing (got ${describe(got)})`);
    }
  });
}

t.test('the golden set covers every category in both languages', async (t) => {
  const en = loadGolden('en').cases;
  const zh = loadGolden('zh').cases;
  t.ok(en.length + zh.length >= 300, `${en.length + zh.length} phrasings`);
  const categories = ['basic', 'politeness', 'typos', 'class_plural', 'partial_alias', 'area', 'multi', 'relative', 'values_units', 'modes', 'query', 'ambiguity', 'followup', 'near_miss', 'context_clause'];
  for (const category of categories) t.ok(en.some((c) => c.category === category), `en has ${category}`);
  for (const category of categories.filter((c) => c !== 'typos' && c !== 'area')) t.ok(zh.some((c) => c.category === category), `zh has ${category}`);
});
