/**
 * The unit files load cleanly in systemd itself (systemd-analyze verify against a throwaway root: exit 0
 * and nothing on stderr, where unknown keys and bad values are reported), keep their hardening, and stay
 * below an exposure threshold in systemd-analyze security.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { SYSTEMD_DIR, buildUnitRoot, parseUnit, unitFiles, valuesOf } from './unit-root.js';

function analyze(args: string[]) {
  const result = spawnSync('systemd-analyze', args, { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_COLOR: '0', SYSTEMD_COLORS: '0' } });
  if (result.error) throw new Error(`systemd-analyze cannot run (apt-get install systemd): ${result.error.message}`);
  return result;
}

const root = buildUnitRoot();
t.teardown(() => rmSync(root, { recursive: true, force: true }));

t.test('there are units to check', async (t) => {
  t.same(unitFiles(), [
    'clawbox-banner.service',
    'clawbox-firstboot.service',
    'clawbox-health.service',
    'clawbox-seed-accepted.service',
    'clawbox-seed-failed.service',
    'clawbox-update@.service',
    'clawbox.service',
  ]);
});

for (const file of unitFiles()) {
  // A template is verified as one of its instances.
  const unit = file.replace('@.', '@test.');
  t.test(`systemd-analyze verify ${unit}: exit 0, empty stderr`, async (t) => {
    const result = analyze(['verify', `--root=${root}`, unit]);
    t.equal(result.stderr, '', 'no warnings');
    t.equal(result.status, 0, 'exit status');
  });
}

t.test('the GPU drop-in (gpu.conf.example) loads cleanly on top of clawbox.service', async (t) => {
  const gpuRoot = buildUnitRoot();
  t.teardown(() => rmSync(gpuRoot, { recursive: true, force: true }));
  const dropIn = path.join(gpuRoot, 'etc/systemd/system/clawbox.service.d');
  mkdirSync(dropIn, { recursive: true });
  copyFileSync(path.join(SYSTEMD_DIR, 'gpu.conf.example'), path.join(dropIn, 'gpu.conf'));
  const result = analyze(['verify', `--root=${gpuRoot}`, 'clawbox.service']);
  t.equal(result.stderr, '');
  t.equal(result.status, 0);
  const dump = analyze(['security', '--offline=true', `--root=${gpuRoot}`, '--no-pager', 'clawbox.service']);
  t.match(dump.stdout, /char-drm:rw/, 'the drop-in was applied');
});

t.test('the verify check catches an unknown key and a bad value (it can fail)', async (t) => {
  const broken = readFileSync(path.join(SYSTEMD_DIR, 'clawbox.service'), 'utf8').replace(
    '[Service]\n',
    '[Service]\nProtectSytem=strict\nRestart=sometimes\n',
  );
  const brokenRoot = buildUnitRoot({ 'clawbox-broken.service': broken });
  t.teardown(() => rmSync(brokenRoot, { recursive: true, force: true }));
  const result = analyze(['verify', `--root=${brokenRoot}`, 'clawbox-broken.service']);
  t.match(result.stderr, /Unknown key 'ProtectSytem'/);
  t.match(result.stderr, /restart specifier.*sometimes/);
});

t.test('verify fails when an ExecStart binary is missing from the root', async (t) => {
  const missing = '[Unit]\nDescription=x\n[Service]\nExecStart=/opt/nowhere/bin/x\n';
  const brokenRoot = buildUnitRoot({ 'clawbox-missing.service': missing });
  t.teardown(() => rmSync(brokenRoot, { recursive: true, force: true }));
  rmSync(path.join(brokenRoot, 'opt/nowhere/bin/x'));
  const result = analyze(['verify', `--root=${brokenRoot}`, 'clawbox-missing.service']);
  t.not(result.status, 0);
  t.match(result.stderr, /not executable/);
});

t.test('clawbox.service keeps its supervision and hardening settings', async (t) => {
  const entries = parseUnit(readFileSync(path.join(SYSTEMD_DIR, 'clawbox.service'), 'utf8'));
  const one = (key: string) => {
    const values = valuesOf(entries, key);
    t.equal(values.length, 1, `${key}= is set exactly once`);
    return values[0];
  };
  const expected: Record<string, string> = {
    Type: 'notify',
    NotifyAccess: 'main',
    Restart: 'on-failure',
    User: 'clawbox',
    StateDirectory: 'clawbox clawbox/models',
    ConfigurationDirectory: 'clawbox',
    ProtectSystem: 'strict',
    ProtectHome: 'yes',
    TemporaryFileSystem: '/tmp:mode=1777 /var/tmp:mode=1777',
    NoNewPrivileges: 'yes',
    CapabilityBoundingSet: '',
    AmbientCapabilities: '',
    DevicePolicy: 'closed',
    ProtectKernelTunables: 'yes',
    ProtectKernelModules: 'yes',
    ProtectControlGroups: 'yes',
    RestrictNamespaces: 'yes',
    RestrictSUIDSGID: 'yes',
    LockPersonality: 'yes',
  };
  for (const [key, value] of Object.entries(expected)) t.equal(one(key), value, `${key}=${value}`);
  t.same(valuesOf(entries, 'SystemCallFilter'), ['@system-service', '~@privileged']);
  t.match(one('WatchdogSec'), /^\d+s?$/, 'a watchdog interval');
  t.ok(Number(one('StartLimitBurst')) > 0, 'a start limit');
  t.ok(Number.parseInt(one('StartLimitIntervalSec') ?? '', 10) > 0, 'a start limit interval');
  t.ok(one('RestartPreventExitStatus')?.split(/\s+/).includes('78'), 'config invalid (78) is not restarted');
  t.ok(one('SupplementaryGroups')?.split(/\s+/).includes('dialout'), 'serial ports via dialout');
  t.same(one('RestrictAddressFamilies')?.split(/\s+/).sort(), ['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX']);
  t.same(valuesOf(entries, 'DeviceAllow').sort(), ['char-ttyACM rw', 'char-ttyAMA rw', 'char-ttyS rw', 'char-ttyUSB rw']);
  t.same(valuesOf(entries, 'MemoryDenyWriteExecute'), [], 'no MemoryDenyWriteExecute (V8 JIT needs W+X pages)');
  t.same(valuesOf(entries, 'PrivateDevices'), [], 'PrivateDevices would hide the serial ports');
  t.same(valuesOf(entries, 'PrivateTmp'), [], 'PrivateTmp would order it after systemd-tmpfiles-setup (TemporaryFileSystem instead)');
  t.match(one('ExecStart'), /^\/usr\/bin\/clawbox start --mode appliance --wait-for-config (\d+)$/);
  const wait = Number(/--wait-for-config (\d+)/.exec(one('ExecStart') ?? '')?.[1]);
  t.ok(wait > 0 && wait < Number.parseInt(one('TimeoutStartSec') ?? '', 10), 'waits for the config within its start timeout');
  t.ok(valuesOf(entries, 'Wants').join(' ').includes('clawbox-firstboot.service'), 'first boot is started with it');
  t.notOk(valuesOf(entries, 'After').join(' ').includes('clawbox-firstboot.service'), 'beside first boot, not after it');
  t.notOk(valuesOf(entries, 'After').join(' ').includes('systemd-tmpfiles-setup'), 'not after journald and tmpfiles (its own directories)');
});

t.test('clawbox-firstboot.service runs once, beside clawbox (which waits for its config)', async (t) => {
  const entries = parseUnit(readFileSync(path.join(SYSTEMD_DIR, 'clawbox-firstboot.service'), 'utf8'));
  t.same(valuesOf(entries, 'Type'), ['oneshot']);
  t.notOk(valuesOf(entries, 'Before').join(' ').split(/\s+/).includes('clawbox.service'), 'clawbox loads meanwhile');
  t.same(valuesOf(entries, 'ConditionPathExists'), ['!/etc/clawbox/config.yaml']);
  t.same(valuesOf(entries, 'StandardOutput'), ['journal'], 'the password never goes to the console via the journal');
});

t.test('a seed config is checked by clawbox start: kept once it is ready, replaced when it fails', async (t) => {
  const clawbox = parseUnit(readFileSync(path.join(SYSTEMD_DIR, 'clawbox.service'), 'utf8'));
  t.same(valuesOf(clawbox, 'OnFailure'), ['clawbox-seed-failed.service']);
  const accepted = parseUnit(readFileSync(path.join(SYSTEMD_DIR, 'clawbox-seed-accepted.service'), 'utf8'));
  t.same(valuesOf(accepted, 'ConditionPathExists'), ['/etc/clawbox/config.fallback.yaml'], 'only while a seed is pending');
  t.same(valuesOf(accepted, 'Requires'), ['clawbox.service'], 'not after a failed start');
  t.same(valuesOf(accepted, 'After'), ['clawbox.service'], 'after READY=1 (Type=notify)');
  t.same(valuesOf(accepted, 'ExecStart'), ['/usr/lib/clawbox/clawbox-firstboot seed-accepted']);
  const failed = parseUnit(readFileSync(path.join(SYSTEMD_DIR, 'clawbox-seed-failed.service'), 'utf8'));
  t.same(valuesOf(failed, 'ConditionPathExists'), ['/etc/clawbox/config.fallback.yaml'], 'a no-op without a pending seed');
  t.same(valuesOf(failed, 'ExecStart'), ['/usr/lib/clawbox/clawbox-firstboot seed-failed']);
  t.same(valuesOf(failed, 'WantedBy'), [], 'started by OnFailure= only');
  for (const unit of ['clawbox-seed-accepted.service', 'clawbox-seed-failed.service']) {
    const result = analyze(['security', '--offline=true', `--root=${root}`, '--threshold=30', '--no-pager', unit]);
    const score = new RegExp(`Overall exposure level for ${unit.replace('.', '\\.')}: ([\\d.]+)`).exec(result.stdout);
    t.ok(score, `${unit} has a score`);
    t.ok(Number(score?.[1]) <= 3.0, `${unit} exposure ${score?.[1]} <= 3.0`);
  }
});

t.test('clawbox-health.service judges the boot after clawbox started, only when there is a verdict to give', async (t) => {
  const entries = parseUnit(readFileSync(path.join(SYSTEMD_DIR, 'clawbox-health.service'), 'utf8'));
  t.same(valuesOf(entries, 'Type'), ['oneshot']);
  t.ok(valuesOf(entries, 'After').join(' ').split(/\s+/).includes('clawbox.service'));
  t.ok(valuesOf(entries, 'Before').join(' ').split(/\s+/).includes('boot-complete.target'));
  t.same(valuesOf(entries, 'FailureAction'), [], 'a failed or timed-out check never reboots a good slot');
  t.same(valuesOf(entries, 'ExecCondition'), ['/usr/lib/clawbox/clawbox-health-needed']);
  t.match(valuesOf(entries, 'ExecStart')[0], /^\/usr\/bin\/clawbox update health --boot /);
  const security = analyze(['security', '--offline=true', `--root=${root}`, '--threshold=40', '--no-pager', 'clawbox-health.service']);
  const score = /Overall exposure level for clawbox-health\.service: ([\d.]+)/.exec(security.stdout);
  t.ok(Number(score?.[1]) < 4.0, `exposure ${score?.[1]} < 4.0`);
});

t.test('clawbox-health-needed: the check runs on a trial boot or with an open update, and is skipped otherwise', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-health-needed-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'loader/entries'), { recursive: true });
  const env = { ...process.env, HEALTH_ESP: dir, HEALTH_HISTORY: path.join(dir, 'history.json'), HEALTH_CMDLINE: path.join(dir, 'cmdline') };
  const needed = () => spawnSync(path.join(SYSTEMD_DIR, 'clawbox-health-needed'), { env }).status;
  writeFileSync(path.join(dir, 'cmdline'), 'root=PARTLABEL=clawbox-root-b clawbox.slot=b rw\n');
  writeFileSync(path.join(dir, 'loader/entries/clawbox-1-a.conf'), '');
  writeFileSync(path.join(dir, 'loader/entries/clawbox-2-b.conf'), '');
  t.equal(needed(), 1, 'a good slot, no history: skipped');
  writeFileSync(path.join(dir, 'history.json'), JSON.stringify([{ result: 'good' }, { result: 'installed' }], null, 2));
  t.equal(needed(), 1, 'the last update is closed: skipped');
  writeFileSync(path.join(dir, 'history.json'), JSON.stringify([{ result: 'bad' }], null, 2));
  t.equal(needed(), 0, 'after a bad trial: runs (records the rollback)');
  rmSync(path.join(dir, 'history.json'));
  renameSync(path.join(dir, 'loader/entries/clawbox-2-b.conf'), path.join(dir, 'loader/entries/clawbox-2-b+2-1.conf'));
  t.equal(needed(), 0, 'on trial: runs');
  writeFileSync(path.join(dir, 'cmdline'), 'root=/dev/sda2 rw\n');
  t.equal(needed(), 1, 'not booted from a slot: skipped');
});

t.test('systemd-analyze security rates clawbox.service below 3.0 (offline, against the root)', async (t) => {
  const result = analyze(['security', '--offline=true', `--root=${root}`, '--threshold=30', '--no-pager', 'clawbox.service']);
  const score = /Overall exposure level for clawbox\.service: ([\d.]+)/.exec(result.stdout);
  t.ok(score, 'prints an exposure level');
  t.ok(Number(score?.[1]) < 3.0, `exposure ${score?.[1]} < 3.0`);
  t.equal(result.status, 0);
});

t.test('sysusers and tmpfiles snippets create the user, its groups and the model slot', async (t) => {
  const sysroot = buildUnitRoot();
  t.teardown(() => rmSync(sysroot, { recursive: true, force: true }));
  // What Debian's base-passwd ships: root, and dialout as gid 20.
  mkdirSync(path.join(sysroot, 'etc'));
  writeFileSync(path.join(sysroot, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
  writeFileSync(path.join(sysroot, 'etc/group'), 'root:x:0:\ndialout:x:20:\n');
  const sysusers = spawnSync('systemd-sysusers', [`--root=${sysroot}`, path.join(SYSTEMD_DIR, 'clawbox.sysusers.conf')], {
    encoding: 'utf8',
  });
  t.equal(sysusers.status, 0, sysusers.stderr);
  const passwd = readFileSync(path.join(sysroot, 'etc/passwd'), 'utf8');
  t.match(passwd, /^clawbox:x:\d+:\d+:clawbox appliance runtime:\/var\/lib\/clawbox:\/usr\/sbin\/nologin$/m);
  const uid = Number(/^clawbox:x:(\d+):/m.exec(passwd)?.[1]);
  t.ok(uid > 0 && uid < 1000, 'a system uid');
  t.match(readFileSync(path.join(sysroot, 'etc/group'), 'utf8'), /^dialout:x:20:clawbox$/m);

  const tmpfiles = spawnSync(
    'systemd-tmpfiles',
    [`--root=${sysroot}`, '--create', path.join(SYSTEMD_DIR, 'clawbox.tmpfiles.conf')],
    { encoding: 'utf8' },
  );
  t.equal(tmpfiles.status, 0, tmpfiles.stderr);
  const models = statSync(path.join(sysroot, 'var/lib/clawbox/models'));
  t.ok(models.isDirectory());
  t.equal(models.mode & 0o777, 0o750);
  t.equal(models.uid, uid, 'owned by clawbox');
});
