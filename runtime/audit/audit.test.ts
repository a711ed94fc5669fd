/**
 * The audit log on real files with real fsync: records come back in order and verify; each kind of
 * tampering fails verification at the right file and line; a torn last line is cut off at start and the
 * chain goes on; concurrent callers get consecutive seqs; a full queue answers BUSY.
 */
import { existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { isClawboxError } from '../errors.js';
import { canonicalJson, digest } from './canonical.js';
import { auditFileName } from './files.js';
import { AuditLog } from './log.js';
import { type AuditEntry, type AuditRecord, hashLine } from './record.js';
import { auditTestContext } from './testing/context.js';
import { editLines, readFileLines } from './testing/tamper.js';
import { verifyAuditDir } from './verify.js';

const entry = (n: number, extra: Partial<AuditEntry> = {}): AuditEntry => ({
  op: 'device.command',
  principal: { kind: 'mqtt', id: `client-${n % 3}` },
  trace: `trace-${n}`,
  device: `lamp-${n % 2}`,
  input_digest: digest({ state: n % 2 ? 'ON' : 'OFF' }),
  decision: 'allowed',
  outcome: 'done',
  ack: { state: 'ON', n },
  ...extra,
});

async function startLog(t: Test, options: ConstructorParameters<typeof AuditLog>[0] = {}, stateDir?: string) {
  const test = auditTestContext(stateDir);
  t.teardown(() => test.cleanup());
  const log = new AuditLog({ config: { verify_at_start_ms: 0, ...options.config }, ...(options.dir ? { dir: options.dir } : {}) });
  await log.start(test.ctx);
  let stopped = false;
  t.teardown(() => (stopped ? undefined : log.stop()));
  return {
    ...test,
    log,
    dir: path.join(test.stateDir, 'audit'),
    stop: async () => {
      stopped = true;
      await log.stop();
    },
  };
}

/** A log with `n` records in one file, stopped; returns the file. */
async function writtenLog(t: Test, n: number) {
  const env = await startLog(t);
  await Promise.all(Array.from({ length: n }, (_, i) => env.log.record(entry(i + 1))));
  await env.stop();
  return { ...env, file: path.join(env.dir, auditFileName(1)) };
}

t.test('canonical JSON and digests do not depend on key order', async (t) => {
  t.equal(canonicalJson({ b: 1, a: [1, { d: undefined, c: 'x' }], e: Number.NaN }), '{"a":[1,{"c":"x"}],"b":1,"e":null}');
  t.equal(digest({ a: 1, b: 2 }), digest({ b: 2, a: 1 }));
  t.match(digest('secret'), /^sha256:[0-9a-f]{64}$/);
  t.not(digest({ a: 1 }), digest({ a: 2 }));
});

t.test('records are appended in order, durable when acknowledged, and verify', async (t) => {
  const env = await startLog(t);
  const first = await env.log.record(entry(1, { proposed: { tool: 'set', args: { state: 'ON' } }, rule: undefined }));
  t.match(first, { seq: 1, op: 'device.command', principal: { kind: 'mqtt', id: 'client-1' }, outcome: 'done', prev: /^[0-9a-f]{64}$/, hash: /^[0-9a-f]{64}$/ });
  const lines = readFileLines(path.join(env.dir, auditFileName(1)));
  t.equal(lines.length, 2, 'anchor and the record are in the file when record() resolves');
  t.same(JSON.parse(lines[1]!), first);
  t.equal(JSON.parse(lines[0]!).hash, first.prev, 'the first record links to the anchor');

  const more = await Promise.all([2, 3, 4].map((n) => env.log.record(entry(n, { outcome: n === 4 ? 'failed' : 'done', ...(n === 4 ? { error: { code: 'DEVICE_TIMEOUT', message: 'no answer' } } : {}) }))));
  t.same(
    more.map((r) => r.seq),
    [2, 3, 4],
  );
  t.equal(more[0]!.prev, first.hash);
  const verified = await env.log.verify();
  t.match(verified, { ok: true, complete: true, files: 1, records: 4, first_seq: 1, last_seq: 4, head: more[2]!.hash });
  t.same(
    (await env.log.tail(2)).map((r) => r.seq),
    [3, 4],
  );
  t.same(
    (await env.log.query({ device: 'lamp-0' })).map((r) => r.seq),
    [2, 4],
  );
  t.same(
    (await env.log.query({ principal: 'mqtt:client-1', limit: 5 })).map((r) => r.seq),
    [1, 4],
  );
  t.same((await env.log.query({ op: 'device.command', limit: 1 })).map((r) => r.seq), [4], 'limit keeps the newest');
  t.same(await env.log.query({ since: new Date(Date.now() + 60_000) }), []);

  await env.stop();
  const again = await startLog(t, {}, env.stateDir);
  t.equal((await again.log.record(entry(5))).seq, 5, 'a restarted log continues the chain');
  t.match(await again.log.verify(), { ok: true, records: 5 });
});

t.test('entries are checked and copied; raw oversize fields are kept as digests', async (t) => {
  const env = await startLog(t);
  const bad = await env.log.record({ ...entry(1), outcome: 'maybe' } as unknown as AuditEntry).catch((e: unknown) => e);
  t.ok(isClawboxError(bad, 'PAYLOAD_INVALID'), 'a bad outcome is refused');
  const noPrincipal = await env.log.record({ ...entry(1), principal: undefined } as unknown as AuditEntry).catch((e: unknown) => e);
  t.ok(isClawboxError(noPrincipal, 'PAYLOAD_INVALID'));
  const ack = { big: 'x'.repeat(40_000) };
  const extra = { ...entry(1), ack, password: 'hunter2' } as AuditEntry;
  const record = await env.log.record(extra);
  ack.big = 'changed';
  t.match(record.ack, { omitted: 'too large', digest: /^sha256:/ });
  t.notOk('password' in record, 'unknown fields never reach the log');
  t.notOk(readFileSync(path.join(env.dir, auditFileName(1)), 'utf8').includes('hunter2'));
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  t.match((await env.log.record(entry(2, { proposed: cyclic }))).proposed, { omitted: 'not JSON' });
  t.match(await env.log.verify(), { ok: true, records: 2 });
});

t.test('concurrent callers get consecutive seqs in call order', async (t) => {
  const env = await startLog(t);
  const records: AuditRecord[] = [];
  // Calls from several turns, some while a write is in flight.
  const waves = await Promise.all(
    Array.from({ length: 5 }, async (_, wave) => {
      await new Promise((resolve) => setImmediate(resolve));
      return Promise.all(Array.from({ length: 40 }, (_, i) => env.log.record(entry(wave * 100 + i))));
    }),
  );
  for (const wave of waves) records.push(...wave);
  const seqs = records.map((r) => r.seq).sort((a, b) => a - b);
  t.same(
    seqs,
    Array.from({ length: 200 }, (_, i) => i + 1),
    'every seq once, no gaps',
  );
  for (const wave of waves) {
    for (let i = 1; i < wave.length; i++) t.equal(wave[i]!.seq, wave[i - 1]!.seq + 1, 'calls made together are consecutive');
  }
  const bySeq = new Map(records.map((r) => [r.seq, r]));
  for (let seq = 2; seq <= 200; seq++) t.equal(bySeq.get(seq)!.prev, bySeq.get(seq - 1)!.hash);
  t.match(await env.log.verify(), { ok: true, records: 200 });
});

t.test('a full queue answers BUSY instead of growing', async (t) => {
  const env = await startLog(t, { config: { max_pending: 3 } });
  const calls = Array.from({ length: 5 }, (_, i) => env.log.record(entry(i)).catch((e: unknown) => e));
  const results = await Promise.all(calls);
  t.same(
    results.slice(0, 3).map((r) => (r as AuditRecord).seq),
    [1, 2, 3],
  );
  for (const r of results.slice(3)) t.ok(isClawboxError(r, 'BUSY') && /cannot keep up/.test(r.message), 'over the bound: BUSY');
  t.equal((await env.log.record(entry(9))).seq, 4, 'accepted again once the queue drained');
});

t.test('record() before start or after stop is BUSY; stop writes what was handed in', async (t) => {
  const before = await new AuditLog().record(entry(1)).catch((e: unknown) => e);
  t.ok(isClawboxError(before, 'BUSY'));
  const env = await startLog(t);
  const pending = Promise.all([1, 2, 3].map((n) => env.log.record(entry(n))));
  await env.stop();
  t.same(
    (await pending).map((r) => r.seq),
    [1, 2, 3],
  );
  t.ok(isClawboxError(await env.log.record(entry(4)).catch((e: unknown) => e), 'BUSY'));
  t.match(await verifyAuditDir(env.dir), { ok: true, records: 3 });
});

t.test('tampering fails verification at the right line', async (t) => {
  const cases: Array<{ name: string; edit: (lines: string[]) => string[]; line: number; reason: RegExp }> = [
    {
      name: 'a field edited',
      edit: (lines) => lines.map((l, i) => (i === 3 ? l.replace('"outcome":"done"', '"outcome":"failed"') : l)),
      line: 4,
      reason: /edited/,
    },
    { name: 'a line deleted', edit: (lines) => lines.filter((_, i) => i !== 2), line: 3, reason: /expected seq 2, found 3: records before this line were removed/ },
    { name: 'two lines swapped', edit: (lines) => [lines[0]!, lines[1]!, lines[3]!, lines[2]!, ...lines.slice(4)], line: 3, reason: /expected seq 2, found 3/ },
    { name: 'a line repeated', edit: (lines) => [...lines.slice(0, 4), lines[2]!, ...lines.slice(4)], line: 5, reason: /expected seq 4, found 2: a record was inserted/ },
    {
      // Hashed correctly and linked to line 4, the forgery itself looks valid: the line after it cannot.
      name: 'a well-forged record inserted',
      edit: (lines) => {
        const before = JSON.parse(lines[3]!) as AuditRecord;
        const { hash: _hash, ...forged } = { ...before, seq: before.seq + 1, outcome: 'failed' as const, prev: before.hash };
        return [...lines.slice(0, 4), JSON.stringify({ ...forged, hash: hashLine(forged) }), ...lines.slice(4)];
      },
      line: 6,
      reason: /expected seq 5, found 4: a record was inserted/,
    },
    { name: 'a blank line inserted', edit: (lines) => [...lines.slice(0, 2), '', ...lines.slice(2)], line: 3, reason: /not an audit record/ },
    { name: 'the anchor removed', edit: (lines) => lines.slice(1), line: 1, reason: /must be its anchor/ },
  ];
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const { dir, file } = await writtenLog(t, 6);
      t.match(await verifyAuditDir(dir), { ok: true, records: 6 }, 'intact before');
      editLines(file, c.edit);
      const result = await verifyAuditDir(dir);
      t.equal(result.ok, false);
      t.match(result.problem, { file: auditFileName(1), line: c.line, reason: c.reason });
    });
  }
});

