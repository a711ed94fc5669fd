/**
 * Build time only: writes precompiled validators for the factory in ./validator.ts, with Ajv's own
 * standalone code generation (`ajv/dist/standalone`) rather than a serializer of our own. Each schema gets
 * a fresh Ajv instance with its profile's options (so $ids never collide) and one CommonJS file named by
 * its key; the folder gets a package.json that makes its .js files CommonJS, so the factory can load one
 * synchronously. The generated code requires Ajv's small runtime helpers (ajv/dist/runtime/*), resolved
 * from the node_modules above the folder.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Ajv } from 'ajv';
import { type JsonSchema, type ValidatorProfile, WITH_FORMATS, newAjv, validatorKey } from './validator.js';

const require = createRequire(import.meta.url);

export interface SchemaToPrecompile {
  schema: JsonSchema;
  profile: ValidatorProfile;
}

export interface PrecompileResult {
  /** Keys written. */
  written: string[];
  /** Schemas Ajv could not turn into standalone code; the runtime compiles those as before. */
  failed: { profile: ValidatorProfile; key: string; error: string }[];
}

/** Replaces `dir` with one file per distinct schema (same key, one file). */
/**
 * The generated code with every non-ASCII character written as a `\u` escape. V8 keeps a loaded file's
 * source for as long as its functions live, and one character above U+00FF (an em dash in a schema's
 * description) makes it keep the whole text at two bytes per character instead of one. Ajv writes schema
 * text as JSON string literals, where an escape means the same character; a non-ASCII character right after
 * a backslash (which JSON never writes) is refused rather than guessed at.
 */
export function asciiOnly(code: string): string {
  if (/(^|[^\\])(\\\\)*\\[\u0080-\uffff]/.test(code)) throw new Error('a non-ASCII character follows a backslash');
  return code.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function writePrecompiledValidators(schemas: readonly SchemaToPrecompile[], dir: string): PrecompileResult {
  const { _ } = require('ajv') as typeof import('ajv');
  // Generated code for a schema with `format` takes ajv-formats' functions from the installed package.
  const formats = _`require("ajv-formats/dist/formats").fullFormats`;
  const standaloneCode = require('ajv/dist/standalone').default as (ajv: Ajv, validate: unknown) => string;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ type: 'commonjs' })}\n`);
  const result: PrecompileResult = { written: [], failed: [] };
  const seen = new Set<string>();
  for (const { schema, profile } of schemas) {
    const key = validatorKey(schema, profile);
    if (seen.has(key)) continue;
    seen.add(key);
    try {
      const ajv = newAjv(profile, { code: WITH_FORMATS.has(profile) ? { source: true, formats } : { source: true } });
      const code = asciiOnly(standaloneCode(ajv, ajv.compile(schema as Record<string, unknown>)));
      writeFileSync(path.join(dir, `${key}.js`), `// Generated at build time for the ${profile} profile; see runtime/operations/validator.ts.\n${code}\n`);
      result.written.push(key);
    } catch (error) {
      result.failed.push({ profile, key, error: error instanceof Error ? error.message : String(error) });
    }
  }
  return result;
}
