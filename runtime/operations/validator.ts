/**
 * The one validator factory: every JSON Schema the runtime checks (operation inputs, config, device
 * commands, manifests) is compiled here, once per schema object, on one Ajv instance per profile. Errors
 * come back as one readable line for the caller.
 *
 * Profiles differ only where the data needs it: config lists every problem and applies defaults; check
 * leaves the value as it is; device commands compare multipleOf with a float tolerance; requests stop at
 * the first problem; plugin schemas (written by plugin authors: not strict, formats known) are compiled
 * each on an instance of its own, so their $ids cannot collide with ours or each other's. The agent checks
 * model proposals against device schemas by content (agent/validate.ts), since each snapshot is a fresh copy.
 *
 * Compiling is the costly part of a start (the composed config schema most of all), so the build
 * precompiles the schemas a start compiles (bin/precompile-validators.js, Ajv's standalone code, one
 * CommonJS file per schema named by its key) into dist. A schema's key hashes the schema, its profile's
 * options and Ajv's version: a changed schema has another key and is compiled here as before, so a stale
 * file is never used. Ajv itself is loaded only when something has to be compiled.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Ajv, ErrorObject, Options, ValidateFunction } from 'ajv';
import { ClawboxError, type ErrorCode } from '../errors.js';
import { compileWithCodeCache } from './validator-code-cache.js';

export type JsonSchema = Readonly<Record<string, unknown>>;

export type ValidatorProfile = 'request' | 'config' | 'check' | 'command' | 'plugin' | 'proposal';

export const VALIDATOR_OPTIONS: Readonly<Record<ValidatorProfile, Options>> = {
  request: { allErrors: false, strict: true, allowUnionTypes: true, useDefaults: true, coerceTypes: false },
  // verbose: errors carry the offending value and schema, so config messages can name both.
  config: { allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true, useDefaults: true, verbose: true },
  // Validates without changing the value (no defaults), e.g. an entry about to be written to the config.
  check: { allErrors: true, strict: true, allowUnionTypes: true },
  command: { allErrors: false, strict: true, multipleOfPrecision: 6 },
  // Plugin authors use annotations freely; defaults are applied to tool arguments and plugin config.
  plugin: { allErrors: true, useDefaults: true, strict: false, allowUnionTypes: true },
  // The agent's check of a proposed command against a device's schema: every problem, with the offending
  // value, to explain in words; device schemas may carry keywords (unit hints) Ajv does not know.
  proposal: { allErrors: true, strict: false, verbose: true },
};

/** Profiles whose schemas may use `format` (ajv-formats' full set). */
export const WITH_FORMATS: ReadonlySet<ValidatorProfile> = new Set(['plugin']);
/** Profiles whose schemas each get an Ajv instance of their own (schemas from outside, $ids unknown). */
const ISOLATED: ReadonlySet<ValidatorProfile> = new Set(['plugin']);

const require = createRequire(import.meta.url);

/** Bumped when the precompiled files change shape, so older ones stop matching. */
const KEY_FORMAT = 1;

/** Where the build writes the precompiled validators: beside this module in dist, absent in the sources. */
export const PRECOMPILED_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'precompiled');

/** null: compile everything; undefined: not looked at yet (the folder exists only in a build). */
let precompiledDir: string | null | undefined;
let ajvVersion: string | undefined;
const instances = new Map<ValidatorProfile, Ajv>();
const compiled = new Map<ValidatorProfile, WeakMap<JsonSchema, ValidateFunction>>();
const fromPrecompiled = new WeakSet<ValidateFunction>();
const fromCodeCache = new WeakSet<ValidateFunction>();
/** validatorByContent's validators by profile and schema text, least recently used first. */
const byContent = new Map<string, ValidateFunction>();
/** Distinct schemas validatorByContent keeps (each a compiled function). */
export const BY_CONTENT_LIMIT = 256;
const observers = new Set<(schema: JsonSchema, profile: ValidatorProfile) => void>();

/** The name of a schema's precompiled file: a hash of everything that shapes the compiled code. */
export function validatorKey(schema: JsonSchema, profile: ValidatorProfile): string {
  ajvVersion ??= (require('ajv/package.json') as { version: string }).version;
  return createHash('sha256')
    .update(`${KEY_FORMAT}\0${ajvVersion}\0${profile}\0${JSON.stringify(VALIDATOR_OPTIONS[profile])}\0${JSON.stringify(schema)}`)
    .digest('hex')
    .slice(0, 40);
}

