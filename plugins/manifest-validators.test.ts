/**
 * What a plugin's schemas cost before it is used: with the build's precompiled validators, parsing a manifest
 * (every built-in plugin's is parsed at start, enabled or not) loads none of them; a tool's argument
 * validator is loaded on the tool's first call and kept; the config validator is loaded for each check and
 * not kept. Results are those of the compiled schemas.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { isPrecompiled, usePrecompiledValidators, validatorKey } from '../runtime/operations/validator.js';
import { writePrecompiledValidators } from '../runtime/operations/validator-standalone.js';
import { formatAjvErrors, parseManifest } from './manifest.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const argumentsSchema = { type: 'object', required: ['x'], properties: { x: { type: 'number' } }, additionalProperties: false };
const resultSchema = { type: 'object', properties: { y: { type: 'number' } } };
const configSchema = { type: 'object', properties: { url: { type: 'string', format: 'uri' }, retries: { type: 'integer', default: 3 } }, additionalProperties: false };
const manifestText = JSON.stringify({
  name: 'squarer',
  version: '1.0.0',
  kind: 'tool',
  runtime: 'node',
  entry: 'index.js',
  isolation: 'worker',
  tools: [{ name: 'square', description: 'squares x', arguments: argumentsSchema, result: resultSchema }],
  config: configSchema,
  permissions: {},
});

t.test('a parsed manifest holds no validator; a tool loads its own on first call, a config check loads and lets go', async (t) => {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'clawbox-plugin-validators-'));
  t.teardown(() => {
    usePrecompiledValidators(null);
    rmSync(scratch, { recursive: true, force: true });
  });
  // A folder like dist's: the generated files require Ajv's runtime helpers from the node_modules above.
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(scratch, 'node_modules'));
  const dir = path.join(scratch, 'precompiled');
  mkdirSync(dir);
  writePrecompiledValidators(
    [argumentsSchema, resultSchema, configSchema].map((schema) => ({ schema, profile: 'plugin' as const })),
    dir,
  );
  usePrecompiledValidators(dir);
  const { cache } = createRequire(import.meta.url);
  const loaded = (schema: Record<string, unknown>) => Boolean(cache[path.join(dir, `${validatorKey(schema, 'plugin')}.js`)]);

  const compiled = parseManifest(manifestText, 'squarer/clawbox.plugin.json');
  t.same([loaded(argumentsSchema), loaded(resultSchema), loaded(configSchema)], [false, false, false], 'parsing loads no validator');

  const tool = compiled.tools.get('square')!;
  t.ok(tool.validateArgs({ x: 2 }));
  t.notOk(tool.validateArgs({ x: 'two' }));
  t.match(formatAjvErrors(tool.validateArgs.errors), /x must be number/);
  t.ok(isPrecompiled(tool.validateArgs), 'the precompiled file is used');
  t.equal(tool.validateArgs, tool.validateArgs, 'kept for the next call');
  t.same([loaded(argumentsSchema), loaded(resultSchema)], [true, false], 'the first call loaded the arguments validator only');

  const config: Record<string, unknown> = { url: 'https://example.org/' };
  t.equal(compiled.checkConfig(config), undefined);
  t.same(config, { url: 'https://example.org/', retries: 3 }, 'defaults applied');
  t.match(formatAjvErrors(compiled.checkConfig({ url: 'not a uri', extra: 1 })), /must NOT have additional properties \("extra"\)/);
  t.match(formatAjvErrors(compiled.checkConfig({ url: 'not a uri' })), /url must match format "uri"/);
  t.notOk(loaded(configSchema), 'the config validator is not in the module cache: once the check is done it can go');
});

t.test('without precompiled validators a manifest is still checked and a bad schema refused when parsed', async (t) => {
  usePrecompiledValidators(null);
  const compiled = parseManifest(manifestText, 'squarer/clawbox.plugin.json');
  t.equal(compiled.checkConfig({}), undefined);
  t.notOk(compiled.tools.get('square')!.validateArgs({}));
  const bad = JSON.parse(manifestText) as { config: Record<string, unknown> };
  bad.config = { type: 'object', properties: { a: { type: 'nonsense' } } };
  t.throws(() => parseManifest(JSON.stringify(bad), 'bad/clawbox.plugin.json'), { code: 'PLUGIN_INVALID', message: /config is not a usable JSON Schema/ });
});
