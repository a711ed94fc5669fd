/**
 * The component: status section and Prometheus figures, the verification at start (passing, and failing
 * on a tampered log), the disabled mode, and a clean restart.
 */
import path from 'node:path';
import t from 'tap';
import { auditFileName } from './files.js';
import { AuditLog, type AuditStatus } from './log.js';
import { auditTestContext } from './testing/context.js';
import { editLines } from './testing/tamper.js';

const entry = (n: number) => ({ op: 'agent.decision', principal: { kind: 'chat' as const, id: 'line-chat:bob' }, trace: `t${n}`, rule: 'lamp-on', decision: 'allowed' as const, outcome: 'done' as const });

t.test('status section, figures and the verification at start', async (t) => {
  const test = auditTestContext();
  t.teardown(() => test.cleanup());
  const log = new AuditLog({ config: { verify_at_start_ms: 60_000 } });
  await log.start(test.ctx);
  t.match(await log.whenVerified(), { state: 'passed', at: /^\d{4}-/, result: { ok: true, records: 0 } });
  await Promise.all([1, 2, 3].map((n) => log.record(entry(n))));

  const status = (await test.ctx.status.snapshot()).audit as AuditStatus;
  t.match(status, { enabled: true, running: true, seq: 3, file: auditFileName(1), pending: 0, records_last_minute: 3, verification: { state: 'passed' } });
  const text = await test.ctx.metrics.metrics();
  t.match(text, /clawbox_audit_records_total 3/);
  t.match(text, /clawbox_audit_verify_result 1/);
  t.match(text, /clawbox_audit_verify_timestamp_seconds \d/);
  t.match(text, /clawbox_audit_queue_length 0/);

  await log.stop();
  t.notOk('audit' in (await test.ctx.status.snapshot()), 'status section removed at stop');
  t.notOk(test.ctx.metrics.getSingleMetric('clawbox_audit_records_total'), 'figures removed at stop');

  // Tampered while stopped: the next start still serves, and says so.
  editLines(path.join(test.stateDir, 'audit', auditFileName(1)), (lines) => lines.map((l, i) => (i === 2 ? l.replace('"t2"', '"t9"') : l)));
  await log.start(test.ctx);
  t.teardown(() => log.stop());
  t.match(await log.whenVerified(), { state: 'failed', result: { ok: false, problem: { file: auditFileName(1), line: 3, reason: /edited/ } } });
  t.match(test.logs, [{ level: 50, code: 'STATE_CORRUPT', line: 3, msg: /verification failed at audit-000001\.jsonl:3/ }]);
  t.match(await test.ctx.metrics.metrics(), /clawbox_audit_verify_result 0/);
  t.equal((await log.record(entry(4))).seq, 4, 'records are still written');
});

t.test('disabled: record() checks the entry and keeps nothing', async (t) => {
  const test = auditTestContext();
  t.teardown(() => test.cleanup());
  const log = new AuditLog({ config: { enabled: false } });
  await log.start(test.ctx);
  t.match(await log.record(entry(1)), { seq: 0, hash: '', op: 'agent.decision' });
  await t.rejects(log.record({ ...entry(1), op: '' }), { code: 'PAYLOAD_INVALID' });
  t.match((await test.ctx.status.snapshot()).audit, { enabled: false, running: false });
  await log.stop();
  t.notOk('audit' in (await test.ctx.status.snapshot()));
});
