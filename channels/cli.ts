/**
 * `clawbox channels pairings | approve <code>`: the owner's side of pairing, from a shell on the appliance.
 * It asks the running runtime over its HTTP API (GET /api/channels/pairings, POST …/<code>/approve; see
 * runtime/http/api-client.ts), so approving works without a browser, e.g. over SSH or the serial console.
 */
import { parseArgs } from 'node:util';
import type { ConfigLoader } from '../runtime/config/load.js';
import { ClawboxError, ERROR_CATALOG, toClawboxError } from '../runtime/errors.js';
import { runtimeApi } from '../runtime/http/api-client.js';

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
    const api = runtimeApi(loadConfig, values, env);
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
