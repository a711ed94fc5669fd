/**
 * The edge's end of the brain link. A BrainLink answers one request within a deadline (epoch ms) or
 * fails with a catalog code: DEADLINE_EXCEEDED (the deadline passed, the call is cancelled and the
 * brain aborts), BRAIN_UNAVAILABLE (down, failing, or the breaker is open). Two kinds: gRPC over mutual
 * TLS 1.3 (a clawbox brain) and an OpenAI-compatible HTTPS endpoint (openai-client.ts).
 *
 * The gRPC link checks the brain's health every `health_interval_ms` (a Health call plus, after each
 * (re)connect, one TLS handshake that reads the negotiated protocol and cipher for the status page);
 * failures feed the circuit breaker; grpc-js reconnects with exponential backoff on its own.
 */
import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { ClawboxError, ERROR_CATALOG, type ErrorCode, toClawboxError } from '../runtime/errors.js';
import type { BrainReply, BrainRequest } from './backend.js';
import { CircuitBreaker, type BreakerOptions } from './breaker.js';
import { type WireGenerateChunk, type WireGenerateRequest, type WireHealthReply, brainServiceClient } from './proto.js';
import { LINK_TLS, type TlsFiles, type TlsMaterial, checkFips, contextOptions, linkChannelCredentials, loadTlsMaterial, watchTlsFiles } from './tls.js';

export interface GenerateOptions {
  /** Epoch ms: the caller's deadline, sent as the gRPC deadline. */
  deadline: number;
  signal?: AbortSignal;
  onText?: (text: string) => void;
}

export interface LinkStatus {
  kind: 'grpc' | 'openai';
  target: string;
  state: 'connecting' | 'up' | 'down';
  breaker: ReturnType<CircuitBreaker['snapshot']>;
  protocol: string | null;
  cipher: string | null;
  mutual_tls: boolean;
  fips: boolean;
  certificate: { expires_at: string; subject: string } | null;
  peer_certificate_expires_at: string | null;
  brain: { model: string; sequences: number; fips: boolean } | null;
  last_error: string | null;
  requests: { sent: number; ok: number; failed: number; deadline: number };
}

export interface BrainLink {
  readonly kind: 'grpc' | 'openai';
  /** Where offloads go (audit, status). */
  readonly target: string;
  /** False while down or the breaker is open: the scheduler skips the remote rung. */
  available(): boolean;
  /** Parallel requests the brain takes (its sequences). */
  sequences(): number;
  generate(request: BrainRequest, options: GenerateOptions): Promise<BrainReply>;
  status(): LinkStatus;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface GrpcLinkOptions {
  /** host:port of the brain. */
  target: string;
  tls: TlsFiles;
  require_fips?: boolean;
  health_interval_ms?: number;
  breaker?: BreakerOptions;
  logger?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/** A health check slower than this counts as a failure (a loaded brain answers well within it). */
const HEALTH_DEADLINE_MS = 2000;

type BrainStub = grpc.Client & {
  GenerateStream(request: WireGenerateRequest, options: grpc.CallOptions): grpc.ClientReadableStream<WireGenerateChunk>;
  Health(request: object, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, reply?: WireHealthReply) => void): grpc.ClientUnaryCall;
};

export class GrpcBrainLink implements BrainLink {
  readonly kind = 'grpc' as const;
  readonly target: string;
  readonly #options: GrpcLinkOptions;
  readonly #breaker: CircuitBreaker;
  #stub: BrainStub | null = null;
  #material: TlsMaterial | null = null;
  #fips = false;
  #timer: NodeJS.Timeout | null = null;
  #unwatch: (() => void) | null = null;
  #state: LinkStatus['state'] = 'connecting';
  #health: WireHealthReply | null = null;
  #negotiated: { protocol: string | null; cipher: string | null; peer_expires_at: string | null } | null = null;
  #lastError: string | null = null;
  readonly #counts = { sent: 0, ok: 0, failed: 0, deadline: 0 };
  #stopped = false;

  constructor(options: GrpcLinkOptions) {
    this.#options = options;
    this.target = options.target;
    this.#breaker = new CircuitBreaker(options.breaker);
  }

  async start(): Promise<void> {
    this.#stopped = false;
    this.#fips = checkFips(this.#options.require_fips ?? false);
    this.#material = await loadTlsMaterial(this.#options.tls);
    this.#connect();
    this.#unwatch = watchTlsFiles(this.#options.tls, () => void this.rotate());
    // The first health check decides whether the remote rung is open from the start.
    await this.#check();
    this.#schedule();
  }

