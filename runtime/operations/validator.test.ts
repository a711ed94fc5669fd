/**
 * The validator factory's two paths: precompiled validators (Ajv standalone code written at build time,
 * here written by the same generator into a temp folder) and compiling at run time. The precompiled path
 * must give the same results and the same coded errors; a schema that changed since the build, or a
 * broken file, must be compiled instead.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { createConfigLoader } from '../config/load.js';
import { composeConfigSchema } from '../config/schema.js';
import { ClawboxError } from '../errors.js';
import {
  BY_CONTENT_LIMIT,
  assertValid,
  expectSchema,
  isPrecompiled,
  observeSchemas,
  schemaProblem,
  schemasObserved,
  usePrecompiledValidators,
  validatorByContent,
  validatorFor,
  validatorForOneUse,
  validatorKey,
} from './validator.js';
import { writePrecompiledValidators } from './validator-standalone.js';
import { CODE_CACHE_FILES_KEPT, holdCodeCacheWrites, useValidatorCodeCache, writeHeldCodeCache } from './validator-code-cache.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const requestSchema = {
  type: 'object',
  required: ['device', 'value'],
  additionalProperties: false,
  properties: { device: { type: 'string', minLength: 1 }, value: { type: 'integer', minimum: 0, maximum: 10, default: 5 } },
} as const;

/** A folder like dist's: the generated files require Ajv's runtime helpers from the node_modules above. */
function precompiledFolder(t: Test): string {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'clawbox-validators-'));
  t.teardown(() => {
    usePrecompiledValidators(null);
    rmSync(scratch, { recursive: true, force: true });
  });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(scratch, 'node_modules'));
  const dir = path.join(scratch, 'dist', 'precompiled');
  mkdirSync(dir, { recursive: true });
  return dir;
}

const badConfig = ['broker:', '  port: 70000', '  bogus: 1', 'mode: sideways', 'log:', '  level: loud', 'http:', '  token: short'].join('\n');

function configOutcome(schema: ReturnType<typeof composeConfigSchema>, file: string) {
  const loader = createConfigLoader(schema);
  const checked = loader.checkConfig({ file, env: {} });
  let thrown: unknown;
  try {
    loader.loadConfig({ file, env: {} });
  } catch (error) {
    thrown = error;
  }
  const empty = loader.checkConfig({ env: { CLAWBOX_MODE: 'local' } });
  return { issues: checked.issues, thrown, defaults: empty.loaded?.config };
}

t.test('a precompiled config validator is used and gives the compiled one\'s defaults, issues and coded error', async (t) => {
  const dir = precompiledFolder(t);
  const configFile = path.join(path.dirname(dir), 'config.yaml');
  writeFileSync(configFile, badConfig);

  usePrecompiledValidators(null);
  const compiledSchema = composeConfigSchema({});
  const compiled = configOutcome(compiledSchema, configFile);
  t.notOk(isPrecompiled(validatorFor(compiledSchema, 'config')), 'without a folder the schema is compiled');
  t.equal(validatorForOneUse(compiledSchema, 'config'), validatorFor(compiledSchema, 'config'), 'and kept: compiling is what costs');

  const precompiledSchema = composeConfigSchema({});
  const { written, failed } = writePrecompiledValidators([{ schema: precompiledSchema, profile: 'config' }], dir);
  t.same(failed, []);
  t.same(written, [validatorKey(precompiledSchema, 'config')]);
  usePrecompiledValidators(dir);
  const precompiled = configOutcome(precompiledSchema, configFile);
  const once = validatorForOneUse(precompiledSchema, 'config');
  t.ok(isPrecompiled(once), 'the config loader uses the precompiled file');
  t.not(validatorForOneUse(precompiledSchema, 'config'), once, 'made again for each use, not kept');
  t.ok(isPrecompiled(validatorFor(precompiledSchema, 'config')), 'validatorFor keeps one from the same file');
  t.equal(validatorForOneUse(precompiledSchema, 'config'), validatorFor(precompiledSchema, 'config'), 'once kept, that one is used');

  t.ok(compiled.issues.length >= 4, `the bad file has several problems (${compiled.issues.length})`);
  t.same(precompiled.issues, compiled.issues, 'the same issues, in the same order');
  t.ok(precompiled.thrown instanceof ClawboxError && compiled.thrown instanceof ClawboxError);
  t.equal((precompiled.thrown as ClawboxError).code, 'CONFIG_INVALID');
  t.equal((precompiled.thrown as ClawboxError).message, (compiled.thrown as ClawboxError).message);
  t.ok(precompiled.defaults, 'an empty config is complete with defaults');
  t.same(precompiled.defaults, compiled.defaults, 'the same defaults applied');
});