t.test('a forged record with a recomputed hash still breaks the chain at the next line', async (t) => {
  const { dir, file } = await writtenLog(t, 4);
  editLines(file, (lines) =>
    lines.map((l, i) => {
      if (i !== 2) return l;
      const record = JSON.parse(l) as AuditRecord;
      record.outcome = 'failed';
      record.hash = hashLine(record);
      return JSON.stringify(record);
    }),
  );
  t.match(await verifyAuditDir(dir), { ok: false, problem: { line: 4, reason: /prev is not the hash of line 3/ } });
});

t.test('a torn last line fails verify, is cut off at start with a warning, and the chain goes on', async (t) => {
  const { dir, file, stateDir } = await writtenLog(t, 5);
  const text = readFileSync(file, 'utf8');
  const lastLine = text.slice(0, -1).lastIndexOf('\n') + 1;
  const tornAt = lastLine + Math.floor((text.length - 1 - lastLine) / 2);
  truncateSync(file, tornAt);
  t.match(await verifyAuditDir(dir), { ok: false, problem: { file: auditFileName(1), line: 6, reason: /torn write/ } });

  const env = await startLog(t, {}, stateDir);
  t.match(env.logs, [{ level: 40, code: 'STATE_CORRUPT', file: auditFileName(1), line: 6, msg: /torn tail from line 6/ }]);
  t.equal(readFileSync(`${file}.torn`, 'utf8'), `${text.slice(lastLine, tornAt)}\n`, 'the torn bytes are kept aside');
  t.equal((await env.log.record(entry(9))).seq, 5, 'the chain continues from the last good record (seq 4)');
  t.match(await env.log.verify(), { ok: true, records: 5, last_seq: 5 });
});

