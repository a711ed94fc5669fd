import { spawn } from 'node:child_process';
import { constants, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import t, { type Test } from 'tap';
import { Journal } from './journal.js';

interface Entry {
  seq: number;
  id: string;
  n: number;
}
const valid = (r: unknown): r is Entry => typeof r === 'object' && r !== null && typeof (r as Entry).id === 'string' && typeof (r as Entry).n === 'number';
const WRITER = fileURLToPath(new URL('./fixtures/journal-writer.ts', import.meta.url));

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
  t.equal(first.lastSeq, 0);
  await first.journal.append([{ seq: 1, id: 'a', n: 1 }]);
  await first.journal.append([
    { seq: 2, id: 'b', n: 2 },
    { seq: 3, id: 'a', n: 3 },
  ]);
  await first.journal.append([]);
  t.equal(first.journal.records, 3);
  await first.journal.close();
  const again = await Journal.open<Entry>(file, { logger, valid });
  t.same(again.records, [
    { seq: 1, id: 'a', n: 1 },
    { seq: 2, id: 'b', n: 2 },
    { seq: 3, id: 'a', n: 3 },
  ]);
  t.equal(again.lastSeq, 3, 'the owner numbers its next records above this');
  t.equal(again.journal.records, 3, 'records found at open count toward compaction');
  await again.journal.reset();
  t.equal(readFileSync(file, 'utf8'), '');
  t.equal(again.journal.records, 0);
  await again.journal.close();
});

t.test('overlapping appends: each writes its own range in call order, and replay follows the numbers', async (t) => {
  const { file, logger } = setup(t);
  const { journal } = await Journal.open<Entry>(file, { logger, valid });
  // A record put back after a failed write goes out again after newer ones: its number still places it.
  const writes = [
    journal.append([{ seq: 2, id: 'a', n: 2 }]),
    journal.append([
      { seq: 3, id: 'b', n: 3 },
      { seq: 4, id: 'a', n: 4 },
    ]),
    journal.append([{ seq: 1, id: 'a', n: 1 }]),
  ];
  t.equal(journal.writing, 3, 'all three in flight at once');
  await Promise.all(writes);
  t.equal(journal.writing, 0);
  t.equal(journal.records, 4);
  const lines = readFileSync(file, 'utf8').split('\n');
  t.same(
    lines.slice(0, -1).map((line) => (JSON.parse(line) as Entry).seq),
    [2, 3, 4, 1],
    'the file holds the writes in call order, none overwriting another',
  );
  t.equal(journal.bytes, Buffer.byteLength(readFileSync(file)));
  await journal.close();
  const again = await Journal.open<Entry>(file, { logger, valid });
  t.same(
    again.records.map((r) => r.seq),
    [1, 2, 3, 4],
    'replay in number order',
  );
  await again.journal.close();
});

t.test('a torn last line is dropped and cut off; bad lines are skipped with a warning', async (t) => {
  const { file, logger, warnings } = setup(t);
  writeFileSync(file, '{"seq":1,"id":"a","n":1}\nnot json\n{"seq":2,"id":5,"n":2}\n\n{"seq":3,"id":"b","n":2}\n{"seq":4,"id":"c","n":');
  const opened = await Journal.open<Entry>(file, { logger, valid });
  t.same(opened.records, [
    { seq: 1, id: 'a', n: 1 },
    { seq: 3, id: 'b', n: 2 },
  ]);
  t.match(warnings, [{ msg: /torn last record/ }, { code: 'STATE_CORRUPT', skipped: 2 }]);
  await opened.journal.append([{ seq: 4, id: 'c', n: 3 }]);
  await opened.journal.close();
  t.match(readFileSync(file, 'utf8'), /\{"seq":3,"id":"b","n":2\}\n\{"seq":4,"id":"c","n":3\}\n$/, 'the next append starts on its own line');
  const reopened = await Journal.open<Entry>(file, { logger, valid });
  t.same(reopened.records.at(-1), { seq: 4, id: 'c', n: 3 });
  await reopened.journal.close();
});

t.test('power loss with overlapping writes: the empty range of a lost write is skipped, the records after it kept', async (t) => {
  const { file, logger, warnings } = setup(t);
  // Write 2 never reached the disk (its range reads as zeros), write 3 did; a torn write 2 leaves a
  // prefix of its line before the zeros.
  const lost = '\0'.repeat(40);
  writeFileSync(file, `{"seq":1,"id":"a","n":1}\n${lost}{"seq":3,"id":"a","n":3}\n{"seq":4,"id":"b","n":${lost}{"seq":5,"id":"b","n":5}\n`);
  const opened = await Journal.open<Entry>(file, { logger, valid });
  t.same(
    opened.records.map((r) => r.seq),
    [1, 3, 5],
  );
  t.equal(opened.lastSeq, 5);
  t.match(warnings, [{ code: 'STATE_CORRUPT', skipped: 1 }], 'the torn prefix is skipped with a warning');
  await opened.journal.close();
});

