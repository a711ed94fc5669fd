/**
 * Calls between replicas over Redis pub/sub: each replica listens on `clawbox:rpc:<id>`; a call carries
 * an id, the caller and a deadline, and the answer comes back on the caller's channel. Pub/sub delivers
 * at most once, so a call whose answer does not come by its deadline fails with DEVICE_TIMEOUT or
 * DEADLINE_EXCEEDED (as the caller chooses) — the same uncertainty as a device that does not answer.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ClawboxError, type ErrorCode, toClawboxError } from '../runtime/errors.js';
import { KEYS } from './keys.js';

interface CallMessage {
  t: 'call';
  id: string;
  from: string;
  kind: string;
  body: unknown;
  deadline: number;
}

interface ReplyMessage {
  t: 'reply';
  id: string;
  ok: boolean;
  result?: unknown;
  error?: { code: ErrorCode; message: string } & Record<string, unknown>;
}

export type RpcHandler = (body: unknown, info: { from: string; deadline: number; signal: AbortSignal }) => Promise<unknown>;

/** Calls waiting for their answer, at most (beyond: BUSY). */
const MAX_PENDING = 1024;

export class ClusterRpc {
  readonly #pending = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  readonly #handlers = new Map<string, RpcHandler>();
  readonly #running = new Set<AbortController>();

  constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly replicaId: string,
  ) {}

  async start(): Promise<void> {
    this.sub.on('message', this.#onMessage);
    await this.sub.subscribe(KEYS.rpc(this.replicaId));
  }

  stop(): void {
    this.sub.off('message', this.#onMessage);
    for (const controller of this.#running) controller.abort(new ClawboxError('BUSY', 'the replica is stopping'));
    for (const [id, call] of this.#pending) {
      clearTimeout(call.timer);
      call.reject(new ClawboxError('BUSY', 'the replica is stopping'));
      this.#pending.delete(id);
    }
  }

  handle(kind: string, handler: RpcHandler): void {
    this.#handlers.set(kind, handler);
  }

  /** `timeoutCode`: the error when no answer comes in time; `unreachableCode`: when Redis cannot take the call. */
  call(
    replica: string,
    kind: string,
    body: unknown,
    options: { timeoutMs: number; timeoutCode?: ErrorCode; unreachableCode?: ErrorCode; signal?: AbortSignal },
  ): Promise<unknown> {
    if (this.#pending.size >= MAX_PENDING) return Promise.reject(new ClawboxError('BUSY', 'too many calls to other replicas in flight', { retry_after_ms: 1000 }));
    const id = randomUUID();
    const message: CallMessage = { t: 'call', id, from: this.replicaId, kind, body, deadline: Date.now() + options.timeoutMs };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new ClawboxError(options.timeoutCode ?? 'DEADLINE_EXCEEDED', `replica ${replica} did not answer ${kind} within ${options.timeoutMs} ms`, { replica }));
      }, options.timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.pub.publish(KEYS.rpc(replica), JSON.stringify(message)).catch(() => {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new ClawboxError(options.unreachableCode ?? 'BUSY', `cannot call replica ${replica}: the cluster's Redis is unreachable`, { replica, retry_after_ms: 1000 }));
      });
    });
  }

  readonly #onMessage = (channel: string, text: string): void => {
    if (channel !== KEYS.rpc(this.replicaId)) return;
    let message: CallMessage | ReplyMessage;
    try {
      message = JSON.parse(text) as CallMessage | ReplyMessage;
    } catch {
      return;
    }
    if (message.t === 'reply') {
      const call = this.#pending.get(message.id);
      if (!call) return;
      this.#pending.delete(message.id);
      clearTimeout(call.timer);
      if (message.ok) call.resolve(message.result);
      else call.reject(new ClawboxError(message.error?.code ?? 'INTERNAL', message.error?.message ?? 'failed on another replica', { ...message.error }));
      return;
    }
    if (message.t === 'call') void this.#serve(message);
  };

  async #serve(call: CallMessage): Promise<void> {
    const handler = this.#handlers.get(call.kind);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new ClawboxError('DEADLINE_EXCEEDED', 'the caller gave up')), Math.max(0, call.deadline - Date.now()));
    this.#running.add(controller);
    let reply: ReplyMessage;
    try {
      if (!handler) throw new ClawboxError('REQUEST_UNKNOWN', `no cluster call ${String(call.kind).slice(0, 64)}`);
      const result = await handler(call.body, { from: call.from, deadline: call.deadline, signal: controller.signal });
      reply = { t: 'reply', id: call.id, ok: true, result };
    } catch (error) {
      reply = { t: 'reply', id: call.id, ok: false, error: toClawboxError(error).toJSON() };
    } finally {
      clearTimeout(timer);
      this.#running.delete(controller);
    }
    await this.pub.publish(KEYS.rpc(call.from), JSON.stringify(reply)).catch(() => {});
  }
}
