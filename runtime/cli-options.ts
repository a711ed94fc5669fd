/**
 * Command-line option values, checked as hostile input: a clear USAGE error (exit 64) for a bad one.
 */
import { ClawboxError } from './errors.js';

/**
 * A positive whole number given as `option`'s value (digits only: no sign, point or exponent), at most `max`
 * when given; undefined when the option was not given.
 */
export function positiveIntegerOption(value: string | undefined, option: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const number = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!(number >= 1 && number <= max)) {
    const range = max === Number.MAX_SAFE_INTEGER ? 'a positive integer' : `a whole number from 1 to ${max}`;
    throw new ClawboxError('USAGE', `${option} must be ${range} (got "${value}")`);
  }
  return number;
}