t.test('lines written before records were numbered keep their file order', async (t) => {
  const { file, logger } = setup(t);
  writeFileSync(file, '{"id":"a","n":1}\n{"id":"a","n":2}\n');
  const opened = await Journal.open<Entry>(file, { logger, valid });
  t.same(
    opened.records.map((r) => r.n),
    [1, 2],
  );
  await opened.journal.close();
});

// Several appends in flight at once, killed mid-stream: every record whose append had resolved is in the
// journal after the kill (kill -9 keeps what reached the kernel; power loss is what O_DSYNC is for).
// With preallocation too: the zeros written ahead of the appends must never land on a record.
for (const [inFlight, preallocate] of [
  [1, 0],
  [4, 0],
  [4, 8192],
] as const) {
  const room = preallocate > 0 ? `, the file extended ${preallocate} bytes ahead` : '';
  t.test(`kill -9 with ${inFlight} append(s) in flight${room}: every acknowledged record is found on reopen`, async (t) => {
    const { file, logger } = setup(t);
    const args = ['--import', 'tsx', WRITER, file, String(inFlight), String(preallocate)];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const acked = new Set<number>();
    let out = '';
    await new Promise<void>((resolve) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const lines = out.split('\n');
        out = lines.pop()!;
        for (const line of lines) {
          const match = /^acked (\d+)$/.exec(line);
          if (match) acked.add(Number(match[1]));
        }
        if (acked.size >= 400 && child.signalCode === null) {
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await new Promise((resolve) => child.once('exit', resolve));
    const { journal, records } = await Journal.open<Entry & { pad: string }>(file, {
      logger,
      valid: (r): r is Entry & { pad: string } => typeof (r as { pad?: unknown }).pad === 'string',
    });
    t.teardown(() => journal.close());
    const found = new Set(records.map((r) => r.seq));
    const missing = [...acked].filter((seq) => !found.has(seq));
    t.same(missing, [], `all ${acked.size} acknowledged records found (${records.length} in the journal)`);
    t.ok(
      records.every((r, i) => i === 0 || r.seq > records[i - 1]!.seq),
      'replayed in number order, none twice',
    );
  });
}

t.test('preallocation: the file is extended with zeros ahead of the appends, which overwrite them; open and reset keep working', async (t) => {
  const { file, logger, warnings } = setup(t);
  const preallocate = 4096;
  const opened = await Journal.open<Entry>(file, { logger, valid, preallocate });
  const { journal } = opened;
  let seq = 0;
  const entry = (): Entry => ({ seq: ++seq, id: 'lamp', n: seq % 101 });
  // Wait until the first extension is on disk: then appends below its end do not change the size.
  while (journal.allocated === 0) await journal.append([entry()]);
  const size = statSync(file).size;
  t.equal(size, journal.allocated, 'the file has the room it was given');
  t.ok(size > journal.bytes, 'zeros ahead of the records');
  const writes: Promise<void>[] = [];
  // Several rounds past the end: each extension goes beyond every reserved byte, appends racing it wait.
  for (let i = 0; i < 300; i++) writes.push(journal.append(i % 3 === 0 ? [entry(), entry()] : [entry()]));
  await Promise.all(writes);
  await journal.close();
  const sizeBefore = statSync(file).size;
  const text = readFileSync(file, 'utf8');
  t.match(text.slice(journal.bytes), /^\0*$/, 'after the records: zeros only');
  const again = await Journal.open<Entry>(file, { logger, valid, preallocate });
  t.same(
    again.records.map((r) => r.seq),
    Array.from({ length: seq }, (_, i) => i + 1),
    'every record, in order, none lost to the zeros',
  );
  t.same(warnings, [], 'spare room is not damage: no warning');
  t.ok(statSync(file).size >= sizeBefore, 'reopening keeps the room (the zeros are not cut off)');
  await again.journal.append([entry()]);
  await again.journal.reset();
  t.equal(again.journal.records, 0);
  await again.journal.append([entry()]);
  await again.journal.close();
  const afterReset = await Journal.open<Entry>(file, { logger, valid, preallocate });
  t.same(
    afterReset.records.map((r) => r.seq),
    [seq],
    'after a reset only what came since',
  );
  await afterReset.journal.close();
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
  t.notOk(flags & constants.O_APPEND, 'no O_APPEND: each append writes at the offset it reserved');
});
