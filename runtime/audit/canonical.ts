/**
 * Canonical JSON: the one byte form that record hashes and input digests are computed over, so a record
 * read back from its line hashes exactly as it did when written.
 *
 *   1. The value is first taken through JSON (JSON.stringify then JSON.parse): toJSON is applied, undefined
 *      object members are dropped, undefined array items and non-finite numbers become null.
 *   2. It is then written with no whitespace, object members sorted by key in UTF-16 code unit order,
 *      strings and numbers exactly as JSON.stringify writes them (shortest round-trip numbers).
 *
 * This matches RFC 8785 (JCS) for the values the log holds (its number and string forms are ECMAScript's).
 */
import { createHash } from 'node:crypto';

/** A value as JSON.parse returns it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** The value as it reads back from JSON. Throws on what JSON cannot hold (BigInt, cycles). */
export function toJsonValue(value: unknown): JsonValue {
  const text = JSON.stringify(value);
  return text === undefined ? null : (JSON.parse(text) as JsonValue);
}

function write(value: JsonValue): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(write).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${write(value[key]!)}`).join(',')}}`;
}

export function canonicalJson(value: unknown): string {
  return write(toJsonValue(value));
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * `sha256:<hex>` of the canonical JSON of `input`: what a record keeps instead of the raw input, which may
 * hold secrets. Equal inputs (whatever their key order) give equal digests.
 */
export function digest(input: unknown): string {
  return `sha256:${sha256Hex(canonicalJson(input))}`;
}
