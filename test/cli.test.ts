import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { tinyModel } from '../models/testing/fixtures.js';
import { verifyPassword } from '../runtime/auth/password.js';
import { ERROR_CATALOG, type ErrorCode } from '../runtime/errors.js';
import { type CliResult, ROOT, runCli, runInProcess, spawnCli } from './cli-helpers.js';

// Each spawned CLI starts tsx, which takes seconds on a loaded machine; this file spawns a few dozen.
t.setTimeout(300_000);

const pkg = (await import('../package.json', { with: { type: 'json' } })).default as { version: string };

function configFile(text: string): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'clawbox-cli-')), 'config.yaml');
  writeFileSync(file, text);
  return file;
}

t.test('--version and --help', async (t) => {
  const version = await runCli(['--version']);
  t.equal(version.code, 0);
  t.equal(version.stdout.trim(), pkg.version);
  // The entry and its exit status are proven by the spawned --version; the text comes from execute().
  const help = await runInProcess(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /clawbox start/);
  t.match(help.stdout, /78 +the configuration is invalid/);
});

t.test('config check prints every problem with its path and exits 1', async (t) => {
  const file = configFile('broker:\n  port: -1\n  colour: blue\nhttp:\n  port: x\n');
  const result = await runCli(['config', 'check', file]);
  t.equal(result.code, 1);
  t.match(result.stderr, /config invalid \(3 problems\)/);
  t.match(result.stderr, /broker\.port: must be >= 0/);
  t.match(result.stderr, /broker\.colour: unknown key/);
  t.match(result.stderr, /http\.port: must be integer/);
  t.notMatch(result.stderr, /at .*\.ts:\d+/, 'no stack trace');

  const ok = await runInProcess(['config', 'check', configFile('broker:\n  port: 1999\n')]);
  t.equal(ok.code, 0);
  t.match(ok.stdout, /config ok/);
});

t.test('start with a bad config exits 78 with a clear message', async (t) => {
  const result = await runCli(['start', '--config', configFile('mode: banana\n')]);
  t.equal(result.code, 78);
  t.match(result.stderr, /CONFIG_INVALID: configuration is invalid:\n {2}mode: must be one of "local", "appliance"/);
  const missing = await runInProcess(['start', '--config', '/nonexistent/config.yaml']);
  t.equal(missing.code, 78);
  t.match(missing.stderr, /CONFIG_UNREADABLE: cannot read config file \/nonexistent\/config.yaml: file not found/);
});

t.test('start --wait-for-config: no file yet, it waits; the file renamed into place, it serves', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-cli-'));
  const file = path.join(dir, 'config.yaml');
  const child = spawnCli(['start', '--config', file, '--wait-for-config', '120'], {
    env: { CLAWBOX_BROKER_PORT: '0', CLAWBOX_HTTP_PORT: '0', CLAWBOX_STATE_DIR: path.join(dir, 'state') },
  });
  t.teardown(() => child.kill('SIGKILL'));
  const output = { stdout: '', stderr: '' };
  for (const stream of ['stdout', 'stderr'] as const) child[stream]!.on('data', (d: Buffer) => (output[stream] += d.toString()));
  /** Resolves once `stream` has shown `pattern`; rejects if the process exits first. */
  const until = (stream: 'stdout' | 'stderr', pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const early = (code: number | null) => reject(new Error(`exited ${code} before ${pattern}: ${output.stderr}`));
      const check = () => {
        if (!pattern.test(output[stream])) return;
        child[stream]!.off('data', check);
        child.off('exit', early);
        resolve();
      };
      child[stream]!.on('data', check);
      child.once('exit', early);
      check();
    });
  await until('stderr', /waiting up to 120 s for .*config\.yaml \(first boot writes it\)/);
  t.notMatch(output.stdout, /serving/, 'not serving without its config');
  // As first boot writes it: complete under another name, then renamed.
  writeFileSync(`${file}.new`, 'log:\n  level: info\n');
  renameSync(`${file}.new`, file);
  await until('stdout', /serving: mqtt:/);
  t.match(output.stderr, /config\.yaml is there after \d+\.\d s\n/, 'says how long it waited');
  t.ok(output.stdout.includes(`"config":${JSON.stringify(file)}`), 'serving with the file that appeared');
});