t.test('request profile: the same PAYLOAD_INVALID messages and defaults from the precompiled validator', async (t) => {
  const dir = precompiledFolder(t);
  const inputs = [{ device: 'lamp' }, { device: '', value: 3 }, { device: 'lamp', value: 11 }, { device: 'lamp', value: 1, extra: true }, { value: 1 }, 'text'];
  const outcome = () =>
    inputs.map((input) => {
      const copy = structuredClone(input);
      try {
        return { ok: assertValid(requestSchema, copy, 'PAYLOAD_INVALID', 'thing.set') };
      } catch (error) {
        return { code: (error as ClawboxError).code, message: (error as Error).message };
      }
    });
  usePrecompiledValidators(null);
  const compiled = outcome();
  writePrecompiledValidators([{ schema: requestSchema, profile: 'request' }], dir);
  usePrecompiledValidators(dir);
  const precompiled = outcome();
  t.ok(isPrecompiled(validatorFor(requestSchema)));
  t.same(precompiled, compiled);
  t.same(precompiled[0], { ok: { device: 'lamp', value: 5 } }, 'default applied');
  t.match(precompiled[2], { code: 'PAYLOAD_INVALID', message: /value/ });
});

t.test('a schema changed since the build is compiled, never served by the stale file', async (t) => {
  const dir = precompiledFolder(t);
  const built = { ...requestSchema, properties: { ...requestSchema.properties, value: { type: 'integer', minimum: 0, maximum: 10 } } };
  writePrecompiledValidators([{ schema: built, profile: 'request' }], dir);
  usePrecompiledValidators(dir);
  t.ok(isPrecompiled(validatorFor(built)), 'the schema as built is precompiled');

  const changed = { ...requestSchema, properties: { ...requestSchema.properties, value: { type: 'integer', minimum: 0, maximum: 100 } } };
  t.not(validatorKey(changed, 'request'), validatorKey(built, 'request'), 'another schema, another key');
  const validate = validatorFor(changed);
  t.notOk(isPrecompiled(validate), 'compiled at run time');
  t.ok(validate({ device: 'lamp', value: 50 }), 'the changed maximum applies');
  t.notOk(validatorFor(built)({ device: 'lamp', value: 50 }), 'the built one still refuses it');

  t.not(validatorKey(built, 'check'), validatorKey(built, 'request'), 'another profile, another key');
  t.notOk(isPrecompiled(validatorFor(built, 'check')), 'a profile it was not built for is compiled');
});

t.test('a broken precompiled file is ignored and the schema compiled', async (t) => {
  const dir = precompiledFolder(t);
  writeFileSync(path.join(dir, 'package.json'), '{"type":"commonjs"}\n');
  writeFileSync(path.join(dir, `${validatorKey(requestSchema, 'request')}.js`), 'this is not javascript (\n');
  usePrecompiledValidators(dir);
  const validate = validatorFor(requestSchema);
  t.notOk(isPrecompiled(validate));
  t.ok(validate({ device: 'lamp', value: 1 }));
  t.notOk(validate({ device: 'lamp', value: 11 }));
});

