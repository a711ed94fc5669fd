/**
 * clawbox-firstboot, run for real (openssl, the clawbox CLI from the sources) against a temporary config
 * directory: the config it writes loads in appliance mode, the password shown on the console verifies
 * against the stored hash, the token matches, the certificate fits its key; a seed file on the boot
 * partition replaces the template and is removed, an invalid seed falls back to the template.
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { verifyPassword } from '../runtime/auth/password.js';
import { loadConfig } from '../app/config.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const SCRIPT = path.join(import.meta.dirname, 'clawbox-firstboot');
const TEMPLATE = path.join(import.meta.dirname, 'config.template.yaml');

function groupName(): string {
  const gid = userInfo().gid;
  const line = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.split(':')[2] === String(gid));
  return line?.split(':')[0] ?? 'root';
}

interface Run {
  status: number | null;
  stderr: string;
  console: string;
  configDir: string;
  seed: string;
}

function runFirstboot(t: Test, seed?: string): Run {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-firstboot-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const clawbox = path.join(dir, 'clawbox');
  writeFileSync(clawbox, `#!/bin/sh\nexec "${process.execPath}" --import tsx "${path.join(ROOT, 'app/main.ts')}" "$@"\n`);
  chmodSync(clawbox, 0o755);
  const seedFile = path.join(dir, 'boot/clawbox/config.yaml');
  if (seed !== undefined) {
    spawnSync('mkdir', ['-p', path.dirname(seedFile)]);
    writeFileSync(seedFile, seed);
  }
  const consoleFile = path.join(dir, 'console.txt');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    CONFIGURATION_DIRECTORY: path.join(dir, 'etc/clawbox'),
    FIRSTBOOT_TEMPLATE: TEMPLATE,
    FIRSTBOOT_SEED: seedFile,
    FIRSTBOOT_CLAWBOX: clawbox,
    FIRSTBOOT_GROUP: groupName(),
    FIRSTBOOT_CONSOLES: consoleFile,
  };
  const result = spawnSync('sh', [SCRIPT], { cwd: ROOT, env, encoding: 'utf8' });
  return {
    status: result.status,
    stderr: result.stderr,
    console: existsSync(consoleFile) ? readFileSync(consoleFile, 'utf8') : '',
    configDir: env.CONFIGURATION_DIRECTORY!,
    seed: seedFile,
  };
}

function shown(console: string, label: string): string {
  const value = new RegExp(`${label}:\\s+(\\S+)`).exec(console)?.[1];
  if (!value) throw new Error(`"${label}" not on the console:\n${console}`);
  return value;
}

let firstPassword = '';
let firstToken: string | undefined;

t.test('first boot writes a config that loads in appliance mode, with working credentials', async (t) => {
  const run = runFirstboot(t);
  t.equal(run.status, 0, run.stderr);
  const file = path.join(run.configDir, 'config.yaml');
  t.equal(statSync(file).mode & 0o777, 0o640, 'config readable by the clawbox group only');
  const { config } = loadConfig({ file, env: {} });
  t.equal(config.mode, 'appliance');
  t.equal(config.broker.host, '0.0.0.0');
  t.equal(config.http.host, '0.0.0.0');
  t.equal(config.broker.anonymous, 'never');

  const password = shown(run.console, 'Admin password');
  t.match(password, /^[a-zA-Z2-9]{5}(-[a-zA-Z2-9]{5}){3}$/);
  t.notOk(readFileSync(file, 'utf8').includes(password), 'the password is not stored in clear');
  t.notOk(run.stderr.includes(password), 'nor logged');
  t.ok(await verifyPassword(password, config.http.password_hash!), 'status page password verifies');
  const admin = config.broker.users.find((u) => u.username === 'admin');
  t.ok(admin && (await verifyPassword(password, admin.password_hash)), 'MQTT admin password verifies');
  t.notOk(await verifyPassword(`${password}x`, config.http.password_hash!), 'a wrong one does not');
  t.equal(config.http.token, shown(run.console, 'HTTP API token'));
  t.match(config.http.token, /^[0-9a-f]{64}$/);

  t.ok(config.broker.tls.enabled);
  const cert = new X509Certificate(readFileSync(config.broker.tls.cert!));
  t.ok(cert.checkPrivateKey(createPrivateKey(readFileSync(config.broker.tls.key!))), 'certificate matches its key');
  t.equal(statSync(config.broker.tls.key!).mode & 0o777, 0o640);
  t.match(cert.subjectAltName ?? '', /DNS:localhost/);
  t.equal(/SHA256 (\S+)/.exec(run.console)?.[1], cert.fingerprint256, 'fingerprint shown');
  firstPassword = password;
  firstToken = config.http.token;
});

t.test('a seed config on the boot partition replaces the template and is removed', async (t) => {
  const seed = `${readFileSync(TEMPLATE, 'utf8')}
devices:
  - id: pump
    driver: simulated
    capabilities: [switch]
`;
  const run = runFirstboot(t, seed);
  t.equal(run.status, 0, run.stderr);
  const { config } = loadConfig({ file: path.join(run.configDir, 'config.yaml'), env: {} });
  t.same(
    config.devices.map((d) => d.id),
    ['pump'],
  );
  t.ok(await verifyPassword(shown(run.console, 'Admin password'), config.http.password_hash!));
  t.notOk(existsSync(run.seed), 'seed removed');
  t.not(shown(run.console, 'Admin password'), firstPassword, 'each first boot gets its own password');
  t.not(config.http.token, firstToken, 'and its own token');
});

t.test('an invalid seed is reported and the template is used instead', async (t) => {
  const run = runFirstboot(t, 'mode: appliance\nbroker:\n  port: seventy\n');
  t.equal(run.status, 0, run.stderr);
  t.match(run.console, /boot partition .* is invalid/);
  t.match(run.stderr, /broker\.port/);
  const { config } = loadConfig({ file: path.join(run.configDir, 'config.yaml'), env: {} });
  t.equal(config.broker.port, 1883);
  t.ok(existsSync(run.seed), 'the invalid seed stays for the user to fix');
});

t.test('a missing template fails with a clear message and writes no config', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-firstboot-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const result = spawnSync('sh', [SCRIPT], {
    env: { PATH: process.env.PATH, CONFIGURATION_DIRECTORY: dir, FIRSTBOOT_TEMPLATE: path.join(dir, 'nope.yaml') },
    encoding: 'utf8',
  });
  t.not(result.status, 0);
  t.match(result.stderr, /template .*nope\.yaml is missing/);
  t.notOk(existsSync(path.join(dir, 'config.yaml')));
});
