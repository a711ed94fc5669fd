/**
 * Test-only child process for crash.test.ts: appends audit records under the state dir given as argv[2]
 * (small files, so it rotates), in waves of concurrent calls, and prints `ack <seq>` for each record
 * once record() has resolved, until it is killed.
 */
import { AuditLog } from '../log.js';
import { auditTestContext } from './context.js';

const stateDir = process.argv[2];
if (!stateDir) throw new Error('usage: append-child.ts STATE_DIR');
const { ctx } = auditTestContext(stateDir);
const log = new AuditLog({ config: { verify_at_start_ms: 0, rotate_bytes: 8192, retain_files: 0 } });
await log.start(ctx);
process.stdout.write('ready\n');
for (let n = 0; ; ) {
  const wave = Array.from({ length: 1 + (n % 7) }, () => {
    n++;
    return log
      .record({ op: 'device.command', principal: { kind: 'mqtt', id: 'crash-test' }, trace: `t${n}`, device: 'lamp', outcome: 'done', ack: { n } })
      .then((record) => void process.stdout.write(`ack ${record.seq}\n`));
  });
  await Promise.all(wave);
}