t.test('start --wait-for-config: a file that never comes is exit 78 after the wait, and a bad value is USAGE', async (t) => {
  const missing = path.join(mkdtempSync(path.join(tmpdir(), 'clawbox-cli-')), 'config.yaml');
  const result = await runCli(['start', '--config', missing, '--wait-for-config', '1']);
  t.equal(result.code, 78, result.stderr);
  t.match(result.stderr, /waiting up to 1 s for /);
  t.match(result.stderr, /CONFIG_UNREADABLE: cannot read config file .*config\.yaml: file not found after waiting 1 s \(on the OS image first boot writes it/);
  for (const value of ['0', '-5', '1.5', 'soon', '3601', '']) {
    assertCatalogError(t, await runInProcess(['start', '--wait-for-config', value]), 'USAGE', `--wait-for-config ${value}`);
  }
  assertCatalogError(t, await runInProcess(['config', 'check', '--wait-for-config', '5']), 'USAGE', 'not an option of config check');
});

// In this process: a spawned USAGE error (exit 64 from the real process) is in 'bad arguments to any command'.
t.test('usage errors exit 64', async (t) => {
  for (const args of [['frobnicate'], ['start', '--mode', 'cloud'], ['start', '--nope'], ['config', 'edit']]) {
    const result = await runInProcess(args);
    t.equal(result.code, 64, args.join(' '));
    t.match(result.stderr, /^clawbox: USAGE: /);
  }
});

t.test('config schema is the JSON Schema', async (t) => {
  const result = await runCli(['config', 'schema']);
  t.equal(result.code, 0);
  const schema = JSON.parse(result.stdout) as { properties: Record<string, unknown> };
  t.ok(schema.properties.broker && schema.properties.http && schema.properties.devices);
});

t.test('passwd prints a hash that verifies', async (t) => {
  const result = await runCli(['passwd'], { input: 'correct horse battery\n' });
  t.equal(result.code, 0);
  const hash = result.stdout.trim();
  t.match(hash, /^scrypt\$/);
  t.ok(await verifyPassword('correct horse battery', hash));
  t.notOk(await verifyPassword('wrong horse battery', hash));
  const short = await runInProcess(['passwd', 'short']);
  t.equal(short.code, 64);
});

t.test('command groups dispatch with their own options', async (t) => {
  const plugins = await runCli(['plugins', 'list']);
  t.equal(plugins.code, 0);
  t.match(plugins.stdout, /iot-control/);
  const models = await runCli(['models', 'list']);
  t.equal(models.code, 0);
  t.match(models.stdout, /no models configured/);
});

/** Every error the CLI prints is one line `clawbox[ group]: CODE: message` and exits with the catalog's status. */
function assertCatalogError(t: Test, result: CliResult, code: ErrorCode, what: string): void {
  t.equal(result.code, ERROR_CATALOG[code].exit, `${what}: exit ${ERROR_CATALOG[code].exit}\n${result.stderr}`);
  t.match(result.stderr, new RegExp(`^clawbox(?: [a-z]+)?: ${code}: `), `${what}: ${code}`);
  t.notMatch(result.stderr, /^\s+at /m, `${what}: no stack trace`);
}

t.test('a config that cannot be parsed safely stops start with exit 78 and one line', async (t) => {
  const laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i < 10; i++) laughs.push(`l${i}: &l${i} [${Array(9).fill(i === 1 ? '*a' : `*l${i - 1}`).join(',')}]`);
  const cases: Array<[string, string, RegExp]> = [
    ['alias bomb', `${laughs.join('\n')}\n`, /aliases expand too far/],
    ['2000-deep nesting', `broker: ${'['.repeat(2000)}${']'.repeat(2000)}\n`, /nested more than 64 levels deep/],
    ['huge file', `# ${'x'.repeat(2 * 1024 * 1024)}\n`, /larger than 1048576 bytes/],
  ];
  // The files in this process (each refused before anything starts); the same refusal through a real
  // process, exit 78 and one line on stderr, is the $CLAWBOX_CONFIG case below.
  for (const [what, text, reason] of cases) {
    const file = configFile(text);
    const result = await runInProcess(['start', '--config', file]);
    assertCatalogError(t, result, 'CONFIG_UNREADABLE', what);
    t.match(result.stderr, reason, what);
    t.equal(result.stderr.trim().split('\n').length, 1, `${what}: one line`);
  }
  const fromEnv = await runCli(['start'], { env: { CLAWBOX_CONFIG: configFile(cases[0]![1]) } });
  assertCatalogError(t, fromEnv, 'CONFIG_UNREADABLE', 'an alias bomb via $CLAWBOX_CONFIG');
  t.match(fromEnv.stderr, /aliases expand too far/, 'an alias bomb via $CLAWBOX_CONFIG');
  t.equal(fromEnv.stderr.trim().split('\n').length, 1, 'an alias bomb via $CLAWBOX_CONFIG: one line');
  const hostileEnv = await runCli(['start'], { env: { CLAWBOX_BROKER_USERS: `${'['.repeat(5000)}${']'.repeat(5000)}` } });
  assertCatalogError(t, hostileEnv, 'CONFIG_INVALID', 'nested environment value');
  t.match(hostileEnv.stderr, /CLAWBOX_BROKER_USERS: cannot be parsed as YAML or JSON: nested more than 64 levels deep/);
  const directory = await runInProcess(['config', 'check', path.dirname(configFile(''))]);
  assertCatalogError(t, directory, 'CONFIG_UNREADABLE', 'a directory');
  t.match(directory.stderr, /: is a directory\n$/);
});

