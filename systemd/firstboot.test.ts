/**
 * clawbox-firstboot, run for real (openssl) against a temporary config directory: the config it writes
 * loads in appliance mode, the password shown on the console verifies against the stored hash with the
 * runtime's own scrypt verify (openssl made it), the token matches, the certificate fits its key. A seed
 * file on the boot partition becomes the config with the template's rendition beside it as a fallback;
 * `seed-accepted` (clawbox ready with it) removes the seed and the fallback, `seed-failed` (clawbox failed
 * with it: the real `clawbox start` exits 78 on an invalid seed) puts the fallback in place and starts
 * clawbox again through systemctl (a recording stand-in here: no service manager to drive in a test).
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
  /** Runs the script again with an argument (seed-accepted, seed-failed) in the same directories. */
  again: (arg: string, env?: NodeJS.ProcessEnv) => { status: number | null; stderr: string; systemctl: string[] };
}

function runFirstboot(t: Test, seed?: string): Run {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-firstboot-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The script needs no Node: a PATH whose only `node` and `clawbox` fail proves it.
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  for (const name of ['node', 'clawbox']) {
    writeFileSync(path.join(bin, name), '#!/bin/sh\necho "first boot ran $0" >&2\nexit 99\n');
    chmodSync(path.join(bin, name), 0o755);
  }
  const systemctlLog = path.join(dir, 'systemctl.log');
  const systemctl = path.join(dir, 'systemctl');
  writeFileSync(systemctl, `#!/bin/sh\necho "$*" >>"${systemctlLog}"\n`);
  chmodSync(systemctl, 0o755);
  const seedFile = path.join(dir, 'boot/clawbox/config.yaml');
  if (seed !== undefined) {
    mkdirSync(path.dirname(seedFile), { recursive: true });
    writeFileSync(seedFile, seed);
  }
  const consoleFile = path.join(dir, 'console.txt');
  const env: NodeJS.ProcessEnv = {
    PATH: `${bin}:${process.env.PATH}`,
    HOME: process.env.HOME,
    CONFIGURATION_DIRECTORY: path.join(dir, 'etc/clawbox'),
    FIRSTBOOT_TEMPLATE: TEMPLATE,
    FIRSTBOOT_SEED: seedFile,
    FIRSTBOOT_GROUP: groupName(),
    FIRSTBOOT_CONSOLES: consoleFile,
    FIRSTBOOT_SYSTEMCTL: systemctl,
  };
  const result = spawnSync('sh', [SCRIPT], { cwd: ROOT, env, encoding: 'utf8' });
  return {
    status: result.status,
    stderr: result.stderr,
    console: existsSync(consoleFile) ? readFileSync(consoleFile, 'utf8') : '',
    configDir: env.CONFIGURATION_DIRECTORY!,
    seed: seedFile,
    again: (arg, extra = {}) => {
      const r = spawnSync('sh', [SCRIPT, arg], { cwd: ROOT, env: { ...env, ...extra }, encoding: 'utf8' });
      const calls = existsSync(systemctlLog) ? readFileSync(systemctlLog, 'utf8').trim().split('\n') : [];
      return { status: r.status, stderr: r.stderr, systemctl: calls };
    },
  };
}

/** The real runtime's start on a config file: its exit status and output (78: config invalid). */
function clawboxStart(t: Test, config: string) {
  const state = mkdtempSync(path.join(tmpdir(), 'clawbox-firstboot-state-'));
  t.teardown(() => rmSync(state, { recursive: true, force: true }));
  return spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'app/main.ts'), 'start', '--config', config, '--mode', 'appliance'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, CLAWBOX_STATE_DIR: state },
    encoding: 'utf8',
    timeout: 120_000,
  });
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
  t.match(config.http.password_hash, /^scrypt\$1024\$8\$1\$/, 'the low cost a random password allows (see the script)');
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

