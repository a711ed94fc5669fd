/**
 * `npm run bench:mqtt-interop`: Eclipse Paho's MQTT interoperability suites (client_test.py for 3.1.1,
 * client_test5.py for MQTT 5; re-expressed in bench/interop/, see the headers there) against the embedded
 * broker and against mosquitto, in the same run. Prints a table (test x broker: pass/fail and why) and the
 * pass counts, and writes bench/results/mqtt-interop-<time>.json.
 *
 * - clawbox: the runtime as `npm start` runs it (bin/build-if-stale.js, then `node bin/clawbox.js start`;
 *   the sources through tsx when the build fails), its own process, free loopback ports, a temp state dir,
 *   and a config file with what the suite needs of a broker: a topic filter it may not subscribe to
 *   ("test/nosubscribe", an anonymous ACL deny rule), `broker.max_keepalive: 60` (the server keep alive the
 *   MQTT 5 suite expects) and no devices (`devices: []`: the demo devices' retained state, e.g.
 *   clawbox/lamp, matches the suite's "+/+" and is protected from anonymous clearing, so the
 *   retained-message tests would count it).
 * - mosquitto: the Debian package on a free loopback port, anonymous, no persistence, an ACL file that
 *   denies "test/nosubscribe" and allows the rest, and `max_keepalive 60` (the server keep alive the MQTT 5
 *   suite expects).
 *
 * - baseline (optional, INTEROP_BASELINE_REF=<git ref>): clawbox as it was at that commit (`git archive`
 *   into a temp folder, this checkout's node_modules linked, the sources run through tsx), with the same
 *   config (less the settings that tree does not know yet): the before of a before/after in one run.
 *
 * Environment: INTEROP_SUITES (default "mqtt311,mqtt5"), INTEROP_ONLY (comma-separated test names),
 * INTEROP_BROKERS (default "clawbox,mosquitto"), INTEROP_BASELINE_REF (none), INTEROP_LIMIT_S (per-test
 * limit, default 60), INTEROP_TRACE=1 (every packet on stderr).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../test/free-port.js';
import { type SuiteName, type SuiteResults, SUITES, runSuite } from './interop/run.js';
import { type RuntimeProcess, ROOT, startRuntime, waitForPort } from './runtime-process.js';
import { machineFacts } from './stats.js';

const SUITE_NAMES = (process.env.INTEROP_SUITES ?? 'mqtt311,mqtt5').split(',').filter(Boolean) as SuiteName[];
const ONLY = process.env.INTEROP_ONLY ? process.env.INTEROP_ONLY.split(',') : undefined;
const BROKERS = (process.env.INTEROP_BROKERS ?? 'clawbox,mosquitto').split(',').filter(Boolean);
const LIMIT_S = Number(process.env.INTEROP_LIMIT_S ?? 60);
const BASELINE_REF = process.env.INTEROP_BASELINE_REF;

const log = (line: string) => process.stderr.write(`${line}\n`);

interface Target {
  name: string;
  version: string;
  how: string;
  port: number;
  stop(): Promise<void>;
}

function mosquittoVersion(): string {
  const run = spawnSync('mosquitto', ['-h'], { encoding: 'utf8' });
  return (run.stdout || run.stderr).split('\n')[0]?.trim() || 'unknown';
}

async function startMosquitto(scratch: string): Promise<Target> {
  const port = await freePort();
  const acl = path.join(scratch, 'mosquitto.acl');
  writeFileSync(acl, ['topic deny test/nosubscribe', 'topic readwrite #', ''].join('\n'));
  // mosquitto started as root reads its ACL file after it dropped to the mosquitto user.
  chmodSync(scratch, 0o755);
  chmodSync(acl, 0o644);
  const conf = path.join(scratch, 'mosquitto.conf');
  writeFileSync(
    conf,
    [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', `acl_file ${acl}`, 'max_keepalive 60', 'log_dest stderr', 'log_type error', ''].join('\n'),
  );
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port, child, 10_000);
  return {
    name: 'mosquitto',
    version: mosquittoVersion(),
    how: 'Debian mosquitto, anonymous, no persistence, ACL deny test/nosubscribe, max_keepalive 60',
    port,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** `npm start`'s build step; the sources through tsx when there is no build to run. */
function runtimeCommand(): { command: string[]; how: string } {
  spawnSync(process.execPath, [path.join(ROOT, 'bin/build-if-stale.js')], { cwd: ROOT, stdio: 'ignore' });
  if (existsSync(path.join(ROOT, 'dist/app/main.js'))) {
    return { command: [process.execPath, path.join(ROOT, 'bin/clawbox.js'), 'start'], how: 'node bin/clawbox.js start (built by bin/build-if-stale.js, as npm start)' };
  }
  return { command: [process.execPath, '--import', 'tsx', path.join(ROOT, 'app/main.ts'), 'start'], how: 'node --import tsx app/main.ts start (no build)' };
}

