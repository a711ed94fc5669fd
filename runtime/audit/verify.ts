/**
 * Verification of the whole log. Every line must be a record or anchor whose hash matches its canonical
 * content (else it was edited), whose `prev` is the hash of the line before it and whose `seq` follows
 * (else lines were removed, inserted or reordered). A file's first line is its anchor and links to the
 * previous file's last line; a missing number in the file sequence is a removed file, unless it lies
 * below the oldest file the newest anchor says retention keeps (those were deleted by retention, and the
 * first file after them starts the chain). A line without its newline at the end is a torn write: it fails
 * verification until the runtime's next start cuts it off (writer.ts); so does a line of NUL bytes in the
 * newest file, what a power failure leaves of a write that was never synced.
 *
 * What the chain alone cannot show is records cut from the very end: compare `head` (the last hash) with
 * a copy kept elsewhere for that.
 */
import { type AuditFile, auditFileName, listAuditFiles, parseLine, readLines } from './files.js';
import { type AuditLine, hashLine, isAnchor, isAuditLine } from './record.js';

export interface VerifyProblem {
  file: string;
  /** 1-based line number. */
  line: number;
  reason: string;
}

export interface VerifyResult {
  /** No problem found in what was read. */
  ok: boolean;
  /** False when the deadline stopped it before the end. */
  complete: boolean;
  files: number;
  records: number;
  first_seq: number | null;
  last_seq: number | null;
  /** Hash of the last line read. */
  head: string | null;
  problem?: VerifyProblem;
}

export interface VerifyOptions {
  /** Stop (complete: false) once Date.now() passes this (checked between files and every few lines). */
  deadline?: number;
  /** Stop (complete: false) when aborted. */
  signal?: AbortSignal;
  /** Read only up to this file and, in it, these bytes: what was durable when a running log started verifying. */
  upTo?: { file: number; bytes: number };
}

const YIELD_EVERY = 1000;
const TORN_FIXED = 'the runtime cuts it off at its next start';

function describeBreak(line: AuditLine, last: AuditLine, lineNo: number): string {
  const expected = isAnchor(line) ? last.seq : last.seq + 1;
  if (line.seq > expected) return `expected seq ${expected}, found ${line.seq}: records before this line were removed or moved`;
  if (line.seq < expected) return `expected seq ${expected}, found ${line.seq}: a record was inserted, repeated or moved here`;
  return `prev is not the hash of line ${lineNo - 1}: a record was replaced or inserted`;
}

function stopped(options: VerifyOptions): boolean {
  return options.signal?.aborted === true || (options.deadline !== undefined && Date.now() > options.deadline);
}

async function firstLine(file: AuditFile): Promise<AuditLine | null> {
  const { lines } = await readLines(file.path);
  const parsed = lines.length > 0 ? parseLine(lines[0]!) : null;
  return isAuditLine(parsed) && hashLine(parsed) === parsed.hash ? parsed : null;
}

export async function verifyAuditDir(dir: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const upTo = options.upTo;
  const files = (await listAuditFiles(dir)).filter((f) => upTo === undefined || f.index <= upTo.file);
  const result: VerifyResult = { ok: true, complete: true, files: 0, records: 0, first_seq: null, last_seq: null, head: null };
  const fail = (file: AuditFile, line: number, reason: string): VerifyResult => ({ ...result, ok: false, problem: { file: file.name, line, reason } });
  const newest = files.at(-1);
  if (!newest) return result;
  const newestAnchor = await firstLine(newest);
  const kept = newestAnchor && isAnchor(newestAnchor) ? newestAnchor.oldest : Number.NEGATIVE_INFINITY;

  let last: AuditLine | null = null;
  let lastFile: AuditFile | null = null;
  let sinceYield = 0;
  for (const file of files) {
    if (stopped(options)) return { ...result, complete: false };
    const { lines, torn } = await readLines(file.path, upTo?.file === file.index ? upTo.bytes : undefined);
    result.files++;
    if (lines.length === 0 && torn.length === 0) return fail(file, 1, 'empty file: its anchor is missing');
    for (let i = 0; i < lines.length; i++) {
      const lineNo = i + 1;
      if (++sinceYield >= YIELD_EVERY) {
        sinceYield = 0;
        await new Promise((resolve) => setImmediate(resolve));
        if (stopped(options)) return { ...result, complete: false };
      }
      if (file === newest && lines[i]!.includes('\0')) return fail(file, lineNo, `torn write: NUL bytes from a write lost in a crash (${TORN_FIXED})`);
      const line = parseLine(lines[i]!);
      if (!isAuditLine(line)) return fail(file, lineNo, 'not an audit record (not JSON, or fields missing)');
      if (hashLine(line) !== line.hash) return fail(file, lineNo, 'edited: the hash does not match the content');
      if (i === 0) {
        if (!isAnchor(line)) return fail(file, lineNo, 'the first line of a file must be its anchor');
        if (line.file !== file.index) return fail(file, lineNo, `the anchor belongs to ${auditFileName(line.file)}: a file was renamed`);
        const gapFrom = lastFile ? lastFile.index + 1 : Number.NEGATIVE_INFINITY;
        // Files missing at or above the retention horizon were removed by someone else.
        const firstMissing = Math.max(gapFrom, kept);
        if (firstMissing < file.index) {
          return fail(file, lineNo, `${auditFileName(firstMissing)} is missing (retention keeps files from ${auditFileName(kept)}): a file was removed`);
        }
        if (last && lastFile && lastFile.index === file.index - 1 && (line.prev !== last.hash || line.seq !== last.seq)) {
          return fail(file, lineNo, `the anchor does not link to the last line of ${lastFile.name} (seq ${last.seq}): a file was replaced or records cut from its end`);
        }
      } else {
        if (isAnchor(line)) return fail(file, lineNo, 'an anchor inside a file: lines were inserted');
        if (line.prev !== last!.hash || line.seq !== last!.seq + 1) return fail(file, lineNo, describeBreak(line, last!, lineNo));
        result.records++;
        result.first_seq ??= line.seq;
        result.last_seq = line.seq;
      }
      last = line;
      result.head = line.hash;
    }
    if (torn.length > 0) {
      const reason = file === newest ? `torn write: the last line is incomplete (${TORN_FIXED})` : 'the last line is incomplete';
      return fail(file, lines.length + 1, reason);
    }
    lastFile = file;
  }
  return result;
}
