/**
 * An OpenAI-compatible server as the brain (llama-server, vLLM, Ollama): POST <url>/v1/chat/completions
 * with the prompt as system + user messages and the tool-call schema as `response_format` json_schema
 * (each of those servers turns it into a grammar). Health: GET <url>/v1/models. Over https the link is
 * pinned to TLS 1.3 with TLS_AES_256_GCM_SHA384, with a client certificate when `tls` is given; plain
 * http is accepted for loopback only (a server on the same box).
 */
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ClawboxError } from '../runtime/errors.js';
import type { BrainReply, BrainRequest } from './backend.js';
import { CircuitBreaker, type BreakerOptions } from './breaker.js';
import type { BrainLink, GenerateOptions, LinkStatus } from './client.js';
import { LINK_CIPHER, LINK_PROTOCOL, LINK_TLS, type TlsFiles, type TlsMaterial, checkFips, contextOptions, loadTlsMaterial } from './tls.js';

const MAX_RESPONSE_BYTES = 1024 * 1024;

export interface OpenAiLinkOptions {
  url: string;
  model?: string;
  api_key_file?: string;
  tls?: TlsFiles;
  require_fips?: boolean;
  health_interval_ms?: number;
  breaker?: BreakerOptions;
  logger?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export class OpenAiBrainLink implements BrainLink {
  readonly kind = 'openai' as const;
  readonly target: string;
  readonly #options: OpenAiLinkOptions;
  readonly #url: URL;
  readonly #breaker: CircuitBreaker;
  #material: TlsMaterial | null = null;
  #apiKey: string | null = null;
  #fips = false;
  #state: LinkStatus['state'] = 'connecting';
  #lastError: string | null = null;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  readonly #counts = { sent: 0, ok: 0, failed: 0, deadline: 0 };

  constructor(options: OpenAiLinkOptions) {
    this.#options = options;
    this.#url = new URL(options.url.replace(/\/+$/, ''));
    if (this.#url.protocol === 'http:' && !['127.0.0.1', 'localhost', '[::1]'].includes(this.#url.hostname)) {
      throw new ClawboxError('CONFIG_INVALID', 'brain.endpoint: plain http is allowed for a loopback server only; use https');
    }
    this.target = `${this.#url.origin}${this.#url.pathname}`;
    this.#breaker = new CircuitBreaker(options.breaker);
  }

  async start(): Promise<void> {
    this.#stopped = false;
    this.#fips = checkFips(this.#options.require_fips ?? false);
    if (this.#options.tls) this.#material = await loadTlsMaterial(this.#options.tls);
    if (this.#options.api_key_file) this.#apiKey = (await readFile(this.#options.api_key_file, 'utf8')).trim();
    await this.#check();
    this.#schedule();
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
    try {
      await this.#call('GET', '/v1/models', null, AbortSignal.timeout(1000));
      this.#state = 'up';
      this.#lastError = null;
      this.#breaker.success();
    } catch (error) {
      if (this.#state !== 'down') this.#options.logger?.warn({ target: this.target, code: 'BRAIN_UNAVAILABLE' }, `brain endpoint down: ${(error as Error).message}`);
      this.#state = 'down';
      this.#lastError = (error as Error).message;
      this.#breaker.failure();
    }
  }

  available(): boolean {
    return !this.#stopped && this.#state === 'up' && this.#breaker.usable();
  }

  sequences(): number {
    return 4;
  }

  async generate(request: BrainRequest, options: GenerateOptions): Promise<BrainReply> {
    if (!this.#breaker.allow()) throw new ClawboxError('BRAIN_UNAVAILABLE', `the brain at ${this.target} is not available (${this.#breaker.state})`);
    this.#counts.sent++;
    const body = {
      ...(this.#options.model ? { model: this.#options.model } : {}),
      messages: [
        ...(request.prefix ? [{ role: 'system', content: request.prefix }] : []),
        { role: 'user', content: request.prompt },
      ],
      max_tokens: request.max_tokens,
      temperature: request.temperature,
      ...(request.stop.length > 0 ? { stop: request.stop } : {}),
      ...(request.session ? { user: request.session } : {}),
      ...(request.tool_schema ? { response_format: { type: 'json_schema', json_schema: { name: 'tool_call', schema: request.tool_schema, strict: true } } } : {}),
      stream: false,
    };
    const timeout = AbortSignal.timeout(Math.max(1, options.deadline - Date.now()));
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const started = performance.now();
    try {
      const answer = (await this.#call('POST', '/v1/chat/completions', body, signal)) as {
        model?: string;
        choices?: Array<{ message?: { content?: unknown }; finish_reason?: unknown }>;
        usage?: { prompt_tokens?: number; completion_tokens?: number };
      };
      const choice = answer.choices?.[0];
      const text = typeof choice?.message?.content === 'string' ? choice.message.content : '';
      const elapsed = performance.now() - started;
      this.#counts.ok++;
      this.#breaker.success();
      options.onText?.(text);
      return {
        text,
        stop_reason: choice?.finish_reason === 'length' ? 'max_tokens' : 'eos',
        model: typeof answer.model === 'string' ? answer.model.slice(0, 256) : (this.#options.model ?? ''),
        usage: {
          prompt_tokens: Number(answer.usage?.prompt_tokens) || 0,
          cached_tokens: 0,
          evaluated_tokens: Number(answer.usage?.prompt_tokens) || 0,
          generated_tokens: Number(answer.usage?.completion_tokens) || 0,
          queue_ms: 0,
          // The server does not say how its time splits: all of it counts as decoding.
          prefill_ms: 0,
          decode_ms: elapsed,
        },
      };
    } catch (error) {
      const deadline = timeout.aborted && !options.signal?.aborted;
      const typed =
        error instanceof ClawboxError
          ? error
          : deadline
            ? new ClawboxError('DEADLINE_EXCEEDED', `the brain at ${this.target} did not answer within the deadline`)
            : options.signal?.aborted
              ? new ClawboxError('DEADLINE_EXCEEDED', 'the request was cancelled', { cancelled: true })
              : new ClawboxError('BRAIN_UNAVAILABLE', `the brain at ${this.target} failed: ${(error as Error).message}`);
      if (typed.code === 'DEADLINE_EXCEEDED') this.#counts.deadline++;
      else this.#counts.failed++;
      if (!options.signal?.aborted) this.#breaker.failure();
      this.#lastError = typed.message;
      throw typed;
    }
  }

  #call(method: 'GET' | 'POST', route: string, body: object | null, signal: AbortSignal): Promise<unknown> {
    // A base URL given with or without /v1 (and trailing slashes) reaches the same routes.
    const url = new URL(`${this.#url.pathname.replace(/\/+$/, '').replace(/\/v1$/, '')}${route}`, this.#url.origin);
    const payload = body ? Buffer.from(JSON.stringify(body)) : null;
    const https = url.protocol === 'https:';
    const headers: Record<string, string> = { accept: 'application/json' };
    if (payload) headers['content-type'] = 'application/json';
    if (this.#apiKey) headers.authorization = `Bearer ${this.#apiKey}`;
    return new Promise((resolve, reject) => {
      const options = { method, headers, signal, ...(https ? { ...LINK_TLS, ...(this.#material ? contextOptions(this.#material) : {}) } : {}) };
      const req = (https ? httpsRequest : httpRequest)(url, options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) req.destroy(new ClawboxError('BRAIN_UNAVAILABLE', 'the brain answered more than 1 MiB'));
          else chunks.push(chunk);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if ((res.statusCode ?? 500) >= 400) {
            reject(new ClawboxError('BRAIN_UNAVAILABLE', `the brain answered HTTP ${res.statusCode}`));
            return;
          }
          try {
            resolve(JSON.parse(text));
          } catch {
            reject(new ClawboxError('BRAIN_UNAVAILABLE', 'the brain answered something that is not JSON'));
          }
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(payload ?? undefined);
    });
  }

  status(): LinkStatus {
    const https = this.#url.protocol === 'https:';
    return {
      kind: 'openai',
      target: this.target,
      state: this.#state,
      breaker: this.#breaker.snapshot(),
      protocol: https ? LINK_PROTOCOL : null,
      cipher: https ? LINK_CIPHER : null,
      mutual_tls: this.#material !== null,
      fips: this.#fips,
      certificate: this.#material ? { expires_at: this.#material.expires_at, subject: this.#material.subject } : null,
      peer_certificate_expires_at: null,
      brain: this.#options.model ? { model: this.#options.model, sequences: this.sequences(), fips: false } : null,
      last_error: this.#lastError,
      requests: { ...this.#counts },
    };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
