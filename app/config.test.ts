import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { isClawboxError } from '../runtime/errors.js';
import { resolveStateDir } from '../runtime/config/load.js';
import { checkConfig, loadConfig } from './config.js';

function writeConfig(text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-config-'));
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, text);
  return file;
}

t.test('no file in local mode gives a complete config with defaults', async (t) => {
  const { config, source } = loadConfig({ env: {} });
  t.equal(source, null);
  t.equal(config.mode, 'local');
  t.equal(config.broker.host, '127.0.0.1');
  t.equal(config.broker.port, 1883);
  t.equal(config.broker.websocket.path, '/mqtt');
  t.equal(config.broker.anonymous, 'auto');
  t.equal(config.http.port, 8080);
  t.ok(Array.isArray(config.devices));
  t.ok(Object.isFrozen(config.broker.tls), 'nested sections are frozen');
  t.throws(() => {
    (config.broker as { port: number }).port = 1;
  }, TypeError);
});

t.test('every problem is reported at once with its path', async (t) => {
  const file = writeConfig(`
mode: cloud
broker:
  port: 70000
  prot: 1
  users:
    - username: bob
http:
  port: "eighty"
`);
  const { loaded, issues } = checkConfig({ file, env: {} });
  t.equal(loaded, undefined);
  const lines = issues.map((i) => `${i.path}: ${i.message}`);
  t.match(lines.join('\n'), /mode: must be one of "local", "appliance" \(got "cloud"\)/);
  t.match(lines.join('\n'), /broker\.port: must be <= 65535/);
  t.match(lines.join('\n'), /broker\.prot: unknown key \(allowed: host, port, base_topic/);
  t.match(lines.join('\n'), /broker\.users\[0\]\.password_hash: is required/);
  t.match(lines.join('\n'), /http\.port: must be integer \(got "eighty"\)/);
  t.ok(issues.length >= 5, 'all problems, not just the first');
});

t.test('unreadable and malformed files are CONFIG_UNREADABLE', async (t) => {
  t.throws(() => loadConfig({ file: '/nonexistent/clawbox.yaml', env: {} }), { code: 'CONFIG_UNREADABLE', message: /file not found/ });
  const bad = writeConfig('broker: [unclosed\n');
  t.throws(() => loadConfig({ file: bad, env: {} }), { code: 'CONFIG_UNREADABLE', message: /not valid YAML/ });
  const scalar = writeConfig('just a string\n');
  t.throws(() => loadConfig({ file: scalar, env: {} }), { code: 'CONFIG_UNREADABLE', message: /mapping/ });
  const dup = writeConfig('mode: local\nmode: appliance\n');
  t.throws(() => loadConfig({ file: dup, env: {} }), { code: 'CONFIG_UNREADABLE' });
});

t.test('an empty file is the defaults', async (t) => {
  const { config, source } = loadConfig({ file: writeConfig(''), env: {} });
  t.equal(config.broker.port, 1883);
  t.match(source, /config\.yaml$/);
});

t.test('environment overrides apply and are validated', async (t) => {
  const { config } = loadConfig({
    env: {
      CLAWBOX_BROKER_PORT: '1999',
      CLAWBOX_BROKER_BASE_TOPIC: 'home',
      CLAWBOX_BROKER_TLS_ENABLED: 'false',
      CLAWBOX_BROKER_WEBSOCKET_PATH: '/ws',
      CLAWBOX_LOG_COMPONENTS_BROKER: 'debug',
      CLAWBOX_HTTP_HOST: '0.0.0.0',
    },
  });
  t.equal(config.broker.port, 1999);
  t.equal(config.broker.base_topic, 'home');
  t.equal(config.broker.websocket.path, '/ws');
  t.equal(config.log.components.broker, 'debug');
  t.equal(config.http.host, '0.0.0.0');

  const { issues } = checkConfig({ env: { CLAWBOX_BROKER_PORT: 'abc', CLAWBOX_NOPE_KEY: '1' } });
  t.match(issues.map((i) => `${i.path}: ${i.message}`).join('\n'), /CLAWBOX_NOPE_KEY: environment variable does not name a config key/);
  t.match(issues.map((i) => `${i.path}: ${i.message}`).join('\n'), /broker\.port: must be integer \(got "abc"\)/);
});

t.test('an enum that mixes words and booleans takes either from the environment', async (t) => {
  for (const [raw, expected] of [['true', true], ['false', false], ['auto', 'auto'], ['on', true], ['NO', false]] as const) {
    const { config } = loadConfig({ env: { CLAWBOX_DISCOVERY_ENABLED: raw } });
    t.equal(config.discovery?.enabled, expected, `CLAWBOX_DISCOVERY_ENABLED=${raw}`);
  }
  const { issues } = checkConfig({ env: { CLAWBOX_DISCOVERY_ENABLED: 'sometimes' } });
  t.match(issues.map((i) => `${i.path}: ${i.message}`).join('\n'), /discovery\.enabled: must be one of "auto", true, false \(got "sometimes"\)/);
  // A string-only enum is not widened: "1" is not "debug".
  t.match(checkConfig({ env: { CLAWBOX_LOG_LEVEL: '1' } }).issues.map((i) => i.path).join(','), /log\.level/);
});

t.test('env wins over the file; the CLI mode wins over both', async (t) => {
  const file = writeConfig('broker:\n  port: 1884\nhttp:\n  token: "0123456789abcdef0123"\n');
  const { config } = loadConfig({ file, env: { CLAWBOX_BROKER_PORT: '1885' }, mode: 'appliance' });
  t.equal(config.broker.port, 1885);
  t.equal(config.mode, 'appliance');
});

t.test('cross-key rules', async (t) => {
  const tls = checkConfig({ env: { CLAWBOX_BROKER_TLS_ENABLED: 'true' } });
  t.match(tls.issues[0], { path: 'broker.tls', message: /cert and key/ });
  const appliance = checkConfig({ file: writeConfig('mode: appliance\n'), env: {} });
  t.same(appliance.issues, [], 'an appliance without credentials starts in first-run setup');
  const halfTls = checkConfig({ file: writeConfig('http:\n  tls: {cert: /etc/c.pem}\n'), env: {} });
  t.match(halfTls.issues[0], { path: 'http.tls', message: /both cert and key/ });
  const dup = checkConfig({
    file: writeConfig('devices:\n  - {id: a, driver: simulated, capabilities: [switch]}\n  - {id: a, driver: simulated, capabilities: [switch]}\n'),
    env: {},
  });
  t.ok(dup.issues.some((i) => /duplicate device id/.test(i.message)));
});

t.test('appliance mode reads the systemd configuration directory', async (t) => {
  const file = writeConfig('mode: appliance\nhttp:\n  token: "0123456789abcdef0123"\n');
  const { source } = loadConfig({ mode: 'appliance', env: { CONFIGURATION_DIRECTORY: path.dirname(file) } });
  t.equal(source, file);
  const error = t.throws(() => loadConfig({ mode: 'appliance', env: { CONFIGURATION_DIRECTORY: '/nonexistent' } }));
  t.ok(isClawboxError(error, 'CONFIG_UNREADABLE'));
});

t.test('state directory resolution', async (t) => {
  const { config } = loadConfig({ env: {} });
  t.equal(resolveStateDir(config, {}, '/srv'), '/srv/.clawbox');
  t.equal(resolveStateDir(config, { STATE_DIRECTORY: '/var/lib/clawbox:/other' }, '/srv'), '/var/lib/clawbox');
  const withDir = loadConfig({ env: { CLAWBOX_STATE_DIR: 'data' } }).config;
  t.equal(resolveStateDir(withDir, { STATE_DIRECTORY: '/x' }, '/srv'), '/srv/data');
});

// A config that cannot be parsed safely must stop `clawbox start` with CONFIG_UNREADABLE (exit 78, which
// systemd does not restart on) and one line naming the bound, not an INTERNAL stack trace.
t.test('hostile YAML is refused with one line naming the limit', async (t) => {
  const refused = (text: string) => {
    const error = t.throws(() => loadConfig({ file: writeConfig(text), env: {} })) as Error;
    t.ok(isClawboxError(error, 'CONFIG_UNREADABLE'), `code: ${(error as { code?: string }).code}`);
    t.notMatch(error.message, /\n/, 'one line');
    return error.message;
  };
  const laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i < 10; i++) laughs.push(`l${i}: &l${i} [${Array(9).fill(i === 1 ? '*a' : `*l${i - 1}`).join(',')}]`);
  t.match(refused(`${laughs.join('\n')}\n`), /refused: aliases expand too far/);

  t.match(refused(`x: ${'['.repeat(2000)}${']'.repeat(2000)}\n`), /refused: nested more than 64 levels deep \(line 1\)/);
  t.match(refused(`x: ${'{a: '.repeat(2000)}1${'}'.repeat(2000)}\n`), /nested more than 64 levels deep/);
  const block = Array.from({ length: 300 }, (_, i) => `${' '.repeat(i)}k:`).join('\n');
  t.match(refused(`${block}\n`), /nested more than 64 levels deep \(line 65\)/);
  // Each alias adds the depth of what it names, so a shallow text can expand into a deep value.
  const deepA = `${'['.repeat(40)}${']'.repeat(40)}`;
  t.match(refused(`a: &a ${deepA}\nb: [${'['.repeat(40)}*a${']'.repeat(40)}]\n`), /nested more than 64 levels deep once aliases are expanded/);

  t.match(refused(`# ${'x'.repeat(1024 * 1024)}\n`), /refused: larger than 1048576 bytes/);
  t.match(refused(''.padEnd(1024 * 1024 + 1, '\n')), /larger than/);
});

