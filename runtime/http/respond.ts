/**
 * Writing responses and reading bodies: JSON answers, the one error shape, bounded JSON bodies and the
 * security headers every response carries.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ClawboxError, toClawboxError } from '../errors.js';
import { errorEnvelope } from '../operations/envelope.js';

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

/** Headers on every response; HTML responses replace the CSP with one naming their inline script/style. */
export function setSecurityHeaders(res: ServerResponse): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  // API answers are live figures: never cached by a browser or a proxy.
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

/** The one error envelope, `{"status":"error","error":{"code","message",...details}}`, with the code's HTTP status. */
export function sendError(res: ServerResponse, error: unknown): void {
  const typed = toClawboxError(error);
  if (res.headersSent) {
    // Too late for a status line (a stream was under way): cut the response so the client sees it failed.
    res.destroy(typed);
    return;
  }
  sendJson(res, typed.spec.http, errorEnvelope(typed));
}

/**
 * Reads the request body as JSON. The limit is checked against Content-Length before reading and against
 * the bytes received while reading, so a client lying about its length still cannot go past it.
 */
export async function readJsonBody(req: IncomingMessage, limitBytes = DEFAULT_BODY_LIMIT): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  const tooLarge = () =>
    new ClawboxError('PAYLOAD_TOO_LARGE', `request body is larger than ${limitBytes} bytes`, { limit_bytes: limitBytes });
  if (Number.isFinite(declared) && declared > limitBytes) {
    req.resume(); // drain what is in flight so the connection can answer
    throw tooLarge();
  }
  const body = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limitBytes) {
        chunks.push(chunk);
        return;
      }
      // Stop keeping bytes but keep draining them (destroying the request would kill the socket
      // before the 413 could be written).
      req.off('data', onData);
      req.resume();
      reject(tooLarge());
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
  const text = body.toString('utf8');
  if (text.trim() === '') throw new ClawboxError('PAYLOAD_INVALID', 'request body is empty; expected JSON');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ClawboxError('PAYLOAD_INVALID', `request body is not valid JSON: ${(error as Error).message}`);
  }
}
