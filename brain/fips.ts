/** FIPS mode of this process (OpenSSL's FIPS provider), on its own so checking it loads no gRPC. */
import { getFips } from 'node:crypto';
import { ClawboxError } from '../runtime/errors.js';

/** Whether this process runs with the OpenSSL FIPS provider. */
export function fipsEnabled(): boolean {
  try {
    return getFips() === 1;
  } catch {
    return false;
  }
}

/** brain.require_fips: refuse to start the link without the FIPS provider. */
export function checkFips(required: boolean): boolean {
  const fips = fipsEnabled();
  if (required && !fips) {
    throw new ClawboxError(
      'FIPS_REQUIRED',
      'brain.require_fips is set but Node does not run with the OpenSSL FIPS provider (start it with --enable-fips or an OpenSSL config that activates the fips provider)',
    );
  }
  return fips;
}

