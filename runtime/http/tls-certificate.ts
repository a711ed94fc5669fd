/**
 * The HTTPS certificate of the page, API and WebSocket: the user's own (http.tls.cert/key), or a
 * self-signed one made once, at first boot, for the host name and its `.local` name (what mDNS
 * announces), kept under `<state>/tls/` with mode 0600 so a restart presents the same certificate and a
 * browser's exception for it stays valid.
 */
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { ClawboxError } from '../errors.js';

export interface TlsMaterial {
  cert: string;
  key: string;
  /** Where it came from: the user's files or the generated pair. */
  source: 'configured' | 'generated' | 'loaded';
  /** The files on disk. */
  certPath: string;
}

/** Names a self-signed certificate covers: the host name, `<host>.local`, localhost and loopback. */
export function certificateNames(host = hostname()): string[] {
  const bare = host.replace(/\.local$/i, '').toLowerCase();
  return [...new Set([bare, `${bare}.local`, 'localhost'])];
}

async function readPair(certPath: string, keyPath: string): Promise<{ cert: string; key: string } | null> {
  try {
    return { cert: await readFile(certPath, 'utf8'), key: await readFile(keyPath, 'utf8') };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Writes with mode 0600 through a temp file, so a crash never leaves half a key. */
async function writePrivate(file: string, text: string): Promise<void> {
  const temp = `${file}.tmp-${process.pid}`;
  await writeFile(temp, text, { mode: 0o600 });
  await chmod(temp, 0o600);
  await rename(temp, file);
}

export async function loadOrCreateCertificate(options: {
  stateDir: string;
  cert?: string | undefined;
  key?: string | undefined;
  host?: string;
}): Promise<TlsMaterial> {
  if (options.cert || options.key) {
    if (!options.cert || !options.key) throw new ClawboxError('TLS_INVALID', 'http.tls needs both cert and key, or neither (a certificate is then generated)');
    const pair = await readPair(options.cert, options.key).catch((error: Error) => {
      throw new ClawboxError('TLS_INVALID', `cannot read http.tls cert/key: ${error.message}`, {}, { cause: error });
    });
    if (!pair) throw new ClawboxError('TLS_INVALID', `http.tls cert ${options.cert} or key ${options.key} does not exist`);
    return { ...pair, source: 'configured', certPath: options.cert };
  }
  const dir = path.join(options.stateDir, 'tls');
  const certPath = path.join(dir, 'http-cert.pem');
  const keyPath = path.join(dir, 'http-key.pem');
  const existing = await readPair(certPath, keyPath);
  if (existing) return { ...existing, source: 'loaded', certPath };
  const names = certificateNames(options.host);
  const { generate } = await import('selfsigned'); // loaded only when a certificate is made
  const made = await generate([{ name: 'commonName', value: names[1]! }], {
    // P-256: made in milliseconds even on a small board, and every browser accepts it.
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 10 * 365 * 24 * 3600 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [...names.map((value) => ({ type: 2 as const, value })), { type: 7 as const, ip: '127.0.0.1' }, { type: 7 as const, ip: '::1' }],
      },
    ],
  });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writePrivate(keyPath, made.private);
  await writePrivate(certPath, made.cert);
  return { cert: made.cert, key: made.private, source: 'generated', certPath };
}