t.test('plugin profile: formats and defaults on both paths; schemaProblem refuses a bad schema without compiling', async (t) => {
  const dir = precompiledFolder(t);
  const pluginSchema = {
    type: 'object',
    'x-note': 'an annotation',
    properties: { url: { type: 'string', format: 'uri' }, retries: { type: 'integer', default: 3 } },
  };
  const inputs = [{ url: 'https://example.org/a' }, { url: 'not a uri' }, { url: 'https://example.org', retries: 'many' }];
  const outcome = () =>
    inputs.map((input) => {
      const copy = structuredClone(input) as Record<string, unknown>;
      const validate = validatorFor(pluginSchema, 'plugin');
      return { ok: validate(copy), value: copy, errors: validate.errors?.map((e) => `${e.instancePath} ${e.message}`) ?? null };
    });
  usePrecompiledValidators(null);
  t.equal(schemaProblem(pluginSchema, 'plugin'), undefined, 'a usable schema has no problem');
  const compiled = outcome();
  t.match(schemaProblem({ type: 'object', properties: { a: { type: 'nonsense' } } }, 'plugin'), /must be equal to one of the allowed values|must match/, 'a bad type is named');

  writePrecompiledValidators([{ schema: pluginSchema, profile: 'plugin' }], dir);
  usePrecompiledValidators(dir);
  const file = path.join(dir, `${validatorKey(pluginSchema, 'plugin')}.js`);
  const { cache } = createRequire(import.meta.url);
  t.equal(schemaProblem(pluginSchema, 'plugin'), undefined);
  t.notOk(cache[file], 'a precompiled schema is not loaded by the check: only on first use');
  t.ok(isPrecompiled(validatorFor(pluginSchema, 'plugin')), 'the precompiled file is used');
  t.ok(cache[file], 'loaded on first use');
  const precompiled = outcome();
  t.same(precompiled, compiled);
  t.same(precompiled.map((r) => r.ok), [true, false, false], 'format uri is checked');
  t.equal((precompiled[0]!.value as { retries: number }).retries, 3, 'default applied');
});

t.test('non-ASCII schema text: the precompiled file is ASCII and validates as the compiled one', async (t) => {
  const dir = precompiledFolder(t);
  const schema = {
    type: 'object',
    additionalProperties: false,
    properties: {
      room: { enum: ['küche', 'salle à manger', '客厅', 'garden 🌱'], description: 'where it is — one of four' },
      label: { type: 'string', pattern: '^[a-zé—]+$', default: 'café—bar' },
    },
  };
  const inputs = [{ room: 'küche' }, { room: '客厅', label: 'école—x' }, { room: 'garden 🌱' }, { room: 'kuche' }, { room: 'küche', label: 'Ü' }];
  const outcome = () =>
    inputs.map((input) => {
      const copy = structuredClone(input) as Record<string, unknown>;
      const validate = validatorFor(schema, 'request');
      return { ok: validate(copy), value: copy, errors: validate.errors?.map((e) => `${e.instancePath} ${e.message}`) ?? null };
    });
  usePrecompiledValidators(null);
  const compiled = outcome();
  const { written } = writePrecompiledValidators([{ schema, profile: 'request' }], dir);
  const text = readFileSync(path.join(dir, `${written[0]}.js`), 'utf8');
  t.notOk(/[\u0080-\uffff]/.test(text), 'only ASCII in the file (V8 then keeps its source at one byte per character)');
  usePrecompiledValidators(dir);
  t.ok(isPrecompiled(validatorFor(schema, 'request')));
  const precompiled = outcome();
  t.same(precompiled, compiled);
  t.same(precompiled.map((r) => r.ok), [true, true, true, false, false]);
  t.equal((precompiled[0]!.value as { label: string }).label, 'café—bar', 'the default keeps its characters');
});

t.test('expectSchema tells the recording start of a schema checked later, and compiles nothing', async (t) => {
  const seen: { schema: unknown; profile: string }[] = [];
  t.equal(schemasObserved(), false, 'nothing listens outside a recording start');
  const stop = observeSchemas((schema, profile) => seen.push({ schema, profile }));
  t.equal(schemasObserved(), true);
  const later = { type: 'object', properties: { expected: { type: 'string' } } };
  expectSchema(later);
  expectSchema(later, 'proposal');
  stop();
  t.same(seen, [
    { schema: later, profile: 'request' },
    { schema: later, profile: 'proposal' },
  ]);
  t.equal(schemasObserved(), false);
});

