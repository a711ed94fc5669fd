/**
 * Rotation and retention on real files: the chain runs across files through their anchors, deleting the
 * oldest files by retention keeps what remains verifiable, and a file removed, renamed or cut short by
 * anyone else is found.
 */
import { copyFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { AuditConfig } from './config-schema.js';
import { auditFileName, listAuditFiles } from './files.js';
import { AuditLog } from './log.js';
import { AuditWriter } from './writer.js';
import type { AuditAnchor } from './record.js';
import { auditTestContext } from './testing/context.js';
import { editLines, readFileLines } from './testing/tamper.js';
import { verifyAuditDir } from './verify.js';

/** Writes `n` records one at a time (so rotation happens between them) and stops the log. */
async function rotatedLog(t: Test, n: number, config: Partial<AuditConfig>, stateDir?: string) {
  const test = auditTestContext(stateDir);
  t.teardown(() => test.cleanup());
  const log = new AuditLog({ config: { verify_at_start_ms: 0, rotate_bytes: 1500, retain_files: 0, ...config } });
  await log.start(test.ctx);
  for (let i = 1; i <= n; i++) await log.record({ op: 'device.command', principal: { kind: 'http', id: 'api' }, trace: `t${i}`, device: 'lamp', outcome: 'done' });
  await log.stop();
  const dir = path.join(test.stateDir, 'audit');
  return { dir, stateDir: test.stateDir, files: await listAuditFiles(dir), ctx: test.ctx };
}

const anchorOf = (file: string) => JSON.parse(readFileLines(file)[0]!) as AuditAnchor;

t.test('rotation chains each file to the one before through its anchor', async (t) => {
  const { dir, files } = await rotatedLog(t, 40, {});
  t.ok(files.length >= 4, `${files.length} files`);
  t.same(
    files.map((f) => f.index),
    files.map((_, i) => i + 1),
  );
  for (let i = 1; i < files.length; i++) {
    const lines = readFileLines(files[i - 1]!.path);
    const last = JSON.parse(lines.at(-1)!) as { seq: number; hash: string };
    t.match(anchorOf(files[i]!.path), { kind: 'anchor', file: i + 1, seq: last.seq, prev: last.hash, oldest: 1 });
  }
  t.match(await verifyAuditDir(dir), { ok: true, files: files.length, records: 40, first_seq: 1, last_seq: 40 });
});

t.test('retention deletes the oldest files and what remains still verifies', async (t) => {
  const { dir, files, stateDir } = await rotatedLog(t, 60, { retain_files: 3 });
  t.equal(files.length, 3, 'three files kept');
  const newest = files.at(-1)!;
  t.ok(newest.index > 3, 'older files were deleted');
  t.equal(anchorOf(newest.path).oldest, newest.index - 2, 'the newest anchor says which files are kept');
  const result = await verifyAuditDir(dir);
  t.match(result, { ok: true, files: 3, last_seq: 60 });
  t.ok(result.first_seq! > 1);

  // Keeping more files from now on does not make the files already deleted count as missing.
  const more = await rotatedLog(t, 30, { retain_files: 10 }, stateDir);
  t.match(await verifyAuditDir(more.dir), { ok: true, last_seq: 90 });
  const fewer = await rotatedLog(t, 30, { retain_files: 2 }, stateDir);
  t.equal(fewer.files.length, 2);
  t.match(await verifyAuditDir(fewer.dir), { ok: true, last_seq: 120 });
});

t.test('files removed, renamed or cut short are found', async (t) => {
  await t.test('a middle file deleted', async (t) => {
    const { dir, files } = await rotatedLog(t, 40, {});
    rmSync(files[1]!.path);
    t.match(await verifyAuditDir(dir), { ok: false, problem: { file: auditFileName(3), line: 1, reason: `${auditFileName(2)} is missing` } });
  });
  await t.test('the oldest file retention keeps deleted', async (t) => {
    const { dir, files } = await rotatedLog(t, 60, { retain_files: 3 });
    rmSync(files[0]!.path);
    t.match(await verifyAuditDir(dir), { ok: false, problem: { file: files[1]!.name, line: 1, reason: `${files[0]!.name} is missing` } });
  });
  await t.test('a file renamed to fill the gap', async (t) => {
    const { dir, files } = await rotatedLog(t, 40, {});
    rmSync(files[1]!.path);
    copyFileSync(files[0]!.path, files[1]!.path);
    t.match(await verifyAuditDir(dir), { ok: false, problem: { file: auditFileName(2), line: 1, reason: /the anchor belongs to audit-000001/ } });
  });
  await t.test('records cut from the end of a rotated file', async (t) => {
    const { dir, files } = await rotatedLog(t, 40, {});
    editLines(files[1]!.path, (lines) => lines.slice(0, -1));
    t.match(await verifyAuditDir(dir), { ok: false, problem: { file: auditFileName(3), line: 1, reason: /does not link to the last line of audit-000002/ } });
  });
  await t.test('a line moved from one file to the next', async (t) => {
    const { dir, files } = await rotatedLog(t, 40, {});
    const moved = readFileLines(files[0]!.path).at(-1)!;
    editLines(files[0]!.path, (lines) => lines.slice(0, -1));
    editLines(files[1]!.path, (lines) => [lines[0]!, moved, ...lines.slice(1)]);
    t.match(await verifyAuditDir(dir), { ok: false, problem: { file: auditFileName(2), line: 1, reason: /does not link/ } });
  });
});

t.test('retention waits while a reader holds the files', async (t) => {
  const test = auditTestContext();
  t.teardown(() => test.cleanup());
  const dir = path.join(test.stateDir, 'audit');
  const writer = await AuditWriter.open(dir, { logger: test.ctx.logger('audit'), rotateBytes: 1500, retainFiles: 2 });
  t.teardown(() => writer.close());
  const body = (i: number) => ({ time: new Date().toISOString(), op: 'x', principal: { kind: 'system' as const, id: 'test' }, trace: `t${i}`, outcome: 'done' as const });
  const release = writer.hold();
  for (let i = 0; i < 40; i++) await writer.append([body(i)]);
  const names = () => readdirSync(dir).filter((n) => n.endsWith('.jsonl'));
  t.ok(names().length > 2, `every file kept while held (${names().length})`);
  await release();
  t.equal(names().length, 2, 'the old ones deleted at release');
  t.match(await verifyAuditDir(dir), { ok: true, last_seq: 40 });
});
