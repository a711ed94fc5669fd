/**
 * The front door: every client action passes here. It looks the operation up, refuses retained requests,
 * validates the input, checks the caller's permission, gives the handler a deadline, an AbortSignal and
 * a trace id, and audits world-changing operations. It never answers for a handler: a handler that
 * started a device action reports what the device did, even past the deadline, so a caller is never told
 * "failed" about something that ran.
 */
import { randomUUID } from 'node:crypto';
import { type AuditEntry, digest } from '../audit/index.js';
import { ClawboxError, toClawboxError, toClientError } from '../errors.js';
import type { Logger } from '../logging.js';
import type { Operation, OperationContext, TextSink } from './operation.js';
import { type Principal, describePrincipal } from './principal.js';
import { assertValid, expectSchema } from './validator.js';

export interface AuditSink {
  record(entry: AuditEntry): Promise<unknown>;
}

export interface Call {
  principal: Principal;
  source: string;
  /** Shorter than the operation's own deadline only; longer asks are cut to it. */
  deadlineMs?: number;
  /** The caller's own cancellation (a closed HTTP request, a stopping channel). */
  signal?: AbortSignal;
  trace?: string;
  /** True when the transport delivered the request as a retained message: it is never executed. */
  retained?: boolean;
  meta?: Readonly<Record<string, string>>;
  /** Set by ctx.invoke: the deadline of the call this one runs inside. */
  parentDeadline?: number;
  /** The caller streams: pieces of the answer go here as they are generated (see OperationContext.stream). */
  stream?: TextSink;
}

export interface FrontDoorOptions {
  logger: Logger;
  /** Where audit records go; none in tests that do not look at them. */
  audit?: AuditSink | null;
}

export class FrontDoor {
  readonly #operations = new Map<string, Operation<never, unknown>>();
  readonly #logger: Logger;
  #audit: AuditSink | null;
  /** Topics whose retained requests were already logged: said once, not at every replay. */
  readonly #retainedLogged = new Set<string>();

  constructor(options: FrontDoorOptions) {
    this.#logger = options.logger;
    this.#audit = options.audit ?? null;
  }

  set auditSink(sink: AuditSink | null) {
    this.#audit = sink;
  }