t.test('validatorByContent: a fresh copy of a schema finds its precompiled validator; distinct schemas are bounded', async (t) => {
  const dir = precompiledFolder(t);
  const deviceSchema = { type: 'object', minProperties: 1, additionalProperties: false, properties: { brightness: { type: 'integer', minimum: 0, maximum: 100, unit: '%' } } };
  writePrecompiledValidators([{ schema: deviceSchema, profile: 'proposal' }], dir);
  usePrecompiledValidators(dir);
  const first = validatorByContent(structuredClone(deviceSchema), 'proposal');
  t.ok(isPrecompiled(first), 'precompiled, although the build saw another object');
  t.equal(validatorByContent(structuredClone(deviceSchema), 'proposal'), first, 'the same function for the next copy');
  t.notOk(first({ brightness: 150 }), 'out of range');
  t.match(first.errors?.[0], { keyword: 'maximum', data: 150 }, 'every problem with its value (verbose), as the agent explains it');
  t.ok(first({ brightness: 50 }));

  usePrecompiledValidators(null);
  const compiled = validatorByContent(structuredClone(deviceSchema), 'proposal');
  t.notOk(isPrecompiled(compiled), 'without the file it is compiled (unknown keywords allowed in this profile)');
  t.equal(validatorByContent(structuredClone(deviceSchema), 'proposal'), compiled, 'once');
  const oldest = validatorByContent({ type: 'integer', maximum: 0 }, 'proposal');
  for (let i = 1; i <= BY_CONTENT_LIMIT; i++) validatorByContent({ type: 'integer', maximum: i }, 'proposal');
  t.not(validatorByContent({ type: 'integer', maximum: 0 }, 'proposal'), oldest, 'the least recently used was dropped past the limit');
});

/** In a fresh node (V8's own in-process compilation cache would hide the disk cache): one use of the config validator. */
function oneUseInFreshNode(dir: string, cacheDir: string | null, configFile: string, env: NodeJS.ProcessEnv = {}): { fromCache: boolean; issues: unknown } {
  const body = `
const { composeConfigSchema } = await import(${JSON.stringify(path.join(ROOT, 'runtime/config/schema.ts'))});
const { createConfigLoader } = await import(${JSON.stringify(path.join(ROOT, 'runtime/config/load.ts'))});
const v = await import(${JSON.stringify(path.join(ROOT, 'runtime/operations/validator.ts'))});
const c = await import(${JSON.stringify(path.join(ROOT, 'runtime/operations/validator-code-cache.ts'))});
if (${JSON.stringify(cacheDir)} !== null) c.useValidatorCodeCache(${JSON.stringify(cacheDir)});
v.usePrecompiledValidators(${JSON.stringify(dir)});
const schema = composeConfigSchema({});
const fromCache = v.isFromCodeCache(v.validatorForOneUse(schema, 'config'));
const issues = createConfigLoader(schema).checkConfig({ file: ${JSON.stringify(configFile)}, env: {} }).issues;
setImmediate(() => console.log(JSON.stringify({ fromCache, issues })));`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', body], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  return JSON.parse(out) as { fromCache: boolean; issues: unknown };
}

/** A precompiled folder holding the config validator, and a config file it finds issues in. */
function configValidatorSetup(t: Test): { dir: string; configFile: string } {
  const dir = precompiledFolder(t);
  const configFile = path.join(path.dirname(dir), 'config.yaml');
  writeFileSync(configFile, badConfig);
  writePrecompiledValidators([{ schema: composeConfigSchema({}), profile: 'config' }], dir);
  return { dir, configFile };
}

t.test("a validator compiled for one use runs from V8's code kept by the previous start; a damaged cache is only slower", async (t) => {
  const { dir, configFile } = configValidatorSetup(t);
  const cacheDir = path.join(path.dirname(dir), 'code-cache');

  const first = oneUseInFreshNode(dir, cacheDir, configFile);
  t.equal(first.fromCache, false, 'nothing kept yet: compiled from the file');
  t.ok(Array.isArray(first.issues) && first.issues.length > 0, 'the bad config has issues');
  const kept = readdirSync(cacheDir).filter((name) => name.endsWith('.bin'));
  t.equal(kept.length, 1, 'its code is kept once the use is done');
  const second = oneUseInFreshNode(dir, cacheDir, configFile);
  t.equal(second.fromCache, true, 'the next start runs it from the kept code');
  t.same(second.issues, first.issues, 'with the same issues');

  writeFileSync(path.join(cacheDir, kept[0]!), 'not V8 code');
  const damaged = oneUseInFreshNode(dir, cacheDir, configFile);
  t.equal(damaged.fromCache, false, 'V8 refuses a damaged cache: compiled from the file');
  t.same(damaged.issues, first.issues, 'and still right');
  t.equal(oneUseInFreshNode(dir, cacheDir, configFile).fromCache, true, 'the cache was written again');
  t.equal(readdirSync(cacheDir).filter((name) => name.endsWith('.partial')).length, 0, 'no partial file left');
});

