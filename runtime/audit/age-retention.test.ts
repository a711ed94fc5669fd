/**
 * Age-based retention (data.retention.audit_days): files whose records are all older than the cutoff are
 * deleted, exactly those, never the file being written, and the chain still verifies afterwards.
 */
import path from 'node:path';
import t from 'tap';
import { listAuditFiles } from './files.js';
import { AuditLog } from './log.js';
import { auditTestContext } from './testing/context.js';
import { verifyAuditDir } from './verify.js';
import { AuditWriter } from './writer.js';
import type { RecordBody } from './record.js';

const DAY = 86_400_000;

t.test('retireBefore deletes exactly the files older than the cutoff, and the chain verifies', async (t) => {
  const test = auditTestContext();
  t.teardown(() => test.cleanup());
  const dir = path.join(test.stateDir, 'audit');
  let clock = Date.now() - 400 * DAY;
  const logger = test.ctx.logger('audit');
  const writer = await AuditWriter.open(dir, { logger, rotateBytes: 1200, retainFiles: 0, now: () => new Date(clock) });
  const body = (i: number): RecordBody => ({ time: new Date(clock).toISOString(), op: 'device.set', principal: { kind: 'http', id: 'api' }, trace: `t${i}`, outcome: 'done' });
  // 400 days ago .. today, one record per step, files rotating every few records.
  for (let i = 0; i < 40; i++) {
    await writer.append([body(i)]);
    clock += 10 * DAY;
  }
  const before = await listAuditFiles(dir);
  t.ok(before.length >= 5, `${before.length} files`);
  const cutoff = new Date(Date.now() - 365 * DAY);
  const lastTimes = new Map<number, number>();
  const { readFileSync } = await import('node:fs');
  for (const file of before) {
    const lines = readFileSync(file.path, 'utf8').trim().split('\n');
    lastTimes.set(file.index, Date.parse((JSON.parse(lines.at(-1)!) as { time: string }).time));
  }
  const expected: string[] = [];
  for (const file of before) {
    if (file.index === before.at(-1)!.index || !(lastTimes.get(file.index)! < cutoff.getTime())) break;
    expected.push(file.name);
  }
  t.ok(expected.length > 0, 'some files are older than the cutoff');

  const deleted = await writer.retireBefore(cutoff);
  t.same(deleted, expected, 'exactly the files whose newest record is older than the cutoff');
  const after = await listAuditFiles(dir);
  t.notOk(after.some((f) => expected.includes(f.name)), 'they are gone');
  t.same(await writer.retireBefore(cutoff), [], 'a second sweep finds nothing more');
  await writer.append([body(99)]);
  await writer.close();
  t.match(await verifyAuditDir(dir), { ok: true }, 'the chain verifies after the deletes');
});

t.test('AuditLog.retireBefore runs between writes and keeps the current file', async (t) => {
  const test = auditTestContext();
  t.teardown(() => test.cleanup());
  const log = new AuditLog({ config: { verify_at_start_ms: 0, rotate_bytes: 4096 } });
  await log.start(test.ctx);
  t.teardown(() => log.stop());
  const writes = Array.from({ length: 20 }, (_, i) => log.record({ op: 'device.set', principal: { kind: 'http', id: 'api' }, trace: `x${i}`, outcome: 'done' }));
  // Everything is newer than the cutoff: nothing goes, and the writes handed in around it all land.
  t.same(await log.retireBefore(new Date(Date.now() - DAY)), []);
  await Promise.all(writes);
  t.equal((await log.tail(100)).length, 20);
  t.match(await log.verify(), { ok: true, records: 20 });
});
