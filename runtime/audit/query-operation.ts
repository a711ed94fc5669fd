/**
 * `audit.query`: the audit log for the web app's audit view and a device page's recent entries. Reads the
 * files like `clawbox audit query`; `text` narrows the matches further by a case-insensitive substring of
 * the operation, principal, device, outcome or error code.
 */
import { ClawboxError } from '../errors.js';
import { defineOperation } from '../operations/operation.js';
import { auditDir } from './files.js';
import { queryAuditDir } from './read.js';
import type { AuditRecord } from './record.js';

const MAX_LIMIT = 500;
const short = { type: 'string', minLength: 1, maxLength: 128 } as const;

export interface AuditQueryInput {
  device?: string;
  op?: string;
  principal?: string;
  /** ISO 8601 time. */
  since?: string;
  text?: string;
  limit?: number;
}

function searchable(record: AuditRecord): string {
  const r = record as unknown as Record<string, unknown>;
  return JSON.stringify([r.op, r.principal, r.device, r.outcome, r.decision]).toLowerCase();
}

export function auditQueryOperation(stateDir: string) {
  return defineOperation<AuditQueryInput, { records: AuditRecord[] }>({
    name: 'audit.query',
    summary: 'the newest audit records that match, oldest first',
    input: {
      type: 'object',
      additionalProperties: false,
      properties: {
        device: short,
        op: short,
        principal: short,
        since: { type: 'string', minLength: 1, maxLength: 40, description: 'ISO 8601 time' },
        text: { type: 'string', maxLength: 128 },
        limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT },
      },
    },
    permission: () => 'bridge/request/audit',
    changesWorld: false,
    deadlineMs: 10_000,
    handler: async (input) => {
      const limit = input.limit ?? 100;
      if (input.since !== undefined && Number.isNaN(Date.parse(input.since))) throw new ClawboxError('PAYLOAD_INVALID', 'since: an ISO 8601 time, e.g. 2026-12-01T10:00:00Z');
      const text = input.text?.trim().toLowerCase();
      const records = await queryAuditDir(auditDir(stateDir), {
        ...(input.device ? { device: input.device } : {}),
        ...(input.op ? { op: input.op } : {}),
        ...(input.principal ? { principal: input.principal } : {}),
        ...(input.since ? { since: new Date(input.since) } : {}),
        // With a text filter, read further back so the text still finds up to `limit` matches.
        limit: text ? MAX_LIMIT * 4 : limit,
      });
      const found = text ? records.filter((r) => searchable(r).includes(text)) : records;
      return { records: found.slice(-limit) };
    },
  });
}
