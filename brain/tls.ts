/**
 * Transport security of the brain link: TLS 1.3 only, one cipher suite (TLS_AES_256_GCM_SHA384), mutual
 * TLS (each side presents a certificate signed by the link's CA). grpc-js takes TLS options through its
 * credentials; the server side subclasses ServerCredentials because its own factory cannot pin the TLS
 * version or the TLS 1.3 suite, and its `updateSecureContextOptions` is what swaps certificates into the
 * running listener (rotation without a restart). The edge side builds a fresh channel on rotation.
 */
import { X509Certificate } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type SecureContextOptions, createSecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { ClawboxError } from '../runtime/errors.js';

export { checkFips, fipsEnabled } from './fips.js';

export const LINK_PROTOCOL = 'TLSv1.3';
export const LINK_CIPHER = 'TLS_AES_256_GCM_SHA384';

/** The pinned TLS parameters; both sides use exactly these. */
export const LINK_TLS: Pick<SecureContextOptions, 'minVersion' | 'maxVersion' | 'ciphers'> = {
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
  ciphers: LINK_CIPHER,
};

export interface TlsFiles {
  /** PEM of the link's CA (peers must be signed by it). */
  ca: string;
  /** This side's certificate (PEM). */
  cert: string;
  /** This side's private key (PEM). */
  key: string;
}

export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  /** Expiry of this side's certificate (ISO 8601). */
  expires_at: string;
  subject: string;
}

/** Reads and checks the three files; TLS_INVALID names the file that is missing or unusable. */
export async function loadTlsMaterial(files: TlsFiles): Promise<TlsMaterial> {
  const read = async (what: string, file: string) => {
    try {
      return await readFile(file);
    } catch (error) {
      throw new ClawboxError('TLS_INVALID', `brain link ${what} ${file} cannot be read: ${(error as Error).message}`, { file });
    }
  };
  const [ca, cert, key] = await Promise.all([read('CA', files.ca), read('certificate', files.cert), read('key', files.key)]);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
    new X509Certificate(ca);
  } catch (error) {
    throw new ClawboxError('TLS_INVALID', `brain link certificate is not a PEM certificate: ${(error as Error).message}`, { file: files.cert });
  }
  return { ca, cert, key, expires_at: new Date(x509.validTo).toISOString(), subject: x509.subject.replace(/\n/g, ', ') };
}

export function contextOptions(material: TlsMaterial): SecureContextOptions {
  return { ...LINK_TLS, ca: material.ca, cert: material.cert, key: material.key };
}

/**
 * Server credentials with the pinned TLS parameters and client certificates required. `update` swaps the
 * certificates of a listening server (grpc-js calls setSecureContext on it); new handshakes use them.
 */
export class LinkServerCredentials extends grpc.ServerCredentials {
  constructor(material: TlsMaterial) {
    super({ requestCert: true, rejectUnauthorized: true, ...LINK_TLS }, contextOptions(material));
  }

  update(material: TlsMaterial): void {
    this.updateSecureContextOptions(contextOptions(material));
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/** Channel credentials for the edge: our certificate, the link's CA, the pinned parameters. */
export function linkChannelCredentials(material: TlsMaterial): grpc.ChannelCredentials {
  return grpc.ChannelCredentials.createFromSecureContext(createSecureContext(contextOptions(material)));
}

/**
 * Calls `onChange` (debounced) when any of the files changes: a renewed certificate is picked up without
 * a restart. Watches the folders, since tools replace files by rename.
 */
export function watchTlsFiles(files: TlsFiles, onChange: () => void, debounceMs = 200): () => void {
  const names = new Set(Object.values(files).map((f) => path.resolve(f)));
  const dirs = new Set([...names].map((f) => path.dirname(f)));
  let timer: NodeJS.Timeout | null = null;
  const watchers: FSWatcher[] = [];
  for (const dir of dirs) {
    try {
      const watcher = watch(dir, (_event, name) => {
        if (name && !names.has(path.join(dir, name.toString()))) return;
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => {
          timer = null;
          onChange();
        }, debounceMs);
        timer.unref();
      });
      watcher.unref();
      watchers.push(watcher);
    } catch {
      // A folder that cannot be watched: rotation then needs a restart; the link still works.
    }
  }
  return () => {
    if (timer) clearTimeout(timer);
    for (const watcher of watchers) watcher.close();
  };
}

/** Synchronous expiry of a certificate file (status page), null when unreadable. */
export function certificateExpiry(file: string): string | null {
  try {
    return new Date(new X509Certificate(readFileSync(file)).validTo).toISOString();
  } catch {
    return null;
  }
}
