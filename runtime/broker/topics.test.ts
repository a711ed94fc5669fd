import t from 'tap';
import { TopicAcl, expandPatterns, userRules } from './acl.js';
import { anonymousAllowed, isLoopbackAddress } from './anonymous.js';
import { filterCovers, topicFilterProblem, topicMatches, topicNameProblem } from './topics.js';

t.test('topicMatches follows MQTT 3.1.1 4.7', async (t) => {
  const cases: [string, string, boolean][] = [
    ['a/b', 'a/b', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['a/#', 'a', true], // '#' also matches the parent level
    ['a/#', 'a/b/c', true],
    ['#', 'a/b', true],
    ['+/+', '/x', true], // empty levels are levels
    ['+', '/x', false],
    ['#', '$SYS/x', false],
    ['+/x', '$SYS/x', false],
    ['$SYS/#', '$SYS/x', true],
    ['a/b', 'a/c', false],
  ];
  for (const [filter, topic, expected] of cases) t.equal(topicMatches(filter, topic), expected, `${filter} vs ${topic}`);
});

t.test('filterCovers: a subscribe ACL pattern covers only narrower filters', async (t) => {
  const cases: [string, string, boolean][] = [
    ['sensors/#', 'sensors/+/temp', true],
    ['sensors/#', 'sensors', true],
    ['sensors/#', '#', false],
    ['sensors/+', 'sensors/#', false],
    ['sensors/+', 'sensors/+', true],
    ['sensors/+', 'sensors/a', true],
    ['sensors/a', 'sensors/+', false],
    ['#', '#', true],
    ['#', '$SYS/#', false],
    ['+/x', 'a/x', true],
    ['a/b', 'a/b/c', false],
  ];
  for (const [pattern, filter, expected] of cases) t.equal(filterCovers(pattern, filter), expected, `${pattern} covers ${filter}`);
});

t.test('topic and filter validation', async (t) => {
  t.equal(topicNameProblem('a/b'), null);
  t.match(topicNameProblem(''), /empty/);
  t.match(topicNameProblem('a/+'), /wildcards/);
  t.match(topicNameProblem('a\u0000b'), /U\+0000/);
  t.equal(topicFilterProblem('a/+/#'), null);
  t.match(topicFilterProblem('a/#/b'), /#/);
  t.match(topicFilterProblem('a/b#'), /#/);
  t.match(topicFilterProblem('a/b+'), /\+/);
});

t.test('ACL patterns: %u and %c substitution, unsafe values match nothing', async (t) => {
  t.same(expandPatterns(['dev/%u/#', 'cl/%c'], 'ann', 'box1'), ['dev/ann/#', 'cl/box1']);
  t.same(expandPatterns(['cl/%c/#'], 'ann', '#'), [], 'a client id of # does not become a wildcard');
  t.same(expandPatterns(['cl/%c/#'], 'ann', 'a/b'), [], 'nor one with a slash');
  const acl = new TopicAcl(userRules({ publish: ['dev/%u/#'], subscribe: ['dev/%u/#', 'public/+'] }), 'ann', 'c1');
  t.ok(acl.mayPublish('dev/ann/x'));
  t.notOk(acl.mayPublish('dev/bob/x'));
  t.ok(acl.maySubscribe('dev/ann/+'));
  t.ok(acl.maySubscribe('public/news'));
  t.notOk(acl.maySubscribe('public/#'));
  t.notOk(acl.maySubscribe('#'));
  t.ok(acl.mayReceive('public/x'));
  t.notOk(acl.mayReceive('private/x'));
  const nothing = new TopicAcl(userRules({ publish: [], subscribe: [] }), 'z', 'c');
  t.notOk(nothing.mayPublish('a'), 'empty lists allow nothing');
  t.notOk(nothing.maySubscribe('a'));
});

t.test('anonymous policy', async (t) => {
  t.ok(isLoopbackAddress('127.0.0.1'));
  t.ok(isLoopbackAddress('127.8.9.1'));
  t.ok(isLoopbackAddress('::1'));
  t.ok(isLoopbackAddress('::ffff:127.0.0.1'));
  t.notOk(isLoopbackAddress('192.168.1.20'));
  t.notOk(isLoopbackAddress('::ffff:10.0.0.1'));
  t.notOk(isLoopbackAddress('fe80::1'));
  t.notOk(isLoopbackAddress(undefined));
  t.notOk(isLoopbackAddress('127.0.0.1.evil'));

  const lan = '192.168.1.20';
  t.ok(anonymousAllowed('auto', 'local', '127.0.0.1'), 'auto: loopback in local mode');
  t.notOk(anonymousAllowed('auto', 'local', lan), 'auto: refused from the network in local mode');
  t.notOk(anonymousAllowed('auto', 'appliance', '127.0.0.1'), 'auto: nobody in appliance mode');
  t.ok(anonymousAllowed('loopback', 'appliance', '::1'));
  t.notOk(anonymousAllowed('loopback', 'local', lan));
  t.notOk(anonymousAllowed('never', 'local', '127.0.0.1'));
  t.ok(anonymousAllowed('always', 'local', lan));
});

t.test('topicMatches agrees with level-by-level matching of split topics on random filters and topics', async (t) => {
  const reference = (filter: string, topic: string): boolean => {
    if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
    const f = filter.split('/');
    const levels = topic.split('/');
    for (let i = 0; i < f.length; i++) {
      if (f[i] === '#') return true;
      if (i >= levels.length) return false;
      if (f[i] !== '+' && f[i] !== levels[i]) return false;
    }
    return f.length === levels.length;
  };
  let seed = 7;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const words = ['a', 'b', 'ab', '', '$SYS', 'clawbox'];
  const topicOf = (): string => Array.from({ length: 1 + next(4) }, () => words[next(words.length)]).join('/');
  const filterOf = (): string => {
    const levels = Array.from({ length: 1 + next(4) }, () => (next(3) === 0 ? '+' : words[next(words.length)]!));
    if (next(3) === 0) levels.push('#');
    return levels.join('/');
  };
  let disagreements = 0;
  for (let i = 0; i < 20_000; i++) {
    const filter = filterOf();
    const topic = topicOf();
    if (topicMatches(filter, topic) !== reference(filter, topic)) {
      disagreements++;
      t.fail(`${filter} vs ${topic}`);
    }
  }
  t.equal(disagreements, 0);
});
