import t from 'tap';
import { commandCandidates } from './asides.js';
import { english } from './lang-en.js';

// A stand-in for the matcher's judgement: a remark is anything that starts with "it's" or "I'm".
const remark = (text: string) => /^\s*(it's|i'm)\b/i.test(text);

t.test('the command is what is left between remarks before and after it, the least set aside first', async (t) => {
  t.same(commandCandidates("it's dark, lamp on", english, remark), ['lamp on']);
  t.same(commandCandidates("lamp on, it's dark", english, remark), ['lamp on']);
  t.same(commandCandidates("it's late — lamp off. I'm tired", english, remark), ["it's late — lamp off", "lamp off. I'm tired", 'lamp off']);
  t.same(commandCandidates("I'm off so lamp off", english, remark), ['lamp off']);
  t.same(commandCandidates("lamp off because I'm off", english, remark), ['lamp off']);
  t.same(commandCandidates('lamp on, light off', english, remark), [], 'nothing to set aside');
});

t.test('a decimal comma is no break, and a remark asked as a question stays', async (t) => {
  t.same(commandCandidates("heating to 20,5, it's cold", english, remark), ['heating to 20,5']);
  t.same(commandCandidates("it's dark? lamp on", english, remark), []);
  t.same(commandCandidates("lamp on, it's dark?", english, remark), []);
});

t.test('bounded: long texts and many clauses are not searched, and a language without asides has none', async (t) => {
  t.same(commandCandidates(`${"it's dark, ".repeat(7)}lamp on`, english, remark), []);
  t.same(commandCandidates(`it's ${'very '.repeat(80)}dark, lamp on`, english, remark), []);
  t.same(commandCandidates("it's dark, lamp on", { ...english, asides: undefined }, remark), []);
  const many = commandCandidates("it's a, it's b, it's c, lamp on, it's d, it's e", english, remark);
  t.ok(many.length <= 16, `${many.length} candidates at most`);
  t.equal(many.at(-1), 'lamp on', 'the fewest words last');
});

t.test('full-width punctuation breaks clauses the same way', async (t) => {
  t.same(commandCandidates("it's dark，lamp on", english, remark), ['lamp on']);
  t.same(commandCandidates("it's dark？lamp on", english, remark), []);
});
