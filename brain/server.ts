/**
 * The brain's gRPC service (brain/proto/brain.proto) over mutual TLS 1.3: Generate, GenerateStream and
 * Health. The caller's gRPC deadline bounds the generation and a cancelled call aborts it. Requests are
 * hostile until validated (sizes, token budget, schema JSON) and the work in flight is bounded.
 * Certificates are re-read when their files change; new handshakes use the new ones.
 */
import * as grpc from '@grpc/grpc-js';
import { ClawboxError, toClawboxError } from '../runtime/errors.js';
import type { BrainBackend, BrainReply, BrainRequest } from './backend.js';
import { type WireGenerateChunk, type WireGenerateReply, type WireGenerateRequest, type WireHealthReply, brainServiceClient } from './proto.js';
import { LINK_CIPHER, LINK_PROTOCOL, LinkServerCredentials, type TlsFiles, type TlsMaterial, fipsEnabled, loadTlsMaterial, watchTlsFiles } from './tls.js';

export const MAX_PROMPT_CHARS = 256 * 1024;
export const MAX_SCHEMA_CHARS = 64 * 1024;
export const MAX_OUTPUT_TOKENS = 4096;
const MAX_MESSAGE_BYTES = 1024 * 1024;

export interface BrainServerOptions {
  host: string;
  port: number;
  tls: TlsFiles;
  backend: BrainBackend;
  /** Requests generating at once; more are answered RESOURCE_EXHAUSTED. */
  max_in_flight?: number;
  logger?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Called with every validated request (tests record what left the edge). */
  onRequest?: (request: BrainRequest) => void;
}

export interface BrainServerStatus {
  listening: string | null;
  protocol: string;
  cipher: string;
  mutual_tls: true;
  fips: boolean;
  certificate: { subject: string; expires_at: string } | null;
  rotations: number;
  in_flight: number;
  requests: { served: number; failed: number; cancelled: number; refused: number };
}

export class BrainServer {
  readonly #options: BrainServerOptions;
  #server: grpc.Server | null = null;
  #credentials: LinkServerCredentials | null = null;
  #material: TlsMaterial | null = null;
  #unwatch: (() => void) | null = null;
  #port = 0;
  #inFlight = 0;
  #rotations = 0;
  readonly #counts = { served: 0, failed: 0, cancelled: 0, refused: 0 };

  constructor(options: BrainServerOptions) {
    this.#options = options;
  }

  get port(): number {
    return this.#port;
  }

