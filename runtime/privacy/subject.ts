/**
 * A data subject: the person a piece of personal data is about, named the way the owner names them on the
 * command line: `<channel>:<sender>` for a chat sender (`telegram:4711`), `mqtt:<user or client id>`,
 * `http:<user>`. A principal maps onto one subject; the runtime itself (`system`) is nobody.
 *
 * `http:<name>` is both the HTTP API user and the sender of that name on the `http` chat channel: the two
 * are the same person on an appliance, and an export or erase covers both.
 */
import { ClawboxError } from '../errors.js';

export type Subject = string;

const SUBJECT = /^[a-z][a-z0-9_-]{0,31}:[^\s\p{Cc}]{1,256}$/u;

/** The subject as given by the owner, checked; PAYLOAD_INVALID when it is not `<kind>:<id>`. */
export function parseSubject(text: unknown): Subject {
  if (typeof text !== 'string' || !SUBJECT.test(text)) {
    throw new ClawboxError('PAYLOAD_INVALID', 'a subject is "<channel>:<sender>", "mqtt:<user>" or "http:<user>" (no spaces, at most 256 characters after the colon)');
  }
  return text;
}

/** The subject a principal's data is about, or null for the runtime itself. */
export function subjectOfPrincipal(principal: { kind: string; id: string }): Subject | null {
  if (principal.kind === 'system') return null;
  // Chat principals are already `<channel>:<sender>`.
  return principal.kind === 'chat' ? principal.id : `${principal.kind}:${principal.id}`;
}
