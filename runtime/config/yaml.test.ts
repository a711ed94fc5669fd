/**
 * The bounded YAML parser: what it refuses, and that it holds no parser between parses (the `yaml`
 * package is loaded for a parse and dropped from the require cache after it) while a document it handed
 * out stays usable.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import t from 'tap';
import { YAML_LIMITS, YamlRejected, parseYamlSafely } from './yaml.js';

const require = createRequire(import.meta.url);
const yamlDir = path.dirname(require.resolve('yaml/package.json')) + path.sep;
const yamlModulesCached = (): number => Object.keys(require.cache).filter((file) => file.startsWith(yamlDir)).length;

t.test('a parse gives the value and an editable document, and leaves no parser loaded', async (t) => {
  const { doc, value } = parseYamlSafely('# the broker\nbroker:\n  port: 1884 # not the default\nlog:\n  level: debug\n');
  t.same(value, { broker: { port: 1884 }, log: { level: 'debug' } });
  t.equal(yamlModulesCached(), 0, 'the yaml package is out of the require cache');

  doc.setIn(['broker', 'port'], 1885);
  t.match(doc.toString(), /# the broker\nbroker:\n {2}port: 1885 # not the default\n/, 'the document still edits, comments kept');

  const again = parseYamlSafely(doc.toString());
  t.same(again.value, { broker: { port: 1885 }, log: { level: 'debug' } }, 'the next parse loads the parser again');
  t.equal(yamlModulesCached(), 0);
});

t.test('hostile or broken text is refused with one reason, and the parser is let go all the same', async (t) => {
  const refused = (text: string, kind: 'syntax' | 'limit', reason: RegExp) => {
    t.throws(() => parseYamlSafely(text), YamlRejected);
    try {
      parseYamlSafely(text);
    } catch (error) {
      t.match(error, { kind, message: reason });
    }
  };
  refused('a: 1\na: 2\n', 'syntax', /map keys must be unique: "a" repeats at line 2/);
  refused('a: [1\n', 'syntax', /line/);
  refused('a: 1\n---\nb: 2\n', 'syntax', /a second document starts at line 2/);
  refused(`${'['.repeat(YAML_LIMITS.maxDepth + 1)}${']'.repeat(YAML_LIMITS.maxDepth + 1)}`, 'limit', /nested more than 64 levels deep/);
  const laughs = ['a: &a [x, x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]', 'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]'];
  refused(laughs.join('\n'), 'limit', /aliases expand too far|more than/);
  refused('x'.repeat(YAML_LIMITS.maxBytes + 1), 'limit', /bytes is more than the 1048576 allowed/);
  t.equal(yamlModulesCached(), 0);
});