t.test("by default the code is kept in Node's compile cache folder, where that is on", async (t) => {
  const { dir, configFile } = configValidatorSetup(t);
  const nodeCache = path.join(path.dirname(dir), 'node-compile');
  t.equal(oneUseInFreshNode(dir, null, configFile, { NODE_COMPILE_CACHE: nodeCache }).fromCache, false);
  const [version] = readdirSync(nodeCache);
  t.equal(readdirSync(path.join(nodeCache, version!, 'validators')).filter((name) => name.endsWith('.bin')).length, 1, "in <Node's folder for this version>/validators");
  t.equal(oneUseInFreshNode(dir, null, configFile, { NODE_COMPILE_CACHE: nodeCache }).fromCache, true, 'used by the next start');
  t.equal(oneUseInFreshNode(dir, null, configFile, { NODE_DISABLE_COMPILE_CACHE: '1' }).fromCache, false, "not used with Node's cache off");
});

t.test('the kept code is bounded, and off means nothing is read or written', async (t) => {
  const dir = precompiledFolder(t);
  const cacheDir = path.join(path.dirname(dir), 'code-cache');
  useValidatorCodeCache(cacheDir);
  t.teardown(() => useValidatorCodeCache(undefined));
  usePrecompiledValidators(dir);
  const nextTask = () => new Promise((resolve) => setImmediate(resolve));
  for (let i = 0; i < CODE_CACHE_FILES_KEPT + 2; i++) {
    const schema = { type: 'object', properties: { [`field${i}`]: { type: 'string' } } };
    writePrecompiledValidators([{ schema, profile: 'config' }], dir);
    t.ok(isPrecompiled(validatorForOneUse(schema, 'config')));
    await nextTask();
  }
  t.equal(readdirSync(cacheDir).filter((name) => name.endsWith('.bin')).length, CODE_CACHE_FILES_KEPT, 'the oldest files give way');

  useValidatorCodeCache(null);
  rmSync(cacheDir, { recursive: true });
  const schema = { type: 'object', properties: { off: { type: 'string' } } };
  writePrecompiledValidators([{ schema, profile: 'config' }], dir);
  validatorForOneUse(schema, 'config');
  await nextTask();
  t.notOk(existsSync(cacheDir), 'off: no folder written');
});

t.test('held writes wait for writeHeldCodeCache (a start makes them once serving), then writes come as before', async (t) => {
  const dir = precompiledFolder(t);
  const cacheDir = path.join(path.dirname(dir), 'code-cache');
  useValidatorCodeCache(cacheDir);
  usePrecompiledValidators(dir);
  holdCodeCacheWrites();
  t.teardown(() => {
    writeHeldCodeCache();
    useValidatorCodeCache(undefined);
  });
  const nextTask = () => new Promise((resolve) => setImmediate(resolve));
  const schema = (name: string) => ({ type: 'object', properties: { [name]: { type: 'string' } } });
  writePrecompiledValidators([{ schema: schema('held'), profile: 'config' }, { schema: schema('later'), profile: 'config' }], dir);
  t.ok(isPrecompiled(validatorForOneUse(schema('held'), 'config')));
  t.ok(isPrecompiled(validatorForOneUse(schema('held'), 'config')), 'used twice while held');
  await nextTask();
  const kept = () => (existsSync(cacheDir) ? readdirSync(cacheDir).filter((name) => name.endsWith('.bin')) : []);
  t.same(kept(), [], 'nothing written while held');
  writeHeldCodeCache();
  t.equal(kept().length, 1, 'written when released, once for the two uses');
  validatorForOneUse(schema('later'), 'config');
  await nextTask();
  t.equal(kept().length, 2, 'a later use writes once its task is done');
});