/** The build's file for a schema, if there is one; tells the build's recording start of the schema first. */
function precompiledFile(schema: JsonSchema, profile: ValidatorProfile): string | undefined {
  for (const observe of observers) observe(schema, profile);
  if (precompiledDir === undefined) precompiledDir = existsSync(PRECOMPILED_DIR) ? PRECOMPILED_DIR : null;
  if (!precompiledDir) return undefined;
  const file = path.join(precompiledDir, `${validatorKey(schema, profile)}.js`);
  return existsSync(file) ? file : undefined;
}

/** The precompiled validator in `file`, or undefined (unreadable: then it is compiled). */
function loadPrecompiled(file: string): ValidateFunction | undefined {
  try {
    const validate = require(file) as ValidateFunction;
    return typeof validate === 'function' ? validate : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A precompiled validator compiled for one use, outside the module cache: once the caller drops it, V8
 * can free its code and source. undefined: no file, or unreadable (then it is compiled and kept).
 */
function loadPrecompiledForOneUse(file: string): ValidateFunction | undefined {
  try {
    const module = { exports: undefined as unknown };
    // The same wrapper CommonJS gives a file; `require` resolves Ajv's runtime helpers from the folder.
    // V8's code for it is kept between starts where Node's compile cache is on (validator-code-cache.ts).
    const { wrapper, cached } = compileWithCodeCache(readFileSync(file, 'utf8'), file);
    wrapper(module, undefined, createRequire(file));
    if (typeof module.exports !== 'function') return undefined;
    if (cached) fromCodeCache.add(module.exports as ValidateFunction);
    return module.exports as ValidateFunction;
  } catch {
    return undefined;
  }
}

/**
 * Ajv's module, loaded on first use: a start that finds every schema precompiled never loads it. Code that
 * needs an Ajv instance of its own (schemas it checks by content, a client's schemas) takes it from here.
 */
export function loadAjv(): typeof import('ajv') {
  return require('ajv') as typeof import('ajv');
}

/** A new Ajv instance with a profile's options (and formats where the profile has them); `extra` for the build. */
export function newAjv(profile: ValidatorProfile, extra: Options = {}): Ajv {
  const ajv = new (loadAjv().Ajv)({ ...VALIDATOR_OPTIONS[profile], ...extra });
  if (WITH_FORMATS.has(profile)) (require('ajv-formats') as typeof import('ajv-formats')).default(ajv);
  return ajv;
}

function compile(schema: JsonSchema, profile: ValidatorProfile): ValidateFunction {
  let ajv = instances.get(profile);
  if (!ajv || ISOLATED.has(profile)) {
    ajv = newAjv(profile);
    if (!ISOLATED.has(profile)) instances.set(profile, ajv);
  }
  return ajv.compile(schema as Record<string, unknown>);
}

function precompiledFor(schema: JsonSchema, profile: ValidatorProfile): ValidateFunction | undefined {
  const file = precompiledFile(schema, profile);
  return file ? loadPrecompiled(file) : undefined;
}

function cacheOf(profile: ValidatorProfile): WeakMap<JsonSchema, ValidateFunction> {
  let cache = compiled.get(profile);
  if (!cache) {
    cache = new WeakMap();
    compiled.set(profile, cache);
  }
  return cache;
}

export function validatorFor<T>(schema: JsonSchema, profile: ValidatorProfile = 'request'): ValidateFunction<T> {
  const cache = cacheOf(profile);
  let validate = cache.get(schema);
  if (!validate) {
    validate = precompiledFor(schema, profile);
    if (validate) fromPrecompiled.add(validate);
    else validate = compile(schema, profile);
    cache.set(schema, validate);
  }
  return validate as ValidateFunction<T>;
}

/**
 * A validator found by the schema's content, for callers that get a fresh copy of a schema for each check
 * (the agent, from device snapshots): one per distinct schema and profile, the least recently used dropped
 * past BY_CONTENT_LIMIT. Precompiled where the build saw the schema (expectSchema), else compiled.
 */
export function validatorByContent<T>(schema: JsonSchema, profile: ValidatorProfile): ValidateFunction<T> {
  // The schema's text, not validatorKey's hash: a check on the agent's path pays one stringify, and the
  // hash is taken only on a miss (precompiledFor).
  const key = `${profile}\0${JSON.stringify(schema)}`;
  let validate = byContent.get(key);
  if (validate) {
    byContent.delete(key);
  } else {
    validate = precompiledFor(schema, profile);
    if (validate) fromPrecompiled.add(validate);
    else validate = compile(schema, profile);
    if (byContent.size >= BY_CONTENT_LIMIT) byContent.delete(byContent.keys().next().value as string);
  }
  byContent.set(key, validate);
  return validate as ValidateFunction<T>;
}

/**
 * A validator for a schema checked rarely (the config: at start and when it changes), not kept by the
 * factory: a precompiled one is compiled from its file for this use, so once the caller lets go of it V8
 * can free it (the config validator is the largest file a start loads, and an idle box holds it for
 * nothing). Without a precompiled file this is validatorFor's, compiled once and kept: compiling with Ajv
 * is what costs.
 */
export function validatorForOneUse<T>(schema: JsonSchema, profile: ValidatorProfile): ValidateFunction<T> {
  const kept = cacheOf(profile).get(schema);
  if (kept) return kept as ValidateFunction<T>;
  const file = precompiledFile(schema, profile);
  const validate = file ? loadPrecompiledForOneUse(file) : undefined;
  if (!validate) return validatorFor<T>(schema, profile);
  fromPrecompiled.add(validate);
  return validate as ValidateFunction<T>;
}

let metaChecker: Ajv | undefined;

/**
 * Why a schema from outside (a plugin's) cannot be compiled for `profile`, or undefined when it can: checked
 * against the JSON Schema meta-schema without compiling it, so a caller can refuse a bad schema early and
 * still compile it on first use. A schema precompiled at build time compiled then: it needs no check, and
 * nothing is loaded for it until its first use (a plugin that is never called costs no validator).
 */
export function schemaProblem(schema: JsonSchema, profile: ValidatorProfile): string | undefined {
  if (cacheOf(profile).has(schema) || precompiledFile(schema, profile)) return undefined;
  metaChecker ??= new (loadAjv().Ajv)({ strict: false, allowUnionTypes: true, validateFormats: false });
  return metaChecker.validateSchema(schema as Record<string, unknown>) ? undefined : metaChecker.errorsText(metaChecker.errors);
}

/** Whether a validator compiled for one use came from V8's code kept by an earlier start (validator-code-cache.ts). */
export function isFromCodeCache(validate: ValidateFunction): boolean {
  return fromCodeCache.has(validate);
}

/** Whether a validator came from a precompiled file (true) or was compiled at run time. */
export function isPrecompiled(validate: ValidateFunction): boolean {
  return fromPrecompiled.has(validate);
}

/**
 * Reads precompiled validators from `dir` from now on (null: compile everything). Validators handed out
 * already stay as they are. The build and the tests use it; the runtime keeps the default.
 */
export function usePrecompiledValidators(dir: string | null): void {
  precompiledDir = dir;
  compiled.clear();
  byContent.clear();
}

/**
 * Says that `schema` will be checked later (an operation's input, checked on its first call), without
 * compiling or loading anything: the build's recording start precompiles what it hears of here as it does
 * what a start compiles, so a box's first request loads a precompiled validator instead of Ajv's compiler.
 */
export function expectSchema(schema: JsonSchema, profile: ValidatorProfile = 'request'): void {
  for (const observe of observers) observe(schema, profile);
}

/** Whether anything listens to expectSchema (the build's recording start): callers skip gathering schemas otherwise. */
export function schemasObserved(): boolean {
  return observers.size > 0;
}

/** Calls `observe` with every schema the factory is asked for the first time (the build records a start with it). */
export function observeSchemas(observe: (schema: JsonSchema, profile: ValidatorProfile) => void): () => void {
  observers.add(observe);
  return () => observers.delete(observe);
}

/** Validates in place (defaults applied) or throws `code` naming the first problem. */
export function assertValid<T>(schema: JsonSchema, value: unknown, code: ErrorCode = 'PAYLOAD_INVALID', what = 'request'): T {
  const validate = validatorFor<T>(schema);
  if (!validate(value)) throw new ClawboxError(code, `${what} ${describeError(validate.errors?.[0])}`);
  return value;
}

function describeError(error: ErrorObject | undefined): string {
  if (!error) return 'is not valid';
  const where = error.instancePath ? `field ${error.instancePath.slice(1).replaceAll('/', '.')}` : 'body';
  if (error.keyword === 'additionalProperties') {
    return `has an unknown field "${String((error.params as { additionalProperty?: unknown }).additionalProperty).slice(0, 64)}"`;
  }
  if (error.keyword === 'required') {
    return `needs field "${String((error.params as { missingProperty?: unknown }).missingProperty)}"`;
  }
  return `${where} ${error.message ?? 'is not valid'}`;
}
