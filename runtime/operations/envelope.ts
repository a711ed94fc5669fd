/**
 * The one reply envelope of every request/response transport (MQTT bridge and agent topics, HTTP API):
 * `{"status":"ok","data":…}` or `{"status":"error","error":{"code","message",…}}`, with the caller's
 * `transaction` echoed when it sent one.
 */
import { toClientError } from '../errors.js';

export type Transaction = string | number;

export type Envelope =
  | { status: 'ok'; data: unknown; transaction?: Transaction }
  | { status: 'error'; error: { code: string; message: string } & Record<string, unknown>; transaction?: Transaction };

export function okEnvelope(data: unknown, transaction?: Transaction): Envelope {
  return transaction === undefined ? { status: 'ok', data } : { status: 'ok', data, transaction };
}

export function errorEnvelope(error: unknown, transaction?: Transaction): Envelope {
  // What a client reads: an unexpected error's own text stays in the box's log (toClientError).
  const body = toClientError(error).toJSON();
  return transaction === undefined ? { status: 'error', error: body } : { status: 'error', error: body, transaction };
}

/** A transaction is echoed only when it is a short string or a finite number. */
export function readTransaction(body: unknown): Transaction | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const tx = (body as Record<string, unknown>).transaction;
  if (typeof tx === 'string' && tx.length <= 128) return tx;
  if (typeof tx === 'number' && Number.isFinite(tx)) return tx;
  return undefined;
}
