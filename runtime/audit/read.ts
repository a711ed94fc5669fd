/**
 * Reading the log for people: the last records, or those matching a filter. Newest files are read first
 * and reading stops once enough records are found. Lines that do not parse are skipped here; verify is
 * what reports them.
 */
import { listAuditFiles, parseLine, readLines } from './files.js';
import { type AuditRecord, isAnchor, isAuditLine } from './record.js';

export interface AuditQuery {
  device?: string;
  /** "kind:id", or just an id or a kind. */
  principal?: string;
  /** Only records at or after this time. */
  since?: Date;
  op?: string;
  /** Newest matches kept, at most (default 100). */
  limit?: number;
}

export const DEFAULT_QUERY_LIMIT = 100;

function principalMatches(record: AuditRecord, wanted: string): boolean {
  const { kind, id } = record.principal;
  return wanted === `${kind}:${id}` || wanted === id || wanted === kind;
}

function matches(record: AuditRecord, query: AuditQuery): boolean {
  if (query.device !== undefined && record.device !== query.device) return false;
  if (query.op !== undefined && record.op !== query.op) return false;
  if (query.principal !== undefined && !principalMatches(record, query.principal)) return false;
  if (query.since !== undefined && !(Date.parse(record.time) >= query.since.getTime())) return false;
  return true;
}

/**
 * The newest `limit` records that match, oldest first. With `shownId`, stored principal ids (pseudonyms)
 * are replaced by what it shows before matching.
 */
export async function queryAuditDir(dir: string, query: AuditQuery = {}, shownId?: (principal: { kind: string; id: string }) => string): Promise<AuditRecord[]> {
  const limit = query.limit ?? DEFAULT_QUERY_LIMIT;
  const found: AuditRecord[] = [];
  if (limit <= 0) return found;
  const files = await listAuditFiles(dir);
  for (let f = files.length - 1; f >= 0; f--) {
    const { lines } = await readLines(files[f]!.path);
    for (let i = lines.length - 1; i >= 0; i--) {
      const parsed = parseLine(lines[i]!);
      if (!isAuditLine(parsed) || isAnchor(parsed)) continue;
      const line = shownId ? { ...parsed, principal: { ...parsed.principal, id: shownId(parsed.principal) } } : parsed;
      if (!matches(line, query)) continue;
      found.push(line);
      if (found.length >= limit) return found.reverse();
    }
  }
  return found.reverse();
}

/** The last `n` records, oldest first. */
export function tailAuditDir(dir: string, n: number, shownId?: (principal: { kind: string; id: string }) => string): Promise<AuditRecord[]> {
  return queryAuditDir(dir, { limit: n }, shownId);
}