t.test('nesting and aliases within the limits still load', async (t) => {
  const hash = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
  const { config } = loadConfig({
    file: writeConfig(`log:\n  components: &levels {broker: debug}\nbroker:\n  users:\n    - {username: bob, password_hash: &h "${hash}"}\n    - {username: eve, password_hash: *h}\n`),
    env: {},
  });
  t.equal(config.broker.users[1]?.password_hash, hash, 'an alias resolves');
  t.equal(config.log.components.broker, 'debug');
  // Sixty levels parse; the schema then refuses the unknown key, as it would any other.
  const { issues } = checkConfig({ file: writeConfig(`x: ${'['.repeat(60)}${']'.repeat(60)}\n`), env: {} });
  t.match(issues, [{ path: 'x', message: /unknown key/ }]);
});

t.test('duplicate keys are found in big mappings, compared as the config sees them', async (t) => {
  const many = Array.from({ length: 5000 }, (_, i) => `  k${i}: 1`).join('\n');
  const error = t.throws(() => loadConfig({ file: writeConfig(`log:\n  components:\n${many}\n  k17: 2\n`), env: {} })) as Error;
  t.ok(isClawboxError(error, 'CONFIG_UNREADABLE'));
  t.match(error.message, /map keys must be unique: "k17" repeats at line 5003/);
  // 1 and "1" are different YAML keys but the same key of the loaded object: one would silently win.
  t.throws(() => loadConfig({ file: writeConfig('log:\n  components:\n    1: debug\n    "1": info\n'), env: {} }), {
    code: 'CONFIG_UNREADABLE',
    message: /"1" repeats/,
  });
  t.throws(() => loadConfig({ file: writeConfig('mode: local\n---\nmode: appliance\n'), env: {} }), {
    code: 'CONFIG_UNREADABLE',
    message: /second document/,
  });
});

