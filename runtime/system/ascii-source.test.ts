import t from 'tap';
import { AsciiRefused, asciiOnly, hasNonAscii } from './ascii-source.js';

/** Runs a CommonJS-style source and returns what it exported. */
function run(source: string): unknown {
  const module = { exports: undefined as unknown };
  new Function('module', source)(module);
  return module.exports;
}

t.test('strings, regular expressions, untagged templates and identifiers mean the same once escaped', async (t) => {
  const source = [
    'const 开 = "on";',
    'const o = { 关: "off", "é—": 1 };',
    'const n = 3;',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the source under test holds a template
    'function f() { return `${n} more… 🌱`; }',
    'module.exports = [开, o.关, o["é—"], /[?？]+$/u.test("ok？"), f(), "\\\\—", `a` + `b—`];',
  ].join('\n');
  const escaped = asciiOnly(source);
  t.notOk(hasNonAscii(escaped));
  t.same(run(escaped), run(source));
  t.equal(asciiOnly('plain ascii'), 'plain ascii', 'an ASCII source comes back as it was');
});

t.test('a character after a backslash or in a tagged template is refused, not guessed at', async (t) => {
  t.throws(() => asciiOnly('x = "\\—";'), AsciiRefused);
  t.throws(() => asciiOnly('x = String.raw`—`;'), AsciiRefused);
  t.throws(() => asciiOnly('x = tag `a—`;'), AsciiRefused);
  t.throws(() => asciiOnly('x = f()`—`;'), AsciiRefused);
  t.doesNotThrow(() => asciiOnly('function g() { return `—`; }'), 'return starts a template, it does not tag one');
});

t.test('generated code without templates skips the template check', async (t) => {
  const source = 'module.exports = ["see `clawbox config` — the docs"];';
  t.throws(() => asciiOnly(source), AsciiRefused, 'backticks in a string look like a template to the heuristic');
  t.same(run(asciiOnly(source, { withoutTemplates: true })), run(source));
});
