/**
 * `clawbox brain certs`: a small CA for one brain link and the two key pairs it signs (the brain's
 * server certificate, the edge's client certificate). Made in-process with the `selfsigned` package
 * (@peculiar/x509 on Node's WebCrypto, so the keys come from the same OpenSSL that runs the link, FIPS
 * provider included) rather than the openssl CLI, which a box or a CI image may not have or may have in
 * another version. ECDSA P-384 with SHA-384, to match the link's AES-256 suite. Every file is 0600.
 */
import { X509Certificate } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { ClawboxError } from '../runtime/errors.js';

export interface CertOptions {
  /** Folder for the files (created 0700 when missing). */
  dir: string;
  /** Names and addresses the brain is reached at (its certificate's subject alternative names). */
  hosts?: readonly string[];
  /** Validity of the two leaf certificates (the CA gets twice as long). */
  days?: number;
  /** Overwrite existing files. */
  force?: boolean;
}

export interface CertFiles {
  ca_cert: string;
  ca_key: string;
  brain_cert: string;
  brain_key: string;
  edge_cert: string;
  edge_key: string;
}

export const CERT_FILE_NAMES: CertFiles = {
  ca_cert: 'ca.crt',
  ca_key: 'ca.key',
  brain_cert: 'brain.crt',
  brain_key: 'brain.key',
  edge_cert: 'edge.crt',
  edge_key: 'edge.key',
};

const DAY = 24 * 3600 * 1000;

export async function createLinkCertificates(options: CertOptions): Promise<CertFiles & { expires_at: string }> {
  const days = options.days ?? 365;
  if (!Number.isInteger(days) || days < 1 || days > 3650) throw new ClawboxError('USAGE', '--days must be an integer from 1 to 3650');
  const hosts = [...new Set(['localhost', '127.0.0.1', '::1', ...(options.hosts ?? [])])];
  for (const host of hosts) {
    if (!/^[A-Za-z0-9.:*-]{1,253}$/.test(host)) throw new ClawboxError('USAGE', `--host "${host}" is not a host name or address`);
  }
  const now = new Date();
  const leafEnd = new Date(now.getTime() + days * DAY);
  const common = { keyType: 'ec', curve: 'P-384', algorithm: 'sha384' } as const;
  const { generate } = await import('selfsigned'); // loaded only when certificates are made
  const ca = await generate([{ name: 'commonName', value: 'clawbox brain link CA' }], {
    ...common,
    notBeforeDate: now,
    notAfterDate: new Date(now.getTime() + 2 * days * DAY),
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  const signer = { key: ca.private, cert: ca.cert };
  const brain = await generate([{ name: 'commonName', value: 'clawbox brain' }], {
    ...common,
    ca: signer,
    notBeforeDate: now,
    notAfterDate: leafEnd,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: hosts.map((h) => (isIP(h) ? { type: 7 as const, ip: h } : { type: 2 as const, value: h })) },
    ],
  });
  const edge = await generate([{ name: 'commonName', value: 'clawbox edge' }], {
    ...common,
    ca: signer,
    notBeforeDate: now,
    notAfterDate: leafEnd,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', clientAuth: true },
    ],
  });
  try {
    await mkdir(options.dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new ClawboxError('FILE_UNWRITABLE', `cannot create ${options.dir}: ${(error as Error).message}`);
  }
  const contents: Record<keyof CertFiles, string> = {
    ca_cert: ca.cert,
    ca_key: ca.private,
    brain_cert: brain.cert,
    brain_key: brain.private,
    edge_cert: edge.cert,
    edge_key: edge.private,
  };
  const written = {} as CertFiles;
  for (const [what, name] of Object.entries(CERT_FILE_NAMES) as Array<[keyof CertFiles, string]>) {
    const file = path.join(options.dir, name);
    try {
      await writeFile(file, contents[what], { mode: 0o600, flag: options.force ? 'w' : 'wx' });
      await chmod(file, 0o600);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new ClawboxError(
        code === 'EEXIST' ? 'USAGE' : 'FILE_UNWRITABLE',
        code === 'EEXIST' ? `${file} exists (use --force to replace the link's certificates)` : `cannot write ${file}: ${(error as Error).message}`,
      );
    }
    written[what] = file;
  }
  return { ...written, expires_at: new Date(new X509Certificate(brain.cert).validTo).toISOString() };
}