t.test('a directory or an unreadable path is CONFIG_UNREADABLE with the reason in words', async (t) => {
  const dir = path.dirname(writeConfig(''));
  t.throws(() => loadConfig({ file: dir, env: {} }), { code: 'CONFIG_UNREADABLE', message: `cannot read config file ${dir}: is a directory` });
  const file = writeConfig('');
  t.throws(() => loadConfig({ file: path.join(file, 'x.yaml'), env: {} }), { code: 'CONFIG_UNREADABLE', message: /a parent is not a directory/ });
});

t.test('the CONFIG_INVALID message is short and printable whatever the file holds', async (t) => {
  const keys = Array.from({ length: 500 }, (_, i) => `bogus${i}: 1`).join('\n');
  const error = t.throws(() => loadConfig({ file: writeConfig(`${keys}\nmode: "cloud\\n\\u001b[2J${'x'.repeat(5000)}"\n`), env: {} })) as Error;
  t.ok(isClawboxError(error, 'CONFIG_INVALID'));
  const lines = error.message.split('\n');
  t.ok(lines.length <= 22, `${lines.length} lines`);
  t.match(lines.at(-1), /… and \d+ more \(clawbox config check lists them all\)/);
  const { issues } = checkConfig({ file: writeConfig(`mode: "cloud\\n\\u001b[2J${'x'.repeat(5000)}"\n`), env: {} });
  const mode = issues.find((i) => i.path === 'mode')!;
  t.notOk([...mode.message].some((c) => c.charCodeAt(0) < 0x20), 'no control characters');
  t.match(mode.message, /\\u001b\[2J/);
  t.ok(mode.message.length < 700, `${mode.message.length} characters`);
});

t.test('hostile environment overrides become issues, never crashes or surprises', async (t) => {
  const lines = (env: NodeJS.ProcessEnv) => checkConfig({ env }).issues.map((i) => `${i.path}: ${i.message}`).join('\n');
  t.match(lines({ CLAWBOX_CONSTRUCTOR: '1' }), /CLAWBOX_CONSTRUCTOR: environment variable does not name a config key/);
  t.match(lines({ CLAWBOX_BROKER_TOSTRING: '1' }), /CLAWBOX_BROKER_TOSTRING: environment variable does not name a config key/);
  t.match(lines({ CLAWBOX_BROKER_PORT: '0x10' }), /broker\.port: must be integer \(got "0x10"\)/);
  t.match(lines({ CLAWBOX_BROKER_PORT: '9'.repeat(400) }), /broker\.port: must be integer/);
  t.match(lines({ CLAWBOX_BROKER_USERS: `${'['.repeat(5000)}${']'.repeat(5000)}` }), /CLAWBOX_BROKER_USERS: cannot be parsed as YAML or JSON: nested more than 64 levels deep/);
  const bomb = `[${Array(9).fill('&a [1,1,1,1,1,1,1,1,1,1]').join(',')}, ${Array(200).fill('*a').join(',')}]`;
  t.match(lines({ CLAWBOX_BROKER_USERS: bomb }), /CLAWBOX_BROKER_USERS: cannot be parsed as YAML or JSON: aliases expand too far/);
  t.match(lines({ CLAWBOX_BROKER_USERS: '[unclosed' }), /CLAWBOX_BROKER_USERS: cannot be parsed as YAML or JSON/);
  t.equal(loadConfig({ env: { CLAWBOX_BROKER_PORT: ' 1999 ' } }).config.broker.port, 1999, 'surrounding spaces are fine');
  t.throws(() => loadConfig({ env: { CLAWBOX_BROKER_USERS: `[${'{'.repeat(3000)}` } }), { code: 'CONFIG_INVALID' });
});