t.test('an invalid (not torn) last line is left as evidence and the log moves to a new file', async (t) => {
  const { dir, file, stateDir } = await writtenLog(t, 3);
  editLines(file, (lines) => [...lines, '{"garbage":true}']);
  const env = await startLog(t, {}, stateDir);
  t.match(env.logs, [{ level: 50, code: 'STATE_CORRUPT', continues_from_seq: 3 }]);
  t.equal((await env.log.record(entry(4))).seq, 4);
  t.ok(existsSync(path.join(dir, auditFileName(2))));
  t.match(await verifyAuditDir(dir), { ok: false, problem: { file: auditFileName(1), line: 5, reason: /not an audit record/ } });
  // Taking the bad line out (what the operator does once it is understood) restores the chain.
  editLines(file, (lines) => lines.slice(0, -1));
  t.match(await verifyAuditDir(dir), { ok: true, records: 4 });
});

t.test('an empty newest file left by an interrupted rotation is removed at start', async (t) => {
  const { dir, stateDir } = await writtenLog(t, 2);
  writeFileSync(path.join(dir, auditFileName(2)), '{"kind":"anch');
  const env = await startLog(t, {}, stateDir);
  t.notOk(existsSync(path.join(dir, auditFileName(2))));
  t.equal((await env.log.record(entry(3))).seq, 3);
  t.match(await env.log.verify(), { ok: true, files: 1, records: 3 });
});

t.test('NUL bytes left by a lost write are a torn tail too', async (t) => {
  const { dir, file, stateDir } = await writtenLog(t, 3);
  const lines = readFileLines(file);
  // A batch of two records whose first page never reached the disk.
  writeFileSync(file, `${lines.slice(0, -1).join('\n')}\n${'\0'.repeat(40)}\n${lines.at(-1)}\n`);
  t.match(await verifyAuditDir(dir), { ok: false, problem: { line: 4, reason: /torn write: NUL bytes/ } });
  const env = await startLog(t, {}, stateDir);
  t.match(env.logs, [{ code: 'STATE_CORRUPT', line: 4, msg: /torn tail/ }]);
  t.equal((await env.log.record(entry(9))).seq, 3, 'continues after the last record before the NULs');
  t.match(await env.log.verify(), { ok: true, records: 3 });
});