/** The tree of `ref` in `<scratch>/baseline`, with this checkout's node_modules. */
function checkout(ref: string, scratch: string): { dir: string; commit: string } {
  const commit = execFileSync('git', ['rev-parse', '--short', ref], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dir = path.join(scratch, 'baseline');
  mkdirSync(dir);
  execFileSync('bash', ['-c', `git archive ${commit} | tar -x -C '${dir}'`], { cwd: ROOT });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return { dir, commit };
}

async function startClawbox(scratch: string, baseline?: { dir: string; commit: string }): Promise<Target> {
  const name = baseline ? 'baseline' : 'clawbox';
  const root = baseline?.dir ?? ROOT;
  // A baseline from before broker.max_keepalive cannot be told it (and is refused an unknown key).
  const knowsMaxKeepalive = readFileSync(path.join(root, 'runtime/config/schema.ts'), 'utf8').includes('max_keepalive');
  const configFile = path.join(scratch, `${name}.yaml`);
  writeFileSync(
    configFile,
    [
      'broker:',
      ...(knowsMaxKeepalive ? ['  max_keepalive: 60'] : []),
      '  anonymous_acl:',
      '    - { allow: false, access: subscribe, topic: test/nosubscribe }',
      'devices: []',
      '',
    ].join('\n'),
  );
  const stateDir = path.join(scratch, `${name}-state`);
  mkdirSync(stateDir);
  const { command, how } = baseline
    ? { command: [process.execPath, '--import', 'tsx', path.join(root, 'app/main.ts'), 'start'], how: 'node --import tsx app/main.ts start (sources)' }
    : runtimeCommand();
  log(`starting ${name}: ${how}`);
  const runtime: RuntimeProcess = await startRuntime({ stateDir, configFile, command, cwd: root });
  const commit = baseline?.commit ?? execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dirty = !baseline && execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
  return {
    name,
    version: `clawbox ${commit}${dirty ? ' (with uncommitted changes)' : ''}`,
    how: `${how}; config: ${knowsMaxKeepalive ? 'max_keepalive 60, ' : ''}anonymous ACL deny subscribe test/nosubscribe, devices: []`,
    port: runtime.mqttPort,
    stop: () => runtime.kill(),
  };
}

function table(names: string[], byBroker: Record<string, SuiteResults[]>): string {
  const lines: string[] = [];
  for (const suite of SUITE_NAMES) {
    lines.push('', `${suite === 'mqtt5' ? 'MQTT 5' : 'MQTT 3.1.1'} (${SUITES[suite].source})`, '');
    lines.push(`| test | ${names.join(' | ')} |`, `|---|${names.map(() => '---|').join('')}`);
    const tests = new Set<string>();
    for (const name of names) for (const r of byBroker[name]!.find((s) => s.suite === suite)?.results ?? []) tests.add(r.name);
    for (const test of [...tests].sort()) {
      const cells = names.map((name) => {
        const r = byBroker[name]!.find((s) => s.suite === suite)?.results.find((x) => x.name === test);
        if (!r) return '–';
        return r.passed ? 'pass' : `**fail**: ${r.reason.replace(/\|/g, '\\|').slice(0, 140)}`;
      });
      lines.push(`| ${test} | ${cells.join(' | ')} |`);
    }
    const counts = names.map((name) => {
      const s = byBroker[name]!.find((x) => x.suite === suite);
      if (!s) return '–';
      if (s.setupError) return `setup failed: ${s.setupError}`;
      return `**${s.results.filter((r) => r.passed).length} / ${s.results.length}**`;
    });
    lines.push(`| passed | ${counts.join(' | ')} |`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg();
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'clawbox-interop-'));
  const byBroker: Record<string, SuiteResults[]> = {};
  const targets: Omit<Target, 'stop' | 'port'>[] = [];
  const began = Date.now();
  try {
    const baseline = BASELINE_REF ? checkout(BASELINE_REF, scratch) : undefined;
    for (const name of [...BROKERS, ...(baseline ? ['baseline'] : [])]) {
      const target =
        name === 'mosquitto' ? await startMosquitto(scratch) : await startClawbox(scratch, name === 'baseline' ? baseline : undefined);
      targets.push({ name: target.name, version: target.version, how: target.how });
      byBroker[name] = [];
      try {
        for (const suite of SUITE_NAMES) {
          log(`${name}: ${suite} on port ${target.port}`);
          byBroker[name]!.push(
            await runSuite(suite, { host: '127.0.0.1', port: target.port }, { limitSeconds: LIMIT_S, log, ...(ONLY ? { only: ONLY } : {}) }),
          );
        }
      } finally {
        await target.stop();
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }

  const names = Object.keys(byBroker);
  const machine = machineFacts(loadBefore);
  const summary: Record<string, Record<string, string>> = {};
  for (const name of names) {
    summary[name] = {};
    for (const s of byBroker[name]!) summary[name]![s.suite] = s.setupError ? 'setup failed' : `${s.results.filter((r) => r.passed).length}/${s.results.length}`;
  }
  process.stdout.write(`${table(names, byBroker)}\n\n`);
  for (const name of names) process.stdout.write(`${name}: ${Object.entries(summary[name]!).map(([suite, count]) => `${suite} ${count}`).join(', ')}\n`);
  process.stdout.write(
    `\nMachine: ${machine.cpus} vCPU ${machine.cpu_model}, ${machine.memory_gb} GB, Node ${machine.node}, load ${machine.load_average_before.join('/')} before; ${Math.round((Date.now() - began) / 1000)} s\n`,
  );
  const results = path.join(ROOT, 'bench/results');
  mkdirSync(results, { recursive: true });
  const file = path.join(results, `mqtt-interop-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  const json = {
    bench: 'mqtt-interop',
    when: new Date().toISOString(),
    machine,
    seconds: Math.round((Date.now() - began) / 1000),
    suites: Object.fromEntries(SUITE_NAMES.map((s) => [s, SUITES[s].source])),
    brokers: targets,
    summary,
    results: byBroker,
  };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify({ summary, machine: { cpus: machine.cpus, cpu_model: machine.cpu_model, load_average_before: machine.load_average_before } })}\n`);
  log(`wrote ${path.relative(ROOT, file)}`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    log(`bench:mqtt-interop failed: ${(error as Error).stack ?? String(error)}`);
    process.exit(1);
  },
);
