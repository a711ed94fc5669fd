/**
 * `clawbox audit verify | tail | query`: reads the audit files under the state directory directly, so it
 * works whether or not the runtime is running. runtime/cli.ts forwards the arguments after `audit` with
 * the resolved state directory. Exit codes: 0 ok, 1 verification failed, 64 bad arguments (thrown as USAGE).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { positiveIntegerOption } from '../cli-options.js';
import { ClawboxError, toClawboxError } from '../errors.js';
import { auditDir } from './files.js';
import { type AuditQuery, queryAuditDir, tailAuditDir } from './read.js';
import type { AuditRecord } from './record.js';
import { verifyAuditDir } from './verify.js';

export const AUDIT_HELP = `Usage:
  clawbox audit verify [--json]           check the whole chain; on failure print the first bad file:line and why
  clawbox audit tail [-n N] [--json]      the last N records (default 20)
  clawbox audit query [--device D] [--principal P] [--since WHEN] [--op OP] [--limit N] [--json]
                                          the newest matching records (default 100), oldest first
Options: --state-dir DIR (default: the runtime's state directory). P: kind:id, an id or a kind
(mqtt, http, chat, system). WHEN: an ISO 8601 time, or a duration back from now (30s, 15m, 1h, 7d).
--json prints one JSON object per line (verify: one object).
Exit codes: 0 ok, 1 verification failed, 64 bad arguments.
`;

export interface AuditCliIo {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  /** The state directory the runtime would use; --state-dir overrides it. */
  stateDir?: string;
  now?: () => Date;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseSince(value: string, now: Date): Date {
  const duration = /^(\d+)([smhd])$/.exec(value);
  if (duration) return new Date(now.getTime() - Number(duration[1]) * UNITS[duration[2]!]!);
  const time = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(time)) throw new ClawboxError('USAGE', `--since must be an ISO 8601 time or a duration like 1h (got "${value}")`);
  return new Date(time);
}

function count(value: string | undefined, option: string, fallback: number): number {
  return positiveIntegerOption(value, option) ?? fallback;
}

export function formatRecord(r: AuditRecord): string {
  const what = [r.op, r.device, r.decision, r.rule ? `rule ${r.rule}` : undefined, `→ ${r.outcome}`].filter(Boolean).join(' ');
  const error = r.error ? `  ${r.error.code}: ${r.error.message}` : '';
  return `${r.time}  #${r.seq}  ${r.principal.kind}:${r.principal.id}  ${what}${error}  trace ${r.trace}\n`;
}

function parse(args: readonly string[]) {
  try {
    return parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        'state-dir': { type: 'string' },
        json: { type: 'boolean', default: false },
        lines: { type: 'string', short: 'n' },
        device: { type: 'string' },
        principal: { type: 'string' },
        since: { type: 'string' },
        op: { type: 'string' },
        limit: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw toClawboxError(error);
  }
}

export async function runAuditCommand(args: readonly string[], io: AuditCliIo = {}): Promise<number> {
  const out = io.stdout ?? ((text: string) => void process.stdout.write(text));
  const { values, positionals } = parse(args);
  const [command, ...rest] = positionals;
  if (values.help || command === 'help') {
    out(AUDIT_HELP);
    return 0;
  }
  if (command === undefined) throw new ClawboxError('USAGE', `audit needs a command: verify, tail or query\n${AUDIT_HELP}`);
  if (rest.length > 0) throw new ClawboxError('USAGE', `unexpected arguments: ${rest.join(' ')}`);
  const only = (allowed: string[]) => {
    const extra = ['lines', 'device', 'principal', 'since', 'op', 'limit'].filter((k) => !allowed.includes(k) && values[k as keyof typeof values] !== undefined);
    if (extra.length > 0) throw new ClawboxError('USAGE', `"audit ${command}" does not take --${extra[0] === 'lines' ? 'lines/-n' : extra[0]}`);
  };
  const stateDir = values['state-dir'] ?? io.stateDir;
  if (!stateDir) throw new ClawboxError('USAGE', 'no state directory: pass --state-dir DIR');
  const dir = auditDir(path.resolve(stateDir));
  const print = (records: AuditRecord[]) => {
    if (values.json) out(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    else if (records.length === 0) out('no matching audit records\n');
    else out(records.map(formatRecord).join(''));
    return 0;
  };
  switch (command) {
    case 'verify': {
      only([]);
      const result = await verifyAuditDir(dir);
      if (values.json) out(`${JSON.stringify({ dir, ...result })}\n`);
      else if (result.problem) out(`audit FAILED: ${path.join(dir, result.problem.file)}:${result.problem.line}: ${result.problem.reason}\n`);
      else if (result.files === 0) out(`audit ok: no audit files in ${dir}\n`);
      else out(`audit ok: ${result.records} records in ${result.files} files (seq ${result.first_seq ?? '-'}..${result.last_seq ?? '-'}), head ${result.head}\n`);
      return result.ok ? 0 : 1;
    }
    case 'tail':
      only(['lines']);
      return print(await tailAuditDir(dir, count(values.lines, '-n', 20)));
    case 'query': {
      only(['device', 'principal', 'since', 'op', 'limit']);
      const query: AuditQuery = { limit: count(values.limit, '--limit', 100) };
      if (values.device !== undefined) query.device = values.device;
      if (values.principal !== undefined) query.principal = values.principal;
      if (values.op !== undefined) query.op = values.op;
      if (values.since !== undefined) query.since = parseSince(values.since, io.now?.() ?? new Date());
      return print(await queryAuditDir(dir, query));
    }
    default:
      throw new ClawboxError('USAGE', `unknown audit command "${command}" (try: verify, tail, query)`);
  }
}