t.test('bad arguments to any command are USAGE, exit 64', async (t) => {
  const cases = [
    ['start', 'extra'],
    ['start', '--config', ''],
    ['config'],
    ['config', 'check', configFile('{}\n'), 'extra'],
    ['config', 'check', configFile('{}\n'), '--config', configFile('{}\n')],
    ['config', 'schema', 'extra'],
    ['passwd', 'correct horse battery', 'extra'],
    ['--config', configFile('{}\n'), 'models', 'list'],
    ['models', 'list', 'extra'],
    ['models', 'list', '--config', ''],
    ['models', 'add'],
    ['models', 'frob'],
    ['plugins', 'info'],
    ['plugins', 'new', 'x', '--lang', 'ruby'],
    ['plugins', 'list', '--config', ''],
    ['plugins', 'frob'],
    ['channels', 'approve', '--url', 'http://127.0.0.1:9', '--token', 't'],
    ['channels', 'pairings', '--url', 'not a url', '--token', 't'],
    ['channels', 'pairings', '--url', 'ftp://127.0.0.1/', '--token', 't'],
    ['channels', 'pairings', '--config', '', '--token', 't'],
    ['audit', 'frob', '--state-dir', '/tmp'],
    ['audit', 'tail', '-n', 'x', '--state-dir', '/tmp'],
    ['audit', 'verify', '--config'],
    ['audit', 'verify', '--mode', 'cloud'],
  ];
    for (const args of cases) assertCatalogError(t, await runInProcess(args), 'USAGE', args.join(' '));
  // Through the real process too: a group that prints its own errors, and audit's dispatch.
  for (const args of [cases[17]!, cases[22]!]) assertCatalogError(t, await runCli(args), 'USAGE', `spawned: ${args.join(' ')}`);
});

