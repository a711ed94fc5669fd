/**
 * The jump-forward guide as a state machine: what it forces after each piece of sampled text. Grammars
 * are compiled by the engine in the agent tests; here they are opaque tokens, the guide only hands them out.
 */
import type { LlamaGrammar } from 'node-llama-cpp';
import t from 'tap';
import type { JsonGrammar } from '../models/engine/engine.js';
import { HOME, commandSchemaFor } from './testing/sim-directory.js';
import { salvageReply } from './prompt.js';
import { ToolCallPlan } from './tool-guide.js';

const compiler = {
  gbnf: async (text: string) => ({ gbnf: text }) as unknown as LlamaGrammar,
  grammarFor: async (schema: object) => ({ grammar: { schema } }) as unknown as JsonGrammar,
};

async function plan() {
  return ToolCallPlan.build(
    HOME.map((device) => ({ device, schema: commandSchemaFor(device) })),
    compiler,
  );
}

/** Feeds sampled pieces to a guide the way the engine does (sampled text, then whatever it forces). */
function drive(guide: ReturnType<ToolCallPlan['guide']>, pieces: string[]): { text: string; done: boolean } {
  let text = guide.start;
  for (const piece of pieces) {
    text += piece;
    const { force, done } = guide.step(text);
    if (force) text += force;
    if (done) return { text, done: true };
  }
  return { text, done: false };
}

t.test('a device command: the rest of the id and the punctuation are forced once unambiguous', async (t) => {
  const { text, done } = drive((await plan()).guide(), ['kitch', 'state"', '"ON"']);
  t.ok(done);
  t.same(JSON.parse(text), { device: 'kitchen_lamp', command: { state: 'ON' } });
});

t.test('a reply ends at its closing quote, or is closed at the reply limit', async (t) => {
  const full = drive((await plan()).guide(), ['none"', 'It is ', 'late."']);
  t.same(JSON.parse(full.text), { device: 'none', reply: 'It is late.' });

  const words = Array.from({ length: 20 }, () => 'word '); // 100 characters
  const brief = drive((await plan()).guide({ replyChars: 12 }), ['none"', ...words]);
  t.ok(brief.done, 'the guide ended the answer');
  const reply = (JSON.parse(brief.text) as { reply: string }).reply;
  t.ok(reply.length >= 12 && reply.length < 12 + 'word '.length, `closed at the limit: "${reply}"`);

  const long = drive((await plan()).guide(), ['none"', ...words]);
  t.equal(long.done, false, 'with the default limit (120) the same text runs on');
  const capped = drive((await plan()).guide({ replyChars: 500 }), ['none"', ...words, ...words]);
  t.equal((JSON.parse(capped.text) as { reply: string }).reply.length, 120, 'no limit goes past 120 characters');

  // A limit reached inside an escape waits for the escape to finish.
  const escaped = (await plan()).guide({ replyChars: 4 });
  let text = `${escaped.start}none"`;
  text += escaped.step(text).force ?? '';
  text += 'abc\\';
  t.same(escaped.step(text), {}, 'a half escape is not closed');
  text += 'n';
  const closing = escaped.step(text);
  t.same(closing, { force: '"}', done: true });
  t.same(JSON.parse(text + closing.force), { device: 'none', reply: 'abc\n' });
});

t.test('salvageReply closes a reply cut by the output budget, and nothing else', async (t) => {
  const start = '{"device": "none", "reply": "';
  t.same(salvageReply(`${start}hello wor`), { device: 'none', reply: 'hello wor' });
  t.same(salvageReply(`${start}hi"`), { device: 'none', reply: 'hi' }, 'cut before the closing brace');
  t.same(salvageReply(`${start}a\\`), { device: 'none', reply: 'a' }, 'a half escape is dropped');
  t.same(salvageReply(`${start}a\\u00`), { device: 'none', reply: 'a' }, 'a half \\u escape is dropped');
  t.same(salvageReply(`${start}a\\\\`), { device: 'none', reply: 'a\\' }, 'an escaped backslash is kept');
  t.equal(salvageReply(`${start}`), null, 'an empty reply is no answer');
  t.equal(salvageReply('{"device": "kitchen_lamp", "command": {"st'), null, 'a cut command is never guessed at');
  t.equal(salvageReply('not json'), null);
});
