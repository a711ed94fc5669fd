import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { verifyPassword } from '../runtime/auth/password.js';
import { runCli } from './cli-helpers.js';

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
  const help = await runCli(['--help']);
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

  const ok = await runCli(['config', 'check', configFile('broker:\n  port: 1999\n')]);
  t.equal(ok.code, 0);
  t.match(ok.stdout, /config ok/);
});

t.test('start with a bad config exits 78 with a clear message', async (t) => {
  const result = await runCli(['start', '--config', configFile('mode: banana\n')]);
  t.equal(result.code, 78);
  t.match(result.stderr, /CONFIG_INVALID: configuration is invalid:\n {2}mode: must be one of "local", "appliance"/);
  const missing = await runCli(['start', '--config', '/nonexistent/config.yaml']);
  t.equal(missing.code, 78);
  t.match(missing.stderr, /CONFIG_UNREADABLE: cannot read config file \/nonexistent\/config.yaml: file not found/);
});

t.test('usage errors exit 64', async (t) => {
  for (const args of [['frobnicate'], ['start', '--mode', 'cloud'], ['start', '--nope'], ['config', 'edit']]) {
    const result = await runCli(args);
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
  const short = await runCli(['passwd', 'short']);
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