t.test('what a command cannot find or write has its own code, not INTERNAL', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-cli-'));
  const aFile = configFile('{}\n');
  const plugin = await runInProcess(['plugins', 'info', 'nope']);
  assertCatalogError(t, plugin, 'NOT_FOUND', 'plugins info of an unknown plugin');
  assertCatalogError(t, await runInProcess(['models', 'verify', 'nope']), 'NOT_FOUND', 'models verify of an unknown model');
  const scaffold = await runInProcess(['plugins', 'new', 'hello', '--lang', 'node', '--dir', path.join(aFile, 'sub')]);
  assertCatalogError(t, scaffold, 'FILE_UNWRITABLE', 'plugins new under a file');
  t.match(scaffold.stderr, /a parent is not a directory/);

  const model = await tinyModel(t);
  const addTo = await runCli(['models', 'add', model.path, '--config', path.join(aFile, 'config.yaml')]);
  assertCatalogError(t, addTo, 'FILE_UNWRITABLE', 'models add to a config that cannot be written');
  const scalar = path.join(dir, 'scalar.yaml');
  writeFileSync(scalar, 'just a string\n');
  assertCatalogError(t, await runInProcess(['models', 'add', model.path, '--config', scalar]), 'CONFIG_UNREADABLE', 'models add to a config that is not a mapping');
  const deep = path.join(dir, 'deep.yaml');
  writeFileSync(deep, `x: ${'['.repeat(3000)}${']'.repeat(3000)}\n`);
  assertCatalogError(t, await runInProcess(['models', 'add', model.path, '--config', deep]), 'CONFIG_UNREADABLE', 'models add to a hostile config');
});

t.test('every exit status in the catalog is in the README table and in --help', async (t) => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const table = new Set([...readme.matchAll(/^\| (\d+) \| /gm)].map((m) => Number(m[1])));
  const help = (await runInProcess(['--help'])).stdout;
  // 130: Ctrl-C at the passwd prompt.
  for (const status of new Set([...Object.values(ERROR_CATALOG).map((spec) => spec.exit), 130])) {
    t.ok(table.has(status), `README lists exit ${status}`);
    t.match(help, new RegExp(`^ {2}${status} +\\S`, 'm'), `--help lists exit ${status}`);
  }
});

t.test('audit verify | tail | query read the state directory of the config', async (t) => {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'clawbox-state-'));
  const file = configFile(`state_dir: ${stateDir}\n`);
  const verify = await runCli(['audit', 'verify', '--config', file, '--json']);
  t.equal(verify.code, 0, verify.stderr);
  t.equal(JSON.parse(verify.stdout).dir, path.join(stateDir, 'audit'));
  const fromEnv = await runCli(['audit', 'verify', '--json'], { env: { CLAWBOX_CONFIG: file } });
  t.equal(JSON.parse(fromEnv.stdout).dir, path.join(stateDir, 'audit'), '$CLAWBOX_CONFIG');
  const other = mkdtempSync(path.join(tmpdir(), 'clawbox-state-'));
  // An explicit --state-dir needs no config at all, so a broken one does not stand in the way.
  const explicit = await runInProcess(['audit', 'verify', '--json', '--state-dir', other, '--config', '/nonexistent/config.yaml']);
  t.equal(JSON.parse(explicit.stdout).dir, path.join(other, 'audit'));
  t.match(await runInProcess(['audit', 'tail', '--config', file]), { code: 0, stdout: /no matching audit records/ });
  t.match(await runInProcess(['audit', 'query', '-c', file, '--since', '1h']), { code: 0, stdout: /no matching audit records/ });
  assertCatalogError(t, await runInProcess(['audit', 'verify', '--config', '/nonexistent/config.yaml']), 'CONFIG_UNREADABLE', 'audit with a missing config');
  const notADir = await runInProcess(['audit', 'tail', '--state-dir', file]);
  assertCatalogError(t, notADir, 'NOT_FOUND', 'audit with a state directory that is a file');
  t.match(notADir.stderr, /cannot read the audit log at .*: a parent is not a directory/);
  t.match((await runInProcess(['--help'])).stdout, /clawbox audit verify \| tail \| query/);
});
