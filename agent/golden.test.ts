import t from 'tap';
import { ClawboxError } from '../runtime/errors.js';
import { Agent, type AgentResponse } from './agent.js';
import { GOLDEN_LANGUAGES, describe, expected, homeFor, loadGolden, outcomeOf, same, turns } from './testing/golden.js';
import { SimDirectory } from './testing/sim-directory.js';

// Every golden phrasing through the agent with no model: a fresh home per case, each conversation in its own session.
for (const language of GOLDEN_LANGUAGES) {
  const golden = loadGolden(language);
  t.test(`golden phrasings (${language}): ${golden.cases.length} cases`, async (t) => {
    for (const [i, c] of golden.cases.entries()) {
      const home = new SimDirectory(homeFor(c));
      const agent = new Agent({ directory: home, engine: () => null });
      let response: AgentResponse | null = null;
      let before = 0;
      for (const text of turns(c)) {
        before = home.executed.length;
        response = null;
        try {
          response = await agent.handle({ text, session: `golden-${i}` });
        } catch (error) {
          // Not understood: the only allowed answers are "no model" (auto) or a refused text.
          if (!(error instanceof ClawboxError) || !['MODEL_NOT_LOADED', 'PAYLOAD_INVALID'].includes(error.code)) throw error;
        }
      }
      agent.close();
      const got = outcomeOf(response, home.executed.slice(before));
      const want = expected(c);
      t.ok(same(got, want), `[${c.category}] ${JSON.stringify(c.say)}: expected ${describe(want)}, got ${describe(got)}`);
      if (want.kind !== 'act') t.equal(home.executed.length - before, 0, `[${c.category}] ${JSON.stringify(c.say)} runs nothing`);
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
