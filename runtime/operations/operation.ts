/**
 * An operation: one thing a client can ask for, declared once. Transports (MQTT, HTTP, chat) only turn
 * their messages into (name, input, caller) and the result back into their own replies.
 */
import type { AuditEntry } from '../audit/index.js';
import type { Principal } from './principal.js';
import type { JsonSchema } from './validator.js';

/** Receives pieces of a streamed answer, in order. */
export type TextSink = (text: string) => void;

export interface OperationContext {
  readonly principal: Principal;
  /** Where the request came in: `mqtt`, `tasmota`, `http`, `chat:<channel>`, `system`. */
  readonly source: string;
  /** Epoch milliseconds by which the caller expects its answer. */
  readonly deadline: number;
  /** Aborted at the deadline or when the caller goes away. Work not yet started must not start then. */
  readonly signal: AbortSignal;
  readonly trace: string;
  /** Transport metadata an operation may read (e.g. MQTT 5 user properties); never credentials. */
  readonly meta: Readonly<Record<string, string>>;
  /**
   * Where text of a streamed answer goes as it is generated (chat tokens), when the caller streams; the
   * operation's result is still the whole answer.
   */
  readonly stream?: TextSink;
  /**
   * Runs another operation as the same caller, with the same deadline, signal and trace; its streamed text
   * goes to `options.stream` (default: this call's own stream).
   */
  invoke<O = unknown>(name: string, input: unknown, options?: { stream?: TextSink | undefined }): Promise<O>;
  /** Appends to the audit log with this call's principal and trace filled in; resolves once durable. */
  audit(entry: Omit<AuditEntry, 'principal' | 'trace'>): Promise<void>;
}

export interface Operation<I = unknown, O = unknown> {
  readonly name: string;
  readonly summary: string;
  readonly input: JsonSchema;
  readonly output?: JsonSchema;
  /**
   * What the caller needs, as topic paths relative to the base topic (see principal.ts). Called with
   * the validated input, so a device command needs `<device>/set` for that device.
   */
  permission(input: I): string | readonly string[];
  /** World-changing operations are audited with their outcome by the front door. */
  readonly changesWorld: boolean;
  /** The deadline when the caller names none, and the longest one it may ask for. */
  readonly deadlineMs: number;
  /** The device an audit record names, if any. */
  device?(input: I): string | undefined;
  handler(input: I, ctx: OperationContext): Promise<O>;
}

/** Any declared operation, for lists of differently typed ones (the front door validates inputs). */
// biome-ignore lint/suspicious/noExplicitAny: input types differ per operation; each handler gets its validated input
export type AnyOperation = Operation<any, unknown>;

/** Identity function that keeps the input and output types of a declaration. */
export function defineOperation<I, O>(operation: Operation<I, O>): Operation<I, O> {
  return operation;
}