  /** Re-reads the certificate files and reconnects with them; a broken set keeps the current one. */
  async rotate(): Promise<boolean> {
    try {
      this.#material = await loadTlsMaterial(this.#options.tls);
    } catch (error) {
      this.#options.logger?.warn({ code: toClawboxError(error).code }, `brain link certificates not reloaded: ${(error as Error).message}`);
      return false;
    }
    this.#connect();
    this.#options.logger?.info({ expires_at: this.#material.expires_at }, 'brain link certificates reloaded; reconnecting');
    await this.#check();
    return true;
  }

  #connect(): void {
    this.#stub?.close();
    const Client = brainServiceClient();
    this.#stub = new Client(this.target, linkChannelCredentials(this.#material!), {
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 5000,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5000,
      'grpc.max_receive_message_length': 1024 * 1024,
    }) as unknown as BrainStub;
    this.#negotiated = null;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#check().finally(() => this.#schedule());
    }, this.#options.health_interval_ms ?? 2000);
    this.#timer.unref();
  }

  async #check(): Promise<void> {
    const stub = this.#stub;
    if (!stub) return;
    try {
      const reply = await new Promise<WireHealthReply>((resolve, reject) => {
        stub.Health({}, { deadline: Date.now() + HEALTH_DEADLINE_MS }, (error, value) => (error ? reject(error) : resolve(value!)));
      });
      this.#health = reply;
      if (!reply.serving) throw new ClawboxError('BRAIN_UNAVAILABLE', 'the brain has no model loaded');
      if (!this.#negotiated) this.#negotiated = await probeTls(this.target, this.#material!).catch(() => null);
      if (this.#state !== 'up') this.#options.logger?.info({ target: this.target, cipher: this.#negotiated?.cipher }, 'brain link up');
      this.#state = 'up';
      this.#lastError = null;
      this.#breaker.success();
    } catch (error) {
      const message = describe(error);
      if (this.#state !== 'down') this.#options.logger?.warn({ target: this.target, code: 'BRAIN_UNAVAILABLE' }, `brain link down: ${message}`);
      this.#state = 'down';
      this.#lastError = message;
      this.#negotiated = null;
      this.#breaker.failure();
    }
  }

  available(): boolean {
    return !this.#stopped && this.#state === 'up' && this.#breaker.usable();
  }

  sequences(): number {
    return Math.max(1, this.#health?.sequences ?? 1);
  }

  generate(request: BrainRequest, options: GenerateOptions): Promise<BrainReply> {
    const stub = this.#stub;
    if (!stub || !this.#breaker.allow()) {
      return Promise.reject(new ClawboxError('BRAIN_UNAVAILABLE', `the brain at ${this.target} is not available (${this.#breaker.state})`));
    }
    if (options.signal?.aborted) return Promise.reject(abortReason(options.signal));
    this.#counts.sent++;
    const wire: WireGenerateRequest = {
      prefix: request.prefix,
      prompt: request.prompt,
      max_tokens: request.max_tokens,
      tool_schema_json: request.tool_schema ? JSON.stringify(request.tool_schema) : '',
      session: request.session,
      temperature: request.temperature,
      stop: request.stop,
    };
    return new Promise<BrainReply>((resolve, reject) => {
      let settled = false;
      const call = stub.GenerateStream(wire, { deadline: options.deadline });
      const onAbort = () => {
        if (settled) return;
        settled = true;
        call.cancel();
        reject(abortReason(options.signal!));
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const finish = (error: ClawboxError | null, reply?: BrainReply) => {
        if (settled) return;
        settled = true;
        options.signal?.removeEventListener('abort', onAbort);
        if (error) {
          if (error.code === 'DEADLINE_EXCEEDED') this.#counts.deadline++;
          else this.#counts.failed++;
          // A brain that cannot keep deadlines or answer at all counts against the breaker alike.
          if (error.code === 'BRAIN_UNAVAILABLE' || error.code === 'DEADLINE_EXCEEDED' || error.code === 'INTERNAL') this.#breaker.failure();
          this.#lastError = error.message;
          reject(error);
        } else {
          this.#counts.ok++;
          this.#breaker.success();
          resolve(reply!);
        }
      };
      call.on('data', (chunk: WireGenerateChunk) => {
        if (chunk.text !== undefined && chunk.kind !== 'done') options.onText?.(chunk.text);
        if (chunk.done) finish(null, fromWire(chunk.done));
      });
      call.on('error', (error: grpc.ServiceError) => finish(fromStatus(error, this.target)));
      call.on('end', () => finish(new ClawboxError('BRAIN_UNAVAILABLE', `the brain at ${this.target} ended the answer without a result`)));
    });
  }

  status(): LinkStatus {
    return {
      kind: 'grpc',
      target: this.target,
      state: this.#state,
      breaker: this.#breaker.snapshot(),
      protocol: this.#negotiated?.protocol ?? null,
      cipher: this.#negotiated?.cipher ?? null,
      mutual_tls: true,
      fips: this.#fips,
      certificate: this.#material ? { expires_at: this.#material.expires_at, subject: this.#material.subject } : null,
      peer_certificate_expires_at: this.#negotiated?.peer_expires_at ?? null,
      brain: this.#health ? { model: this.#health.model, sequences: this.#health.sequences, fips: this.#health.fips } : null,
      last_error: this.#lastError,
      requests: { ...this.#counts },
    };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#unwatch?.();
    this.#unwatch = null;
    this.#stub?.close();
    this.#stub = null;
  }
}

/**
 * One TLS handshake to the brain with the link's own credentials: what was negotiated (protocol, cipher)
 * and when the brain's certificate expires. grpc-js does not expose its sockets, so this is how the
 * status page learns what the link really uses.
 */
export async function probeTls(target: string, material: TlsMaterial, timeoutMs = 2000): Promise<{ protocol: string | null; cipher: string | null; peer_expires_at: string | null }> {
  const { host, port } = splitTarget(target);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host,
      port,
      ...contextOptions(material),
      ...LINK_TLS,
      ALPNProtocols: ['h2'],
      ...(isIP(host) ? {} : { servername: host }),
    });
    const timer = setTimeout(() => socket.destroy(new Error('TLS probe timed out')), timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const peer = socket.getPeerCertificate();
      const result = {
        protocol: socket.getProtocol(),
        cipher: socket.getCipher()?.standardName ?? null,
        peer_expires_at: peer?.valid_to ? new Date(peer.valid_to).toISOString() : null,
      };
      socket.end();
      resolve(result);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

export function splitTarget(target: string): { host: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target);
  if (!match) throw new ClawboxError('CONFIG_INVALID', `brain target must be host:port (got "${target}")`);
  return { host: match[1]!, port: Number(match[2]) };
}

function fromWire(reply: WireGenerateChunk['done'] & object): BrainReply {
  const usage = reply.usage ?? { prompt_tokens: 0, cached_tokens: 0, evaluated_tokens: 0, generated_tokens: 0, queue_ms: 0, prefill_ms: 0, decode_ms: 0 };
  const stop = ['eos', 'grammar', 'stop', 'max_tokens'].includes(reply.stop_reason) ? (reply.stop_reason as BrainReply['stop_reason']) : 'eos';
  return { text: String(reply.text ?? ''), stop_reason: stop, usage, model: String(reply.model ?? '') };
}

function fromStatus(error: grpc.ServiceError, target: string): ClawboxError {
  if (error.code === grpc.status.DEADLINE_EXCEEDED) return new ClawboxError('DEADLINE_EXCEEDED', `the brain at ${target} did not answer within the deadline`);
  if (error.code === grpc.status.CANCELLED) return new ClawboxError('DEADLINE_EXCEEDED', 'the request was cancelled', { cancelled: true });
  // The brain's own catalog code travels at the start of the details.
  const coded = /^([A-Z_]+): (.*)$/s.exec(error.details ?? '');
  if (coded && error.code !== grpc.status.UNAVAILABLE) {
    const known = coded[1]! in ERROR_CATALOG ? (coded[1] as ErrorCode) : 'BRAIN_UNAVAILABLE';
    // The brain's own lack of a model is this link being unavailable, not this box's.
    return new ClawboxError(known === 'MODEL_NOT_LOADED' ? 'BRAIN_UNAVAILABLE' : known, `brain: ${coded[2]}`);
  }
  return new ClawboxError('BRAIN_UNAVAILABLE', `the brain at ${target} failed: ${describe(error)}`);
}

function describe(error: unknown): string {
  const e = error as { details?: string; message?: string };
  return e.details || e.message || String(error);
}

function abortReason(signal: AbortSignal): ClawboxError {
  const reason: unknown = signal.reason;
  return reason instanceof ClawboxError ? reason : new ClawboxError('DEADLINE_EXCEEDED', 'the request was cancelled', { cancelled: true });
}
