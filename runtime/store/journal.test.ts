import { constants, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import t, { type Test } from 'tap';
import { Journal } from './journal.js';

interface Entry {
  id: string;
  n: number;
}
const valid = (r: unknown): r is Entry => typeof r === 'object' && r !== null && typeof (r as Entry).id === 'string' && typeof (r as Entry).n === 'number';

function setup(t: Test) {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-journal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const warnings: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line) as Record<string, unknown>) });
  return { file: path.join(dir, 'x.journal'), logger, warnings };
}

t.test('appended records come back in order after reopening', async (t) => {
  const { file, logger } = setup(t);
  const first = await Journal.open<Entry>(file, { logger, valid });
  t.same(first.records, [], 'a missing journal is empty');
  await first.journal.append([{ id: 'a', n: 1 }]);
  await first.journal.append([
    { id: 'b', n: 2 },
    { id: 'a', n: 3 },
  ]);
  await first.journal.append([]);
  t.equal(first.journal.records, 3);
  await first.journal.close();
  const again = await Journal.open<Entry>(file, { logger, valid });
  t.same(again.records, [
    { id: 'a', n: 1 },
    { id: 'b', n: 2 },
    { id: 'a', n: 3 },
  ]);
  t.equal(again.journal.records, 3, 'records found at open count toward compaction');
  await again.journal.reset();
  t.equal(readFileSync(file, 'utf8'), '');
  t.equal(again.journal.records, 0);
  await again.journal.close();
});

t.test('a torn last line is dropped and cut off; bad lines are skipped with a warning', async (t) => {
  const { file, logger, warnings } = setup(t);
  writeFileSync(file, '{"id":"a","n":1}\nnot json\n{"id":5,"n":2}\n\n{"id":"b","n":2}\n{"id":"c","n":');
  const opened = await Journal.open<Entry>(file, { logger, valid });
  t.same(opened.records, [
    { id: 'a', n: 1 },
    { id: 'b', n: 2 },
  ]);
  t.match(warnings, [{ msg: /torn last record/ }, { code: 'STATE_CORRUPT', skipped: 2 }]);
  await opened.journal.append([{ id: 'c', n: 3 }]);
  await opened.journal.close();
  t.match(readFileSync(file, 'utf8'), /\{"id":"b","n":2\}\n\{"id":"c","n":3\}\n$/, 'the next append starts on its own line');
  const reopened = await Journal.open<Entry>(file, { logger, valid });
  t.same(reopened.records.at(-1), { id: 'c', n: 3 });
  await reopened.journal.close();
});

// `append` resolves without an fdatasync of its own where the descriptor syncs every write: that
// guarantee is the kernel's open flags, read back from /proc (Linux only).
t.test('the journal is opened for synchronous data writes', { skip: process.platform !== 'linux' && 'reads /proc' }, async (t) => {
  const { file, logger } = setup(t);
  const { journal } = await Journal.open<Entry>(file, { logger, valid });
  t.teardown(() => journal.close());
  const fds = readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === file;
    } catch {
      return false;
    }
  });
  t.equal(fds.length, 1, 'one descriptor holds the journal');
  const flags = Number.parseInt(/^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fds[0]}`, 'utf8'))?.[1] ?? '0', 8);
  t.ok(flags & constants.O_DSYNC, 'O_DSYNC: each append is on disk when its write returns');
  t.ok(flags & constants.O_APPEND, 'O_APPEND');
});
