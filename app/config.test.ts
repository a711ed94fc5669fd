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
  t.match(appliance.issues[0], { path: 'http', message: /token or http.password_hash/ });
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
