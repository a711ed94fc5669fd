/**
 * `node:tls` and `node:https`, loaded the first time something needs them. Importing either initialises
 * Node's TLS layer over OpenSSL (secure contexts, certificate handling), a few MB of every process that
 * holds it (bench/README.md, "Footprint"); a box with no TLS listener configured and no update running
 * never needs it. Types come from `import type`, which loads nothing; the modules come from here.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export function tlsModule(): typeof import('node:tls') {
  return require('node:tls') as typeof import('node:tls');
}

export function httpsModule(): typeof import('node:https') {
  return require('node:https') as typeof import('node:https');
}

/**
 * The `ca` of a listener that asks clients for no certificate: given none, Node puts its bundled root
 * certificates (parsed the first time, ~140 of them) into every secure context it makes, for verifying
 * peers, which such a listener never does. An empty list leaves that out of every start.
 */
export const NO_CLIENT_CERTIFICATE_CA: string[] = [];