t.test('a seed config on the boot partition becomes the config; once clawbox is ready with it, it is removed', async (t) => {
  const seed = `${readFileSync(TEMPLATE, 'utf8')}
devices:
  - id: pump
    driver: simulated
    capabilities: [switch]
`;
  const run = runFirstboot(t, seed);
  t.equal(run.status, 0, run.stderr);
  const file = path.join(run.configDir, 'config.yaml');
  const fallback = path.join(run.configDir, 'config.fallback.yaml');
  const { config } = loadConfig({ file, env: {} });
  t.same(
    config.devices.map((d) => d.id),
    ['pump'],
  );
  const password = shown(run.console, 'Admin password');
  t.ok(await verifyPassword(password, config.http.password_hash!));
  t.not(password, firstPassword, 'each first boot gets its own password');
  t.not(config.http.token, firstToken, 'and its own token');
  t.ok(existsSync(run.seed), 'the seed stays until clawbox has run with it');
  t.equal(statSync(fallback).mode & 0o777, 0o640, 'the fallback is as private as the config');
  const fallbackConfig = loadConfig({ file: fallback, env: {} }).config;
  t.notOk(fallbackConfig.devices.some((d) => d.id === 'pump'), 'the fallback is the template');
  t.ok(await verifyPassword(password, fallbackConfig.http.password_hash!), 'with the same password');
  t.equal(fallbackConfig.http.token, config.http.token, 'and token');

  const accepted = run.again('seed-accepted');
  t.equal(accepted.status, 0, accepted.stderr);
  t.notOk(existsSync(run.seed), 'seed removed');
  t.notOk(existsSync(fallback), 'fallback removed');
  t.same(loadConfig({ file, env: {} }).config.devices.map((d) => d.id), ['pump'], 'the seed config stays');
  t.same(accepted.systemctl, [], 'nothing restarted');
  t.equal(run.again('seed-failed').systemctl.length, 0, 'a later failure of clawbox finds no pending seed');
});

t.test('an invalid seed: clawbox start refuses it (78), then the template is used and clawbox starts again', async (t) => {
  const run = runFirstboot(t, 'mode: appliance\nbroker:\n  port: seventy\n');
  t.equal(run.status, 0, run.stderr);
  const file = path.join(run.configDir, 'config.yaml');
  const start = clawboxStart(t, file);
  t.equal(start.status, 78, 'the runtime exits 78 (config invalid): systemd does not restart it, OnFailure= runs');
  t.match(`${start.stderr}${start.stdout}`, /broker\.port/, 'and says what is wrong (journalctl -u clawbox)');

  const failed = run.again('seed-failed', { MONITOR_EXIT_STATUS: '78' });
  t.equal(failed.status, 0, failed.stderr);
  t.match(failed.stderr, /failed with the seed config .*exit status 78/);
  t.same(failed.systemctl, ['reset-failed clawbox.service', 'start --no-block clawbox.service clawbox-banner.service']);
  t.match(readFileSync(path.join(run.configDir, '../../console.txt'), 'utf8'), /boot partition .* is invalid; the default config was used/);
  t.notOk(existsSync(path.join(run.configDir, 'config.fallback.yaml')), 'the fallback is now the config');
  const { config } = loadConfig({ file, env: {} });
  t.equal(config.broker.port, 1883);
  t.ok(await verifyPassword(shown(run.console, 'Admin password'), config.http.password_hash!), 'the console password works');
  t.ok(existsSync(run.seed), 'the invalid seed stays for the user to fix');
  t.same(run.again('seed-accepted').systemctl, failed.systemctl, 'nothing pending any more');
  t.ok(existsSync(run.seed), 'seed-accepted without a pending seed removes nothing');
});

t.test('first boot starts no Node process: a failing node and clawbox on PATH change nothing', async (t) => {
  const run = runFirstboot(t);
  t.equal(run.status, 0, run.stderr);
  t.notMatch(run.stderr, /first boot ran/);
});

t.test('an unknown argument is refused and changes nothing', async (t) => {
  const run = runFirstboot(t);
  const result = run.again('seed-whatever');
  t.not(result.status, 0);
  t.match(result.stderr, /usage: clawbox-firstboot/);
  t.ok(existsSync(path.join(run.configDir, 'config.yaml')));
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
