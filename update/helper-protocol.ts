/**
 * What the runtime and the update helper say to each other over the helper's unix socket: one JSON
 * request line per connection, then progress lines and one final line (a result or a coded error).
 * Closing the connection cancels what the request started.
 */
import { ERROR_CATALOG, type ErrorCode } from '../runtime/errors.js';
import type { JsonSchema } from '../runtime/operations/validator.js';

export type HelperRequest = { op: 'status' } | { op: 'check'; allow_downgrade?: boolean } | { op: 'apply'; allow_downgrade?: boolean } | { op: 'reboot' };

export const HELPER_REQUEST_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['op'],
  properties: { op: { enum: ['status', 'check', 'apply', 'reboot'] }, allow_downgrade: { type: 'boolean' } },
};

export interface HelperProgress {
  readonly type: 'progress';
  readonly phase: 'verifying' | 'writing';
  readonly message?: string;
  readonly written_bytes?: number;
  readonly total_bytes?: number;
}

export type HelperLine = HelperProgress | { readonly type: 'result'; readonly data: unknown } | { readonly type: 'error'; readonly code: string; readonly message: string };

/** A request is a few dozen bytes; a status answer a few KiB (20 history entries). */
export const MAX_REQUEST_LINE = 1024;
export const MAX_ANSWER_LINE = 256 * 1024;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CATALOG, code);
}

/** Splits a byte stream into lines, refusing one longer than `max` bytes. */
export function lineReader(max: number, onLine: (line: string) => void, onTooLong: () => void): (chunk: Buffer) => void {
  let pending = '';
  return (chunk) => {
    pending += chunk.toString('utf8');
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (line.length > max) return onTooLong();
      onLine(line);
      newline = pending.indexOf('\n');
    }
    if (pending.length > max) onTooLong();
  };
}
