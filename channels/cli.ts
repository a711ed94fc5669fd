/**
 * `clawbox channels pairings | approve <code>`: the owner's side of pairing, from a shell on the appliance.
 * It asks the running runtime over its HTTP API (GET /api/channels/pairings, POST …/<code>/approve) at the
 * address in the same config `clawbox start` reads, with the API token from --token, $CLAWBOX_TOKEN or
 * http.token; so approving works without a browser, e.g. over SSH or the serial console.
 */
import { parseArgs } from 'node:util';
import type { ConfigLoader } from '../runtime/config/load.js';
import { ClawboxError, ERROR_CATALOG, type ErrorCode, toClawboxError } from '../runtime/errors.js';

export const CHANNELS_HELP = `Usage:
  clawbox channels pairings [--config FILE] [--json]    senders waiting for approval, with their codes
  clawbox channels approve <code> [--config FILE]       let that sender talk to the appliance
Options: --url URL (default: http://<http.host>:<http.port> from the config), --token TOKEN (default:
$CLAWBOX_TOKEN, else http.token from the config). The runtime must be running.
`;

export interface ChannelsCommandIo {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  env?: NodeJS.ProcessEnv;
}

interface PairingRequest {
  code: string;
  sender: { channel: string; sender_id: string; display_name?: string };
  requested_at: number;
}

/** `loadConfig` comes from the composition root, which knows every config section. */
export async function runChannelsCommand(
  args: readonly string[],
  loadConfig: ConfigLoader['loadConfig'],
  io: ChannelsCommandIo = {}): Promise<number> {
  const out = io.stdout ?? ((text: string) => void process.stdout.write(text));
  const err = io.stderr ?? ((text: string) => void process.stderr.write(text));
  const env = io.env ?? process.env;
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string' },
        url: { type: 'string' },
        token: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    const [command, code, ...rest] = positionals;
    if (values.help || command === undefined || command === 'help') {
      out(CHANNELS_HELP);
      return command === undefined && !values.help ? ERROR_CATALOG.USAGE.exit : 0;
    }
    if (rest.length > 0) throw new ClawboxError('USAGE', `unexpected arguments: ${rest.join(' ')}`);
    const api = apiOf(loadConfig, values, env);
    switch (command) {
      case 'pairings': {
        if (code !== undefined) throw new ClawboxError('USAGE', `"channels pairings" takes no argument (got "${code}")`);
        const requests = (await api('GET', '/api/channels/pairings')) as PairingRequest[];
        if (values.json) out(`${JSON.stringify(requests, null, 2)}\n`);
        else if (requests.length === 0) out('no senders are waiting for approval\n');
        else {
          out(
            requests
              .map((r) => `${r.code}  ${r.sender.channel}:${r.sender.sender_id}${r.sender.display_name && r.sender.display_name !== r.sender.sender_id ? ` (${r.sender.display_name})` : ''}  since ${new Date(r.requested_at).toISOString()}\n`)
              .join(''),
          );
        }
        return 0;
      }
      case 'approve': {
        if (!code) throw new ClawboxError('USAGE', 'channels approve needs the pairing code the sender was given');
        const sender = (await api('POST', `/api/channels/pairings/${encodeURIComponent(code)}/approve`)) as PairingRequest['sender'];
        out(`approved ${sender.channel}:${sender.sender_id}\n`);
        return 0;
      }
      default:
        throw new ClawboxError('USAGE', `unknown channels command "${command}"\n${CHANNELS_HELP}`);
    }
  } catch (error) {
    const e = toClawboxError(error);
    err(`clawbox channels: ${e.code}: ${e.message}\n`);
    return e.spec.exit;
  }
}

type Api = (method: 'GET' | 'POST', path: string) => Promise<unknown>;

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

function apiOf(
  loadConfig: ConfigLoader['loadConfig'],
  options: { config?: string; url?: string; token?: string },
  env: NodeJS.ProcessEnv,
): Api {
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
  return async (method, path) => {
    let response: Response;
    try {
      response = await fetch(`${root}${path}`, {
        method,
        headers: token ? { authorization: `Bearer ${token}` } : {},
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      const reason = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new ClawboxError('LISTEN_FAILED', `cannot reach the clawbox runtime at ${root} (${reason}); is it running?`);
    }
    const body = (await response.json().catch(() => null)) as { status?: string; data?: unknown; error?: { code?: string; message?: string } } | null;
    if (response.ok && body?.status === 'ok') return body.data;
    const code = body?.error?.code && Object.hasOwn(ERROR_CATALOG, body.error.code) ? (body.error.code as ErrorCode) : (STATUS_CODES[response.status] ?? 'INTERNAL');
    const hint = code === 'UNAUTHORIZED' ? ' (pass --token, set $CLAWBOX_TOKEN, or run where the config with http.token is readable)' : '';
    throw new ClawboxError(code, `${body?.error?.message ?? `HTTP ${response.status}`}${hint}`);
  }
}
