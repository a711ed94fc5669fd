/**
 * What one line of the audit log holds. A file starts with an anchor line, then records; every line
 * carries `prev`, the hash of the line before it (across files too), and `hash`, the sha256 of its own
 * canonical JSON without `hash` (canonical.ts). The file format is described in README.md.
 */
import { ClawboxError } from '../errors.js';
import { isoTimestamp } from '../system/timestamps.js';
import { type JsonValue, canonicalJson, digest, sha256Hex, toJsonValue } from './canonical.js';

export const PRINCIPAL_KINDS = ['mqtt', 'http', 'chat', 'system'] as const;
export const DECISIONS = ['allowed', 'forbidden', 'confirm', 'denied', 'rejected'] as const;
export const OUTCOMES = ['done', 'not_run', 'failed', 'pending'] as const;

export type PrincipalKind = (typeof PRINCIPAL_KINDS)[number];
export type AuditDecision = (typeof DECISIONS)[number];
export type AuditOutcome = (typeof OUTCOMES)[number];

/** One world-changing operation or agent decision, as a caller reports it. */
export interface AuditEntry {
  op: string;
  principal: { kind: PrincipalKind; id: string };
  trace: string;
  /** digest(input): never the raw input. */
  input_digest?: string;
  device?: string;
  decision?: AuditDecision;
  /** What the model proposed. */
  proposed?: unknown;
  /** The fast-path rule that decided instead of the model. */
  rule?: string;
  outcome: AuditOutcome;
  /** The device's acknowledgement. */
  ack?: unknown;
  error?: { code: string; message: string };
}

export interface AuditRecord extends AuditEntry {
  seq: number;
  /** ISO 8601, UTC, when record() was called. */
  time: string;
  prev: string;
  hash: string;
}

/**
 * First line of every file. `seq` and `prev` repeat the last seq and hash before this file, so the chain
 * runs through the anchor; `oldest` is the oldest file retention keeps once this file exists, so a file
 * removed from under it is found even when it was the oldest one.
 */
export interface AuditAnchor {
  kind: 'anchor';
  seq: number;
  time: string;
  file: number;
  oldest: number;
  prev: string;
  hash: string;
}

export type AuditLine = AuditRecord | AuditAnchor;

/** `prev` of the very first anchor. */
export const GENESIS = '0'.repeat(64);

/** `proposed` and `ack` larger than this (as JSON) are kept as their digest. */
export const MAX_FIELD_BYTES = 16 * 1024;
const MAX_TEXT = 1024;

export function isAnchor(line: AuditLine): line is AuditAnchor {
  return (line as AuditAnchor).kind === 'anchor';
}

export function hashLine(line: Omit<AuditLine, 'hash'> | AuditLine): string {
  const { hash: _hash, ...rest } = line as AuditLine;
  return sha256Hex(canonicalJson(rest));
}

/** A record body: the entry as it will be stored, without seq, prev and hash. */
export type RecordBody = Omit<AuditRecord, 'seq' | 'prev' | 'hash'>;

function text(value: unknown, field: string, max = MAX_TEXT): string {
  if (typeof value !== 'string') throw new ClawboxError('PAYLOAD_INVALID', `audit entry: ${field} must be a string`);
  return value.length > max ? `${value.slice(0, max)}…` : value;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], field: string): T {
  if (!allowed.includes(value as T)) throw new ClawboxError('PAYLOAD_INVALID', `audit entry: ${field} must be one of ${allowed.join(', ')}`);
  return value as T;
}

// A free-form field is stored as JSON, or as its digest when too large or not JSON, so one odd value
// never costs the record.
function free(value: unknown): JsonValue {
  let json: JsonValue;
  try {
    json = toJsonValue(value);
  } catch (error) {
    return { omitted: 'not JSON', reason: error instanceof Error ? error.message : String(error) };
  }
  const bytes = Buffer.byteLength(JSON.stringify(json));
  return bytes > MAX_FIELD_BYTES ? { omitted: 'too large', bytes, digest: digest(json) } : json;
}

/**
 * Checks an entry and copies it (only the known fields, in line order), so the caller may reuse its objects
 * and nothing else reaches the log. Throws PAYLOAD_INVALID for a malformed entry.
 */
export function toBody(entry: AuditEntry, now: Date): RecordBody {
  const e = entry as Partial<AuditEntry> | null;
  if (typeof e !== 'object' || e === null) throw new ClawboxError('PAYLOAD_INVALID', 'audit entry must be an object');
  const op = text(e.op, 'op', 128);
  if (op.length === 0) throw new ClawboxError('PAYLOAD_INVALID', 'audit entry: op is empty');
  const principal = e.principal as Partial<AuditEntry['principal']> | undefined;
  if (typeof principal !== 'object' || principal === null) throw new ClawboxError('PAYLOAD_INVALID', 'audit entry: principal must be an object');
  const error = e.error as Partial<NonNullable<AuditEntry['error']>> | undefined;
  if (error !== undefined && (typeof error !== 'object' || error === null)) throw new ClawboxError('PAYLOAD_INVALID', 'audit entry: error must be an object');
  return {
    time: isoTimestamp(now.getTime()),
    op,
    principal: { kind: oneOf(principal.kind, PRINCIPAL_KINDS, 'principal.kind'), id: text(principal.id, 'principal.id', 256) },
    trace: text(e.trace, 'trace', 256),
    ...(e.device !== undefined ? { device: text(e.device, 'device', 256) } : {}),
    ...(e.input_digest !== undefined ? { input_digest: text(e.input_digest, 'input_digest', 256) } : {}),
    ...(e.rule !== undefined ? { rule: text(e.rule, 'rule', 256) } : {}),
    ...(e.decision !== undefined ? { decision: oneOf(e.decision, DECISIONS, 'decision') } : {}),
    ...(e.proposed !== undefined ? { proposed: free(e.proposed) } : {}),
    outcome: oneOf(e.outcome, OUTCOMES, 'outcome'),
    ...(e.ack !== undefined ? { ack: free(e.ack) } : {}),
    ...(error !== undefined ? { error: { code: text(error.code, 'error.code', 64), message: text(error.message, 'error.message') } } : {}),
  };
}

/** The stored record: seq first, prev and hash last, for people reading the file. */
export function sealRecord(body: RecordBody, seq: number, prev: string): AuditRecord {
  const { time, ...rest } = body;
  const unsealed = { seq, time, ...rest, prev };
  return { ...unsealed, hash: hashLine(unsealed) };
}

export function sealAnchor(fields: Omit<AuditAnchor, 'kind' | 'hash'>): AuditAnchor {
  const unsealed = { kind: 'anchor' as const, ...fields };
  return { ...unsealed, hash: hashLine(unsealed) };
}

/** Shape check of a parsed line (the hash is checked separately). */
export function isAuditLine(value: unknown): value is AuditLine {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  const base = Number.isSafeInteger(v.seq) && typeof v.time === 'string' && typeof v.prev === 'string' && typeof v.hash === 'string';
  if (!base) return false;
  if (v.kind === 'anchor') return Number.isSafeInteger(v.file) && Number.isSafeInteger(v.oldest);
  return v.kind === undefined && typeof v.op === 'string' && typeof v.principal === 'object' && v.principal !== null && typeof v.outcome === 'string';
}
