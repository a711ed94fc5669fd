/**
 * Work sharing for agent requests: a request this replica cannot serve (its scheduler answers BUSY, or
 * it has no model loaded for a request the fast path does not understand) goes into a queue on Redis,
 * and a replica with capacity takes it. MQTT 5 shared subscriptions would do this inside the broker; the
 * broker speaks MQTT 3.1.1, so the queue is a Redis list.
 *
 * 1. The origin pushes `{id, origin, request, deadline}` (LPUSH; at most work_sharing.max_queue entries,
 *    else the original BUSY stands) and publishes a wake-up.
 * 2. A replica with capacity (its own admission: a model is loaded, its scheduler queue is empty, fewer
 *    than max_remote shared requests running) pops one (RPOP: exactly one replica gets it) and runs it
 *    through its own scheduler with the time left. Each action the agent proposes comes back to the
 *    origin as a call (`agent.act`), which runs it through the origin's front door as the caller
 *    (permission, safety policy, audit): the serving replica never acts on its own authority.
 * 3. The answer goes back to the origin (`agent.result`) with the serving replica's id.
 * 4. At the deadline the origin removes the entry (LREM): removed means nobody took it, and the caller
 *    gets the original BUSY; otherwise a replica took it and its answer (or its own deadline error) is
 *    what the caller gets. Nothing runs after the caller was told it did not.
 *
 * Conversation context (the agent's session: "it", "them") stays on the replica that served each turn.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ClawboxError, toClawboxError } from '../runtime/errors.js';
import type { Logger } from '../runtime/logging.js';
import { KEYS } from './keys.js';
import type { ClusterRpc } from './rpc.js';

/** The agent request as the scheduler's handler takes it (agent/operations.ts AgentOperationDeps.handle). */
export interface SharedRequest {
  text: string;
  session?: string;
  deadline_ms?: number;
  source?: string;
  signal?: AbortSignal;
  act?: (device: string, command: Record<string, never>) => Promise<unknown>;
}

export type AgentHandle<R extends SharedRequest, A> = (request: R) => Promise<A>;

interface QueueEntry {
  id: string;
  origin: string;
  request: { text: string; session?: string; source?: string };
  deadline: number;
}

interface Waiting {
  act: SharedRequest['act'];
  resolve: (answer: unknown) => void;
  reject: (error: Error) => void;
}

/** After its deadline, how long the origin waits for a replica that took the request to answer. */
const ANSWER_GRACE_MS = 2000;

export interface WorkSharingOptions {
  replicaId: string;
  db: Redis;
  sub: Redis;
  rpc: ClusterRpc;
  maxRemote: number;
  maxQueue: number;
  heartbeatMs: number;
  logger: Logger;
  /** Whether this replica may take a shared request now (its own admission, see the file comment). */
  hasCapacity: () => boolean;
  /** Whether other replicas are alive (no queueing into an empty cluster). */
  othersAlive: () => boolean;
  defaultDeadlineMs: number;
}

export class AgentWorkSharing {
  readonly #options: WorkSharingOptions;
  readonly #waiting = new Map<string, Waiting>();
  #local: AgentHandle<SharedRequest, unknown> | null = null;
  #remoteRunning = 0;
  #timer: NodeJS.Timeout | null = null;
  #pulling = false;
  #served = { local: 0, shared_out: 0, shared_in: 0 };

  constructor(options: WorkSharingOptions) {
    this.#options = options;
  }

  get remoteRunning(): number {
    return this.#remoteRunning;
  }

