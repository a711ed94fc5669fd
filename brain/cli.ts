/**
 * `clawbox brain certs [--dir DIR] [--host NAME]... [--days N] [--force]`: the link's CA and key pairs.
 * `clawbox brain status`: the link as the config describes it (files, expiry, FIPS). app/cli.ts forwards
 * the arguments after `brain` here.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type ConfigLoader, resolveStateDir } from '../runtime/config/load.js';
import { ClawboxError } from '../runtime/errors.js';
import { createLinkCertificates } from './certs.js';
import { brainConfigOf } from './config-schema.js';
import { tlsFilesFor } from './service.js';
import { certificateExpiry, fipsEnabled } from './tls.js';

const USAGE = `Usage:
  clawbox brain certs [--dir DIR] [--host NAME]... [--days N] [--force] [--config FILE]
      a CA and two key pairs for the brain link (files 0600): ca.crt ca.key brain.crt brain.key edge.crt edge.key
      DIR defaults to <state dir>/brain-certs; --host adds a name or address the brain is reached at
      (localhost, 127.0.0.1 and ::1 are always in); copy ca.crt + brain.* to the brain, ca.crt + edge.* to
      the edge, and keep ca.key offline.
  clawbox brain status [--config FILE] [--json]
      the link's files and certificate expiry as this box's config names them`;

export interface BrainCliIo {
  stdout: (text: string) => void;
}

export async function runBrainCommand(
  args: readonly string[],
  loadConfig: ConfigLoader['loadConfig'],
  io: BrainCliIo = { stdout: (text) => process.stdout.write(text) },
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      dir: { type: 'string' },
      host: { type: 'string', multiple: true },
      days: { type: 'string' },
      force: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    io.stdout(`${USAGE}\n`);
    return values.help ? 0 : 64;
  }
  if (rest.length > 0) throw new ClawboxError('USAGE', `brain ${command}: unexpected argument "${rest.join(' ')}"`);
  const config = () => loadConfig(values.config !== undefined ? { file: values.config } : {}).config;
  switch (command) {
    case 'certs': {
      const days = values.days === undefined ? 365 : Number(values.days);
      const dir = values.dir ?? path.join(resolveStateDir(config()), 'brain-certs');
      const files = await createLinkCertificates({ dir, ...(values.host ? { hosts: values.host } : {}), days, ...(values.force ? { force: true } : {}) });
      io.stdout(
        `brain link certificates in ${dir} (valid until ${files.expires_at}):\n` +
          `  brain: ${path.basename(files.ca_cert)} ${path.basename(files.brain_cert)} ${path.basename(files.brain_key)}\n` +
          `  edge:  ${path.basename(files.ca_cert)} ${path.basename(files.edge_cert)} ${path.basename(files.edge_key)}\n` +
          `  CA key ${path.basename(files.ca_key)}: keep it off both boxes once they are set up\n`,
      );
      return 0;
    }
    case 'status': {
      const loaded = config();
      const brain = brainConfigOf(loaded);
      const side = brain.role === 'brain' ? 'brain' : 'edge';
      const files = tlsFilesFor(brain, resolveStateDir(loaded), side);
      const report = { role: brain.role, endpoint: brain.endpoint ?? null, files, expires_at: certificateExpiry(files.cert), fips: fipsEnabled(), require_fips: brain.require_fips };
      io.stdout(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${Object.entries(report).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join('\n')}\n`);
      return 0;
    }
    default:
      throw new ClawboxError('USAGE', `unknown brain command "${command}" (try: certs, status)`);
  }
}
