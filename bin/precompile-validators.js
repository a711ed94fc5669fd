#!/usr/bin/env node
/**
 * The build's last step (`npm run build`): precompiles the JSON Schemas a start compiles, so the runtime
 * loads generated code instead of running Ajv's compiler at every start (runtime/operations/validator.ts).
 *
 * Which schemas: the ones a real start asks the validator factory for. This script starts the freshly
 * built runtime once (embedded defaults, no model, a temp state dir, broker and HTTP on free loopback
 * ports), with itself as a `--import` module that records every schema the factory is asked for; when
 * the runtime says it is serving it is stopped, and each recorded schema is written as standalone code
 * into dist/runtime/operations/precompiled/. A schema that changes later gets another key and is compiled
 * at run time, so nothing here can go stale; a schema only some configs use (a device type the defaults
 * lack) is compiled at run time too.
 *
 * If the recording start fails, the build still succeeds (with a warning): the runtime then compiles
 * every schema at start, as it does when run from the sources.
 */
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const validatorModule = pathToFileURL(path.join(root, 'dist/runtime/operations/validator.js')).href;
const { RECORD_ENV, recordStart } = await import(pathToFileURL(path.join(root, 'dist/runtime/operations/schema-recording.js')).href);

if (process.env[RECORD_ENV]) {
  // Loaded with --import into the runtime being recorded: one JSON line per schema.
  const file = process.env[RECORD_ENV];
  const { observeSchemas } = await import(validatorModule);
  observeSchemas((schema, profile) => appendFileSync(file, `${JSON.stringify({ profile, schema })}\n`));
} else {
  await main();
}

async function main() {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'clawbox-precompile-'));
  const recordFile = path.join(scratch, 'schemas.jsonl');
  try {
    await recordStart({ nodeArgs: ['--import', import.meta.url, path.join(root, 'dist/app/main.js'), 'start'], recordFile, stateDir: scratch });
    const schemas = existsSync(recordFile)
      ? readFileSync(recordFile, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line))
      : [];
    const { writePrecompiledValidators } = await import(pathToFileURL(path.join(root, 'dist/runtime/operations/validator-standalone.js')).href);
    const { PRECOMPILED_DIR } = await import(validatorModule);
    const { written, failed } = writePrecompiledValidators(schemas, PRECOMPILED_DIR);
    for (const f of failed) process.stderr.write(`precompile-validators: ${f.profile} schema ${f.key} is compiled at run time instead: ${f.error}\n`);
    process.stdout.write(`precompile-validators: ${written.length} validators a start uses precompiled into ${path.relative(root, PRECOMPILED_DIR)}\n`);
  } catch (error) {
    process.stderr.write(`precompile-validators: WARNING: nothing precompiled, the runtime will compile its schemas at start: ${error instanceof Error ? error.message : String(error)}\n`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