  async start(): Promise<number> {
    const material = await loadTlsMaterial(this.#options.tls);
    const credentials = new LinkServerCredentials(material);
    const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES, 'grpc.max_send_message_length': MAX_MESSAGE_BYTES });
    server.addService(brainServiceClient().service, {
      Generate: (call: grpc.ServerUnaryCall<WireGenerateRequest, WireGenerateReply>, callback: grpc.sendUnaryData<WireGenerateReply>) =>
        void this.#generate(call, null).then(
          (reply) => callback(null, reply),
          (error: unknown) => callback(toStatus(error)),
        ),
      GenerateStream: (call: grpc.ServerWritableStream<WireGenerateRequest, WireGenerateChunk>) =>
        void this.#generate(call, (text) => call.write({ text })).then(
          (reply) => {
            call.write({ done: reply });
            call.end();
          },
          (error: unknown) => call.destroy(toStatus(error) as unknown as Error),
        ),
      Health: (_call: grpc.ServerUnaryCall<unknown, WireHealthReply>, callback: grpc.sendUnaryData<WireHealthReply>) => {
        const health = this.#options.backend.health();
        callback(null, { ...health, fips: fipsEnabled() });
      },
    });
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${this.#options.host.includes(':') ? `[${this.#options.host}]` : this.#options.host}:${this.#options.port}`, credentials, (error, bound) => {
        if (error) reject(new ClawboxError(/EADDRINUSE|address already in use/i.test(error.message) ? 'PORT_IN_USE' : 'LISTEN_FAILED', `brain listener ${this.#options.host}:${this.#options.port}: ${error.message}`));
        else resolve(bound);
      });
    });
    this.#server = server;
    this.#credentials = credentials;
    this.#material = material;
    this.#port = port;
    this.#unwatch = watchTlsFiles(this.#options.tls, () => void this.rotate());
    this.#options.logger?.info({ port, protocol: LINK_PROTOCOL, cipher: LINK_CIPHER, expires_at: material.expires_at }, `brain serving on ${this.#options.host}:${port} (mutual TLS)`);
    return port;
  }

  /** Re-reads the certificate files; a broken set is logged and the current one kept. */
  async rotate(): Promise<boolean> {
    if (!this.#credentials) return false;
    try {
      const material = await loadTlsMaterial(this.#options.tls);
      this.#credentials.update(material);
      this.#material = material;
      this.#rotations++;
      this.#options.logger?.info({ expires_at: material.expires_at }, 'brain link certificates reloaded');
      return true;
    } catch (error) {
      this.#options.logger?.warn({ code: toClawboxError(error).code }, `brain link certificates not reloaded: ${(error as Error).message}`);
      return false;
    }
  }

  async #generate(call: (grpc.ServerUnaryCall<WireGenerateRequest, unknown> | grpc.ServerWritableStream<WireGenerateRequest, unknown>), onText: ((text: string) => void) | null): Promise<WireGenerateReply> {
    const request = parseRequest(call.request);
    if (this.#inFlight >= (this.#options.max_in_flight ?? 64)) {
      this.#counts.refused++;
      throw new ClawboxError('BUSY', 'the brain is at its limit of requests in flight', { retry_after_ms: 100 });
    }
    this.#options.onRequest?.(request);
    const controller = new AbortController();
    const onCancel = () => controller.abort(new ClawboxError('DEADLINE_EXCEEDED', 'the caller cancelled the request or its deadline passed', { cancelled: true }));
    call.on('cancelled', onCancel);
    // grpc-js cancels the call at its deadline; the timer makes sure the generation stops even so.
    const deadline = call.getDeadline();
    const at = deadline instanceof Date ? deadline.getTime() : Number(deadline);
    const timer = Number.isFinite(at) ? setTimeout(onCancel, Math.max(0, at - Date.now())) : null;
    timer?.unref();
    this.#inFlight++;
    try {
      if (call.cancelled) onCancel();
      const reply = await this.#options.backend.generate(request, { signal: controller.signal, ...(onText ? { onText } : {}) });
      this.#counts.served++;
      return toWire(reply);
    } catch (error) {
      if (controller.signal.aborted) this.#counts.cancelled++;
      else this.#counts.failed++;
      throw error;
    } finally {
      this.#inFlight--;
      if (timer) clearTimeout(timer);
      call.removeListener('cancelled', onCancel);
    }
  }

  status(): BrainServerStatus {
    return {
      listening: this.#server ? `${this.#options.host}:${this.#port}` : null,
      protocol: LINK_PROTOCOL,
      cipher: LINK_CIPHER,
      mutual_tls: true,
      fips: fipsEnabled(),
      certificate: this.#material ? { subject: this.#material.subject, expires_at: this.#material.expires_at } : null,
      rotations: this.#rotations,
      in_flight: this.#inFlight,
      requests: { ...this.#counts },
    };
  }

  async stop(): Promise<void> {
    this.#unwatch?.();
    this.#unwatch = null;
    const server = this.#server;
    this.#server = null;
    if (!server) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 2000);
      force.unref();
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}

function parseRequest(wire: WireGenerateRequest): BrainRequest {
  const text = (value: unknown, name: string, max: number) => {
    if (typeof value !== 'string') throw new ClawboxError('PAYLOAD_INVALID', `${name} must be a string`);
    if (value.length > max) throw new ClawboxError('PAYLOAD_TOO_LARGE', `${name} is longer than ${max} characters`);
    return value;
  };
  const prefix = text(wire.prefix ?? '', 'prefix', MAX_PROMPT_CHARS);
  const prompt = text(wire.prompt ?? '', 'prompt', MAX_PROMPT_CHARS);
  if (prompt.length === 0) throw new ClawboxError('PAYLOAD_INVALID', 'prompt is empty');
  const maxTokens = Number(wire.max_tokens);
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > MAX_OUTPUT_TOKENS) {
    throw new ClawboxError('PAYLOAD_INVALID', `max_tokens must be an integer from 1 to ${MAX_OUTPUT_TOKENS}`);
  }
  const schemaText = text(wire.tool_schema_json ?? '', 'tool_schema_json', MAX_SCHEMA_CHARS);
  let schema: object | null = null;
  if (schemaText) {
    try {
      schema = JSON.parse(schemaText) as object;
    } catch {
      throw new ClawboxError('PAYLOAD_INVALID', 'tool_schema_json is not JSON');
    }
    if (!schema || typeof schema !== 'object' || Array.isArray(schema)) throw new ClawboxError('PAYLOAD_INVALID', 'tool_schema_json must be a JSON object');
  }
  const stop = Array.isArray(wire.stop) ? wire.stop.slice(0, 8).map((s, i) => text(s, `stop[${i}]`, 64)) : [];
  const temperature = Number(wire.temperature ?? 0);
  return {
    prefix,
    prompt,
    max_tokens: maxTokens,
    tool_schema: schema,
    session: text(wire.session ?? '', 'session', 128),
    temperature: Number.isFinite(temperature) ? Math.min(2, Math.max(0, temperature)) : 0,
    stop,
  };
}

function toWire(reply: BrainReply): WireGenerateReply {
  return { text: reply.text, stop_reason: reply.stop_reason, usage: reply.usage, model: reply.model };
}

const STATUS_OF: Partial<Record<string, grpc.status>> = {
  PAYLOAD_INVALID: grpc.status.INVALID_ARGUMENT,
  PAYLOAD_TOO_LARGE: grpc.status.INVALID_ARGUMENT,
  DEADLINE_EXCEEDED: grpc.status.DEADLINE_EXCEEDED,
  BUSY: grpc.status.RESOURCE_EXHAUSTED,
  MODEL_NOT_LOADED: grpc.status.UNAVAILABLE,
};

/** A gRPC status whose details start with the catalog code, so the edge can keep it. */
function toStatus(error: unknown): Partial<grpc.StatusObject> {
  const typed = toClawboxError(error);
  return { code: STATUS_OF[typed.code] ?? grpc.status.INTERNAL, details: `${typed.code}: ${typed.message}` };
}