  get figures(): { local: number; shared_out: number; shared_in: number; waiting: number; remote_running: number } {
    return { ...this.#served, waiting: this.#waiting.size, remote_running: this.#remoteRunning };
  }

  /** The agent operation's handler, wrapped: local first, the shared queue when this replica cannot serve it. */
  wrap<R extends SharedRequest, A>(local: AgentHandle<R, A>): AgentHandle<R, A> {
    this.#local = local as unknown as AgentHandle<SharedRequest, unknown>;
    return async (request) => {
      try {
        const answer = await local(request);
        this.#served.local++;
        return answer;
      } catch (error) {
        const err = toClawboxError(error);
        if ((err.code !== 'BUSY' && err.code !== 'MODEL_NOT_LOADED') || request.signal?.aborted || !this.#options.othersAlive()) throw err;
        try {
          return (await this.#share(request, err)) as A;
        } catch (shareError) {
          // Redis unreachable: the caller gets what this replica said, not a Redis error.
          throw shareError instanceof ClawboxError ? shareError : err;
        }
      }
    };
  }

  async start(): Promise<void> {
    const { rpc, sub } = this.#options;
    rpc.handle('agent.act', async (body) => {
      const { id, device, command } = body as { id: string; device: string; command: Record<string, never> };
      const waiting = this.#waiting.get(id);
      if (!waiting?.act) throw new ClawboxError('DEADLINE_EXCEEDED', 'the request is no longer waiting for its actions', { not_run: true });
      return waiting.act(device, command);
    });
    rpc.handle('agent.result', async (body) => {
      const { id, ok, answer, error } = body as { id: string; ok: boolean; answer?: unknown; error?: { code: string; message: string } };
      const waiting = this.#waiting.get(id);
      if (!waiting) return;
      this.#waiting.delete(id);
      if (ok) waiting.resolve(answer);
      else waiting.reject(new ClawboxError((error?.code ?? 'INTERNAL') as never, error?.message ?? 'failed on another replica', { ...error }));
    });
    sub.on('message', this.#onWake);
    await sub.subscribe(KEYS.agentQueued);
    this.#timer = setInterval(() => void this.#pull(), this.#options.heartbeatMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#options.sub.off('message', this.#onWake);
  }

  async #share(request: SharedRequest, original: ClawboxError): Promise<unknown> {
    const { db, replicaId, maxQueue } = this.#options;
    const deadlineMs = request.deadline_ms ?? this.#options.defaultDeadlineMs;
    const entry: QueueEntry = {
      id: randomUUID(),
      origin: replicaId,
      request: { text: request.text, ...(request.session ? { session: request.session } : {}), ...(request.source ? { source: request.source } : {}) },
      deadline: Date.now() + deadlineMs,
    };
    const text = JSON.stringify(entry);
    if ((await db.llen(KEYS.agentQueue)) >= maxQueue) throw original;
    const answer = new Promise<unknown>((resolve, reject) => {
      this.#waiting.set(entry.id, { act: request.act, resolve, reject });
    });
    await db.lpush(KEYS.agentQueue, text);
    await db.publish(KEYS.agentQueued, entry.id);
    this.#served.shared_out++;
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<never>((_, reject) => {
      let given = false;
      const giveUp = async () => {
        if (given) return;
        given = true;
        // Nobody took it: take it back, so that nobody will. Taken: its answer is on the way (or its error).
        const removed = await db.lrem(KEYS.agentQueue, 1, text).catch(() => 0);
        if (removed === 1) {
          reject(original);
          return;
        }
        timer = setTimeout(() => reject(new ClawboxError('DEADLINE_EXCEEDED', 'the replica serving the request did not answer in time')), ANSWER_GRACE_MS);
      };
      timer = setTimeout(() => void giveUp(), Math.max(0, entry.deadline - Date.now()));
      request.signal?.addEventListener('abort', () => void giveUp(), { once: true });
    });
    try {
      return await Promise.race([answer, gaveUp]);
    } finally {
      if (timer) clearTimeout(timer);
      this.#waiting.delete(entry.id);
    }
  }

  readonly #onWake = (channel: string): void => {
    if (channel === KEYS.agentQueued) void this.#pull();
  };

  /** Takes shared requests while this replica has capacity. */
  async #pull(): Promise<void> {
    if (this.#pulling) return;
    this.#pulling = true;
    try {
      while (this.#local && this.#remoteRunning < this.#options.maxRemote && this.#options.hasCapacity()) {
        const text = await this.#options.db.rpop(KEYS.agentQueue);
        if (!text) return;
        let entry: QueueEntry;
        try {
          entry = JSON.parse(text) as QueueEntry;
        } catch {
          continue;
        }
        if (entry.origin === this.#options.replicaId) {
          // Our own overflow: we have capacity again, so put it back for the local wait to win or expire.
          await this.#options.db.rpush(KEYS.agentQueue, text);
          return;
        }
        void this.#serve(entry);
      }
    } catch (error) {
      this.#options.logger.debug({ err: (error as Error).message }, 'work-sharing pull failed');
    } finally {
      this.#pulling = false;
    }
  }

  async #serve(entry: QueueEntry): Promise<void> {
    const { rpc, replicaId, logger } = this.#options;
    const left = entry.deadline - Date.now();
    const reply = (body: Record<string, unknown>) =>
      rpc.call(entry.origin, 'agent.result', { id: entry.id, ...body }, { timeoutMs: 2000 }).catch(() => {});
    if (left <= 0) {
      await reply({ ok: false, error: { code: 'DEADLINE_EXCEEDED', message: 'the deadline passed while the request was queued', not_run: true } });
      return;
    }
    this.#remoteRunning++;
    this.#served.shared_in++;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), left + 1000);
    try {
      const answer = await this.#local!({
        ...entry.request,
        deadline_ms: left,
        signal: controller.signal,
        act: (device, command) =>
          rpc.call(entry.origin, 'agent.act', { id: entry.id, device, command }, { timeoutMs: Math.max(1000, entry.deadline - Date.now() + 5000), timeoutCode: 'DEVICE_TIMEOUT' }),
      });
      await reply({ ok: true, answer: { ...(answer as object), replica: replicaId } });
    } catch (error) {
      const err = toClawboxError(error);
      logger.debug({ code: err.code, origin: entry.origin }, 'shared agent request failed here');
      await reply({ ok: false, error: err.toJSON() });
    } finally {
      clearTimeout(timer);
      this.#remoteRunning--;
    }
  }
}
