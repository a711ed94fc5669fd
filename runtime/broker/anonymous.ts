/**
 * Who may connect without a username (config `broker.anonymous`). `auto` lets loopback clients in on a
 * developer machine (local mode) and nobody on an installed box (appliance mode).
 */
import { isIP } from 'node:net';
import type { Config } from '../config/schema.js';

export type AnonymousPolicy = Config['broker']['anonymous'];

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms. Anything unknown is not loopback. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(plain) === 4) return plain.startsWith('127.');
  return plain === '::1' || plain === '0:0:0:0:0:0:0:1';
}

export function anonymousAllowed(policy: AnonymousPolicy, mode: Config['mode'], address: string | undefined): boolean {
  switch (policy) {
    case 'always':
      return true;
    case 'never':
      return false;
    case 'loopback':
      return isLoopbackAddress(address);
    case 'auto':
      return mode === 'local' && isLoopbackAddress(address);
  }
}
