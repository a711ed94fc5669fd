/** `clawbox audit verify | tail | query` over a real log written by the component. */
import path from 'node:path';
import t from 'tap';
import { ERROR_CATALOG } from '../errors.js';
import { runAuditCommand } from './cli.js';
import { auditFileName } from './files.js';
import { AuditLog } from './log.js';
import type { AuditRecord } from './record.js';
import { auditTestContext } from './testing/context.js';
import { editLines } from './testing/tamper.js';

async function cli(args: string[], stateDir?: string) {
  const stdout: string[] = [];
  const code = await runAuditCommand(args, { stdout: (s) => stdout.push(s), ...(stateDir ? { stateDir } : {}), now: () => new Date() });
  return { code, stdout: stdout.join('') };
}

t.test('verify, tail and query', async (t) => {
  const test = auditTestContext();
  t.teardown(() => test.cleanup());
  const log = new AuditLog({ config: { verify_at_start_ms: 0 } });
  await log.start(test.ctx);
  await log.record({ op: 'device.command', principal: { kind: 'mqtt', id: 'panel' }, trace: 'a', device: 'lamp', decision: 'allowed', outcome: 'done', ack: { state: 'ON' } });
  await log.record({ op: 'agent.decision', principal: { kind: 'chat', id: 'line-chat:bob' }, trace: 'b', rule: 'lamp-off', decision: 'allowed', outcome: 'done' });
  await log.record({ op: 'device.command', principal: { kind: 'http', id: 'api' }, trace: 'c', device: 'fan', decision: 'forbidden', outcome: 'not_run', error: { code: 'FORBIDDEN', message: 'no' } });
  await log.stop();
  const dir = test.stateDir;

  t.match(await cli(['verify'], dir), { code: 0, stdout: /^audit ok: 3 records in 1 files \(seq 1\.\.3\), head [0-9a-f]{64}\n$/ });
  t.match(JSON.parse((await cli(['verify', '--json', '--state-dir', dir])).stdout), { ok: true, records: 3 });

  const tail = await cli(['tail', '-n', '2'], dir);
  t.equal(tail.code, 0);
  t.match(tail.stdout, /^\S+Z {2}#2 {2}chat:line-chat:bob {2}agent\.decision allowed rule lamp-off → done {2}trace b\n\S+Z {2}#3 {2}http:api {2}device\.command fan forbidden → not_run {2}FORBIDDEN: no {2}trace c\n$/);
  const json = (await cli(['tail', '--json'], dir)).stdout.trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
  t.same(
    json.map((r) => r.seq),
    [1, 2, 3],
  );

  const seqs = async (args: string[]) =>
    (await cli(['query', '--json', ...args], dir)).stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as AuditRecord).seq);
  t.same(await seqs(['--op', 'device.command']), [1, 3]);
  t.same(await seqs(['--device', 'lamp']), [1]);
  t.same(await seqs(['--principal', 'chat']), [2]);
  t.same(await seqs(['--principal', 'http:api']), [3]);
  t.same(await seqs(['--since', '1h', '--limit', '2']), [2, 3]);
  t.same(await seqs(['--since', '2999-01-01T00:00:00Z']), []);
  t.match(await cli(['query', '--device', 'nope'], dir), { code: 0, stdout: 'no matching audit records\n' });

  editLines(path.join(dir, 'audit', auditFileName(1)), (lines) => lines.filter((_, i) => i !== 2));
  const failed = await cli(['verify'], dir);
  t.equal(failed.code, 1);
  t.equal(failed.stdout, `audit FAILED: ${path.join(dir, 'audit', auditFileName(1))}:3: expected seq 2, found 3: records before this line were removed or moved\n`);
});

t.test('an empty state dir verifies; bad arguments are USAGE (exit 64)', async (t) => {
  const test = auditTestContext();
  t.teardown(() => test.cleanup());
  t.match(await cli(['verify'], test.stateDir), { code: 0, stdout: /no audit files/ });
  t.match(await cli(['--help']), { code: 0, stdout: /clawbox audit verify/ });
  const usage = { code: 'USAGE', spec: ERROR_CATALOG.USAGE };
  await t.rejects(cli([], test.stateDir), usage);
  await t.rejects(cli(['verify']), { code: 'USAGE', message: /--state-dir/ });
  await t.rejects(cli(['frob'], test.stateDir), { code: 'USAGE', message: /unknown audit command/ });
  await t.rejects(cli(['tail', '-n', '0'], test.stateDir), { code: 'USAGE', message: /-n must be a positive integer/ });
  await t.rejects(cli(['query', '--since', 'yesterday'], test.stateDir), { code: 'USAGE', message: /--since/ });
  await t.rejects(cli(['verify', '--device', 'x'], test.stateDir), { code: 'USAGE', message: /does not take --device/ });
  await t.rejects(cli(['tail', '--bogus'], test.stateDir), usage);
  t.equal(ERROR_CATALOG.USAGE.exit, 64);
});
