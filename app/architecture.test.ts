/**
 * The layout rules, checked on the sources:
 * - runtime/ is the core and imports no feature folder and not the composition root (its test helpers neither);
 * - a feature folder reaches another feature only through that feature's index.ts;
 * - the shipped build (tsconfig.build.json) compiles no test code.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FEATURES = ['agent', 'channels', 'devices', 'models', 'plugins', 'knowledge', 'discovery', 'cluster', 'brain', 'update'] as const;
const TOP = ['runtime', 'app', ...FEATURES] as const;

/** Test code: never shipped, and free to reach anywhere. */
export function isTestFile(relative: string): boolean {
  return (
    /\.test\.ts$/.test(relative) ||
    /(^|\/)test-[^/]+\.ts$/.test(relative) ||
    /(^|\/)testing(\.ts$|\/)/.test(relative) ||
    /(^|\/)(test|fixtures|test-fixtures)\//.test(relative)
  );
}

function sourceFiles(folder: string): string[] {
  return (readdirSync(path.join(ROOT, folder), { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.join(folder, f).split(path.sep).join('/'));
}

/** Every relative import (static or dynamic) of a file, resolved to a repo-relative path. */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    found.push(path.posix.normalize(path.posix.join(path.posix.dirname(file), match[1]!)));
  }
  return found;
}

const topOf = (relative: string) => relative.split('/')[0]!;

t.test('runtime/ imports no feature folder and not the composition root (test helpers included)', async (t) => {
  const offenders: string[] = [];
  // Only the test files themselves may reach out (e.g. for a whole-app context); helpers they share may not.
  for (const file of sourceFiles('runtime').filter((f) => !f.endsWith('.test.ts'))) {
    for (const target of importsOf(file)) {
      if (topOf(target) !== 'runtime') offenders.push(`${file} -> ${target}`);
    }
  }
  t.same(offenders, [], 'core files import only core files');
});

t.test('a feature reaches another feature only through its index.ts', async (t) => {
  const offenders: string[] = [];
  for (const feature of FEATURES) {
    for (const file of sourceFiles(feature).filter((f) => !isTestFile(f))) {
      for (const target of importsOf(file)) {
        const top = topOf(target);
        if (top === feature || top === 'runtime') continue;
        if (top === 'app' || !TOP.includes(top as (typeof TOP)[number])) {
          offenders.push(`${file} -> ${target}`);
        } else if (target !== `${top}/index.js`) {
          offenders.push(`${file} -> ${target} (not ${top}/index.js)`);
        }
      }
    }
  }
  t.same(offenders, [], 'no feature reaches into another one, nor into the composition root');
});

t.test('the shipped build compiles no test code', async (t) => {
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const listed = execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--listFilesOnly'], { cwd: ROOT, encoding: 'utf8' });
  const ours = listed
    .split('\n')
    .map((line) => path.relative(ROOT, line.trim()).split(path.sep).join('/'))
    .filter((f) => TOP.includes(topOf(f) as (typeof TOP)[number]));
  t.ok(ours.includes('app/main.ts'), 'the list is the real build (it holds the entry point)');
  t.same(
    ours.filter((f) => isTestFile(f)),
    [],
    'no test, test helper or fixture is compiled into dist/',
  );
});

t.test('the rules catch what they are meant to catch', async (t) => {
  t.ok(isTestFile('devices/drivers/testing/conformance.ts'));
  t.ok(isTestFile('runtime/broker/test-helpers.ts'));
  t.ok(isTestFile('devices/fixtures/socat.ts'));
  t.ok(isTestFile('agent/scheduler/testing.ts'));
  t.notOk(isTestFile('runtime/broker/broker.ts'));
  t.notOk(isTestFile('devices/drivers/serial-line.ts'));
});
