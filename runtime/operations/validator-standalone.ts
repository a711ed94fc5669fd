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
import { asciiOnly } from '../system/ascii-source.js';
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
      // ASCII: V8 then keeps the file's source at one byte per character (see ascii-source.ts). Ajv writes
      // schema text as JSON strings, never as templates.
      const code = asciiOnly(standaloneCode(ajv, ajv.compile(schema as Record<string, unknown>)), { withoutTemplates: true });
      writeFileSync(path.join(dir, `${key}.js`), `// Generated at build time for the ${profile} profile; see runtime/operations/validator.ts.\n${code}\n`);
      result.written.push(key);
    } catch (error) {
      result.failed.push({ profile, key, error: error instanceof Error ? error.message : String(error) });
    }
  }
  return result;
}
