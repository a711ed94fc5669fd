/**
 * Pseudonym keys on real files: stable pseudonyms that read back as their subject, one key per newcomer even
 * under concurrent records, erasure that survives a restart, the bound, and a corrupt key file refused.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { SubjectKeys } from './subject-keys.js';

function stateDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('pseudonyms are stable, read back, and go with the key', async (t) => {
  const dir = stateDir(t);
  const keys = await SubjectKeys.open(dir);
  const [a, b] = await Promise.all([keys.pseudonym('telegram:42'), keys.pseudonym('telegram:42')]);
  t.equal(a, b, 'two records about a newcomer get one key');
  t.match(a, /^subject:[0-9a-f]{32}$/);
  t.not(await keys.pseudonym('mqtt:ann'), a, 'another person, another pseudonym');
  t.equal(keys.reveal(a), 'telegram:42');
  t.equal(statSync(keys.file).mode & 0o777, 0o600, 'the key file is private');
  t.notOk(readFileSync(keys.file, 'utf8').includes(a.slice('subject:'.length)), 'the file holds keys, not the pseudonyms');

  const reopened = await SubjectKeys.open(dir);
  t.equal(reopened.reveal(a), 'telegram:42', 'the link survives a restart');
  t.equal(await reopened.erase('telegram:42'), true);
  t.equal(reopened.reveal(a), 'erased');
  t.equal(reopened.pseudonymIfKnown('telegram:42'), null);
  t.equal((await SubjectKeys.open(dir)).reveal(a), 'erased', 'and the erasure survives one too');
  t.not(await reopened.pseudonym('telegram:42'), a, 'someone coming back gets a new, unlinked pseudonym');
});

t.test('past the bound: a one-way pseudonym; a corrupt key file is refused, not replaced', async (t) => {
  const dir = stateDir(t);
  const keys = await SubjectKeys.open(dir, { maxSubjects: 1 });
  await keys.pseudonym('http:first');
  const over = await keys.pseudonym('http:second');
  t.match(over, /^subject:x[0-9a-f]+$/);
  t.equal(keys.reveal(over), 'erased', 'never readable');
  t.equal(keys.size, 1);

  writeFileSync(keys.file, '{not json');
  await t.rejects(SubjectKeys.open(dir), { code: 'STATE_CORRUPT' });
  t.equal(readFileSync(keys.file, 'utf8'), '{not json', 'the file is left for the owner to restore');
});
