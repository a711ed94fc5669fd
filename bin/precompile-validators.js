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
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const validatorModule = pathToFileURL(path.join(root, 'dist/runtime/operations/validator.js')).href;
const RECORD_ENV = 'PRECOMPILE_VALIDATORS_RECORD';
const START_TIMEOUT_MS = 120_000;

if (process.env[RECORD_ENV]) {
  // Loaded with --import into the runtime being recorded: one JSON line per schema.
  const file = process.env[RECORD_ENV];
  const { observeSchemas } = await import(validatorModule);
  observeSchemas((schema, profile) => appendFileSync(file, `${JSON.stringify({ profile, schema })}\n`));
} else {
  await main();
}

/** Starts the built runtime with the recorder and resolves once it logged that it is serving. */
function recordStart(recordFile, stateDir) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', import.meta.url, path.join(root, 'dist/app/main.js'), 'start'], {
      cwd: stateDir,
      env: {
        ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('CLAWBOX_') && name !== 'NODE_COMPILE_CACHE')),
        [RECORD_ENV]: recordFile,
        CLAWBOX_CONFIG: '',
        CLAWBOX_MODE: 'local',
        CLAWBOX_STATE_DIR: stateDir,
        CLAWBOX_BROKER_PORT: '0',
        CLAWBOX_HTTP_PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let serving = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the runtime did not say it was serving within ${START_TIMEOUT_MS / 1000} s`));
    }, START_TIMEOUT_MS);
    child.stdout.on('data', (chunk) => {
      out = (out + chunk.toString()).slice(-20_000);
      if (!serving && /"mqttPort":\d+/.test(out)) {
        serving = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (chunk) => {
      err = (err + chunk.toString()).slice(-4000);
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (serving) resolve();
      else reject(new Error(`the runtime exited (${code ?? signal}) before serving: ${(err || out).trim().slice(-1000)}`));
    });
  });
}

async function main() {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'clawbox-precompile-'));
  const recordFile = path.join(scratch, 'schemas.jsonl');
  try {
    await recordStart(recordFile, scratch);
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