  register<I, O>(operation: Operation<I, O>): () => void {
    if (this.#operations.has(operation.name)) throw new Error(`operation "${operation.name}" is registered twice`);
    this.#operations.set(operation.name, operation as unknown as Operation<never, unknown>);
    // Checked on its first call; the build precompiles it (validator.ts).
    expectSchema(operation.input);
    return () => {
      if (this.#operations.get(operation.name) === (operation as unknown)) this.#operations.delete(operation.name);
    };
  }

  has(name: string): boolean {
    return this.#operations.has(name);
  }

  list(): Array<{ name: string; summary: string; changesWorld: boolean }> {
    return [...this.#operations.values()].map((op) => ({ name: op.name, summary: op.summary, changesWorld: op.changesWorld }));
  }

  /** Runs an operation as `call.principal`; resolves with its output or rejects with a ClawboxError. */
  async invoke<O = unknown>(name: string, input: unknown, call: Call): Promise<O> {
    if (call.retained) {
      const key = `${call.source}:${name}`;
      if (!this.#retainedLogged.has(key) && this.#retainedLogged.size < 1024) {
        this.#retainedLogged.add(key);
        this.#logger.warn({ operation: name, source: call.source }, `ignored a retained ${name} request: a retained request is never executed`);
      }
      throw new ClawboxError('PAYLOAD_INVALID', 'retained requests are never executed; publish without the retain flag');
    }
    const operation = this.#operations.get(name) as Operation<unknown, O> | undefined;
    if (!operation) throw new ClawboxError('REQUEST_UNKNOWN', `no operation "${name.slice(0, 64)}"`);
    const valid = assertValid<unknown>(operation.input, input);
    const trace = call.trace ?? randomUUID();
    const needed = operation.permission(valid);
    const missing = (typeof needed === 'string' ? [needed] : needed).find((permission) => !call.principal.may(permission));
    if (missing !== undefined) {
      const error = new ClawboxError('FORBIDDEN', `${call.principal.kind} caller "${call.principal.id}" may not do ${name} (needs ${missing})`, {
        ...(operation.device?.(valid) ? { device: operation.device(valid) } : {}),
      });
      if (operation.changesWorld) await this.#record(operation, valid, call, trace, { decision: 'forbidden', outcome: 'not_run', error });
      throw error;
    }

    const now = Date.now();
    const asked = Math.min(call.deadlineMs ?? operation.deadlineMs, operation.deadlineMs);
    const deadline = Math.min(now + Math.max(0, asked), call.parentDeadline ?? Number.POSITIVE_INFINITY);
    const controller = new AbortController();
    const onCallerAbort = () => controller.abort(call.signal?.reason ?? new ClawboxError('DEADLINE_EXCEEDED', 'the caller went away'));
    if (call.signal?.aborted) onCallerAbort();
    else call.signal?.addEventListener('abort', onCallerAbort, { once: true });
    const timer = setTimeout(
      () => controller.abort(new ClawboxError('DEADLINE_EXCEEDED', `${name} did not finish within ${asked} ms`)),
      Math.max(0, deadline - now),
    );

    const ctx: OperationContext = {
      principal: call.principal,
      source: call.source,
      deadline,
      signal: controller.signal,
      trace,
      meta: call.meta ?? {},
      ...(call.stream ? { stream: call.stream } : {}),
      invoke: (inner, innerInput, options) => {
        const stream = options && 'stream' in options ? options.stream : call.stream;
        return this.invoke(inner, innerInput, {
          principal: call.principal,
          source: call.source,
          trace,
          signal: controller.signal,
          parentDeadline: deadline,
          deadlineMs: Math.max(0, deadline - Date.now()),
          ...(call.meta ? { meta: call.meta } : {}),
          ...(stream ? { stream } : {}),
        });
      },
      audit: async (entry) => {
        await this.#audit?.record({ ...entry, principal: describePrincipal(call.principal), trace });
      },
    };
    try {
      const output = await operation.handler(valid, ctx);
      if (operation.changesWorld) await this.#record(operation, valid, call, trace, { decision: 'allowed', outcome: 'done', ack: output });
      return output;
    } catch (error) {
      const err = toClawboxError(error);
      // A handler that did not start its action says so with DEADLINE_EXCEEDED/BUSY or a validation code;
      // anything else may have reached the device.
      if (operation.changesWorld) await this.#record(operation, valid, call, trace, { decision: 'allowed', outcome: notRun(err) ? 'not_run' : 'failed', error: err });
      if (err.code !== 'INTERNAL') throw err;
      // What nobody expected is logged here, whole; the caller gets a message that names the trace.
      this.#logger.error({ err: error, operation: operation.name, trace }, `${operation.name} failed unexpectedly`);
      throw toClientError(err, trace);
    } finally {
      clearTimeout(timer);
      call.signal?.removeEventListener('abort', onCallerAbort);
    }
  }

  async #record(
    operation: Operation<unknown, unknown>,
    input: unknown,
    call: Call,
    trace: string,
    result: { decision: 'allowed' | 'forbidden'; outcome: 'done' | 'not_run' | 'failed'; ack?: unknown; error?: ClawboxError },
  ): Promise<void> {
    if (!this.#audit) return;
    const device = operation.device?.(input);
    try {
      await this.#audit.record({
        op: operation.name,
        principal: describePrincipal(call.principal),
        trace,
        input_digest: digest(input),
        ...(device ? { device } : {}),
        decision: result.decision,
        outcome: result.outcome,
        ...(result.ack !== undefined ? { ack: result.ack } : {}),
        ...(result.error ? { error: { code: result.error.code, message: result.error.message } } : {}),
      });
    } catch (error) {
      // The action already happened (or was refused); losing its record is logged loudly, not hidden.
      this.#logger.error({ err: error, operation: operation.name, trace }, 'could not write the audit record');
    }
  }
}

const NOT_RUN_CODES = new Set([
  'DEADLINE_EXCEEDED',
  'BUSY',
  'FORBIDDEN',
  'PAYLOAD_INVALID',
  'PAYLOAD_TOO_LARGE',
  'COMMAND_INVALID',
  'PROPERTY_UNKNOWN',
  'PROPERTY_READ_ONLY',
  'VALUE_OUT_OF_RANGE',
  'VALUE_WRONG_TYPE',
  'DEVICE_NOT_FOUND',
  'DEVICE_UNAVAILABLE',
  'DEVICE_EXISTS',
  'REQUEST_UNKNOWN',
  'LIMIT_REACHED',
]);

function notRun(error: ClawboxError): boolean {
  return NOT_RUN_CODES.has(error.code) || error.details.not_run === true;
}
