/**
 * Runs once before the test files (`before` in .taprc): gives the sources the precompiled validators the
 * build gives dist (bin/precompile-validators.js), so each of the suite's few hundred Node processes that
 * starts the runtime or its CLI from the sources loads generated code instead of running Ajv's compiler
 * over the same schemas again — the largest single cost of such a start after loading modules.
 *
 * It records the schemas one start from the sources asks the validator factory for, and writes them with
 * the build's own writer into runtime/operations/precompiled/ (git-ignored), which the factory reads when
 * that folder exists. A file's name is a hash of its schema, its profile's options and Ajv's version, so a
 * schema changed later is compiled at run time as before: nothing here can make a test see a stale
 * validator. Only the folder's freshness is tracked (a fingerprint of the source files' sizes and times),
 * so an unchanged tree skips the recording start.
 *
 * Whatever fails here, the tests still run: every schema is then compiled at run time, as without it.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RECORD_ENV, recordStart } from '../runtime/operations/schema-recording.js';
import { observeSchemas, PRECOMPILED_DIR } from '../runtime/operations/validator.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STAMP = '.sources-fingerprint';
/** The folders whose code can define a schema a start uses (tsconfig.build.json's). */
const SOURCE_DIRS = ['runtime', 'app', 'agent', 'channels', 'devices', 'plugins', 'models', 'knowledge', 'discovery', 'brain', 'cluster', 'update'];

if (process.env[RECORD_ENV]) {
  // Loaded with --import into the start being recorded: one JSON line per schema.
  const file = process.env[RECORD_ENV];
  observeSchemas((schema, profile) => appendFileSync(file, `${JSON.stringify({ profile, schema })}\n`));
} else {
  await main();
}

async function main(): Promise<void> {
  const fingerprint = sourcesFingerprint();
  const stampFile = path.join(PRECOMPILED_DIR, STAMP);
  if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === fingerprint) return;
  const scratch = mkdtempSync(path.join(tmpdir(), 'clawbox-test-precompile-'));
  // Written beside the folder and renamed into place, so a test already running elsewhere never loads a
  // half-written file (it would compile that schema instead anyway).
  const fresh = `${PRECOMPILED_DIR}.${process.pid}.tmp`;
  try {
    const recordFile = path.join(scratch, 'schemas.jsonl');
    await recordStart({
      nodeArgs: ['--import', import.meta.resolve('tsx'), '--import', import.meta.url, path.join(ROOT, 'app', 'main.ts'), 'start'],
      recordFile,
      stateDir: scratch,
      // tap runs this file with V8 coverage on (it does not pass `disable-coverage` to `before`); the
      // recording start needs none, and would otherwise add a coverage table to every run's output.
      env: { _TAPJS_PROCESSINFO_COVERAGE_: '0' },
    });
    const schemas = readFileSync(recordFile, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
    const { writePrecompiledValidators } = await import('../runtime/operations/validator-standalone.js');
    const { written, failed } = writePrecompiledValidators(schemas, fresh);
    writeFileSync(path.join(fresh, STAMP), fingerprint);
    rmSync(PRECOMPILED_DIR, { recursive: true, force: true });
    renameSync(fresh, PRECOMPILED_DIR);
    process.stdout.write(`# precompiled ${written.length} validators for the sources${failed.length ? ` (${failed.length} compiled at run time)` : ''}\n`);
  } catch (error) {
    process.stdout.write(`# no precompiled validators for the sources (schemas are compiled at run time): ${error instanceof Error ? error.message : String(error)}\n`);
  } finally {
    rmSync(fresh, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Sizes and modification times of every source file outside tests, plus the installed Ajv's version. */
function sourcesFingerprint(): string {
  const hash = createHash('sha256');
  hash.update(readFileSync(path.join(ROOT, 'node_modules', 'ajv', 'package.json')));
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && !entry.name.startsWith('precompiled') && !entry.name.startsWith('.')) walk(full);
      } else if (/\.(ts|json)$/.test(entry.name) && !entry.name.endsWith('.test.ts')) {
        const stat = statSync(full);
        hash.update(`${full}\0${stat.size}\0${stat.mtimeMs}\n`);
      }
    }
  };
  for (const dir of SOURCE_DIRS) if (existsSync(path.join(ROOT, dir))) walk(path.join(ROOT, dir));
  return hash.digest('hex');
}
