/**
 * kill -9 while appending: a child process appends records and prints each acknowledged seq; it is killed
 * at a random point. Every acknowledged record must be in the log, and after the next start (which cuts a
 * torn tail, if any) the whole chain verifies.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { AuditLog } from './log.js';
import { queryAuditDir } from './read.js';
import { auditTestContext } from './testing/context.js';
import { verifyAuditDir } from './verify.js';

const child = fileURLToPath(new URL('./testing/append-child.ts', import.meta.url));

for (let round = 1; round <= 3; round++) {
  t.test(`every acknowledged record survives kill -9 (round ${round})`, async (t) => {
    const scratch = mkdtempSync(path.join(tmpdir(), 'clawbox-audit-crash-'));
    t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
    const killAfter = 1 + Math.floor(Math.random() * 600);
    t.comment(`killing after ${killAfter} acknowledgements`);

    const proc = spawn(process.execPath, ['--import', 'tsx', child, scratch], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    });
    const acked: number[] = [];
    let pending = '';
    proc.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const match = /^ack (\d+)$/.exec(line);
        if (match) acked.push(Number(match[1]));
      }
      if (acked.length >= killAfter && proc.signalCode === null) proc.kill('SIGKILL');
    });
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => proc.once('close', (_code, sig) => resolve(sig)));
    t.equal(signal, 'SIGKILL', 'the child died by SIGKILL while appending');
    t.ok(acked.length >= killAfter, `${acked.length} records acknowledged`);
    t.same(
      acked,
      acked.map((_, i) => i + 1),
      'acknowledged in seq order',
    );

    const dir = path.join(scratch, 'audit');
    const before = await verifyAuditDir(dir);
    t.ok(before.ok || /torn write/.test(before.problem?.reason ?? ''), `before restart: ${before.problem?.reason ?? 'ok'}`);

    const test = auditTestContext(scratch);
    const log = new AuditLog({ config: { verify_at_start_ms: 0, rotate_bytes: 8192, retain_files: 0 } });
    await log.start(test.ctx);
    const next = await log.record({ op: 'system.start', principal: { kind: 'system', id: 'test' }, trace: 'restart', outcome: 'done' });
    await log.stop();
    const after = await verifyAuditDir(dir);
    t.match(after, { ok: true, complete: true, first_seq: 1, last_seq: next.seq }, 'the chain verifies after the restart');
    const kept = new Set((await queryAuditDir(dir, { limit: Number.MAX_SAFE_INTEGER })).map((r) => r.seq));
    const lost = acked.filter((seq) => !kept.has(seq));
    t.same(lost, [], 'no acknowledged record is missing');
    t.ok(next.seq > acked.at(-1)!, 'the restarted log continues after the last acknowledged record');
  });
}
