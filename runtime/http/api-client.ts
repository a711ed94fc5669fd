/**
 * How the CLI talks to the running runtime: its HTTP API at the address in the same config `clawbox
 * start` reads, with the API token from --token, $CLAWBOX_TOKEN or http.token. Answers are the one
 * envelope; an error envelope becomes the ClawboxError it names, so commands exit with its code.
 */
import type { ConfigLoader } from '../config/load.js';
import { ClawboxError, ERROR_CATALOG, type ErrorCode } from '../errors.js';

export type RuntimeApi = (method: 'GET' | 'POST', path: string, body?: unknown) => Promise<unknown>;

export interface RuntimeApiOptions {
  config?: string | undefined;
  url?: string | undefined;
  token?: string | undefined;
  /** Per request (default 10 s). */
  timeoutMs?: number;
}

/** For answers without a clawbox error body, e.g. when --url names some other server. */
const STATUS_CODES: Partial<Record<number, ErrorCode>> = { 401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 404: 'NOT_FOUND' };

/** A mistyped --url is a usage error, not an unreachable runtime. */
function checkUrl(url: string): void {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new ClawboxError('USAGE', `--url must be an http:// or https:// address (got "${url}")`);
  }
}

export function runtimeApi(loadConfig: ConfigLoader['loadConfig'], options: RuntimeApiOptions, env: NodeJS.ProcessEnv): RuntimeApi {
  let base = options.url;
  if (base !== undefined) checkUrl(base);
  if (options.config === '') throw new ClawboxError('USAGE', '--config needs a file path');
  let token = options.token ?? env.CLAWBOX_TOKEN;
  if (!base || !token) {
    const { config } = loadConfig({ ...(options.config ? { file: options.config } : {}), env });
    // A runtime listening on every address is reached on loopback.
    const host = ['0.0.0.0', '::'].includes(config.http.host) ? '127.0.0.1' : config.http.host;
    base ??= `http://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
    token ??= config.http.token;
  }
  const root = base.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 10_000;
  return async (method, path, body) => {
    let response: Response;
    try {
      response = await fetch(`${root}${path}`, {
        method,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const reason = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new ClawboxError('LISTEN_FAILED', `cannot reach the clawbox runtime at ${root} (${reason}); is it running?`);
    }
    const answer = (await response.json().catch(() => null)) as { status?: string; data?: unknown; error?: { code?: string; message?: string } } | null;
    if (response.ok && answer?.status === 'ok') return answer.data;
    const code = answer?.error?.code && Object.hasOwn(ERROR_CATALOG, answer.error.code) ? (answer.error.code as ErrorCode) : (STATUS_CODES[response.status] ?? 'INTERNAL');
    const hint = code === 'UNAUTHORIZED' ? ' (pass --token, set $CLAWBOX_TOKEN, or run where the config with http.token is readable)' : '';
    throw new ClawboxError(code, `${answer?.error?.message ?? `HTTP ${response.status}`}${hint}`);
  };
}
