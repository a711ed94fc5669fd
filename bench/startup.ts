/**
 * `npm run bench:startup`: how long the compiled runtime takes from spawn to `/healthz` answering 200, and
 * how much CPU it has used by then, restarted after `kill -9` (the goal is 2 s), with no model configured.
 * CPU time (user + system of the runtime process, /proc/<pid>/stat at the first 200) is the figure to
 * compare on a shared machine: other load stretches wall time far more than it changes the work done.
 *
 * Variants, taking turns run by run so load on the machine falls on all of them alike:
 * - clawbox: this checkout, built first (tsc, then bin/precompile-validators.js as `npm run build` does),
 *   run as the installed command runs it: `node <flags> bin/clawbox.js start` (the node flags on
 *   bin/clawbox.js's first line), temp state dir (CLAWBOX_STATE_DIR), broker on port 0, HTTP on a free
 *   loopback port, no config file. Node's compile cache lives in the state dir (bin/clawbox.js).
 * - no compile cache: the same with NODE_DISABLE_COMPILE_CACHE=1.
 * - no precompiled validators: the same build copied without dist/runtime/operations/precompiled (Ajv
 *   compiles every schema at start), compile cache on.
 * - baseline (optional, BENCH_BASELINE_REF=<git ref>): clawbox as it was at that commit (`git archive`
 *   into a temp folder, this checkout's node_modules linked, built there), run the same way.
 * - bundled: the same build bundled by bin/bundle.js into one file per load step, as the OS image runs it
 *   (copied without dist/.tsbuildinfo, as in the image, so bin/clawbox.js takes the bundle).
 * - floor: `node -e` with a bare http server answering /healthz: what spawning Node and listening costs
 *   on this machine, with no clawbox code at all.
 *
 * Scenarios: "defaults" restarts on the state a first start leaves (demo devices, nothing else);
 * "persisted state" restarts on realistic state written once through this checkout's runtime and copied
 * to every variant: 1,000 retained messages, 200 offline persistent sessions with 20 queued QoS 1 messages
 * each, 500 audited device commands (bench/persisted-state.ts, as in bench:footprint). Each variant keeps
 * its state dir per scenario: an unmeasured first start (which also fills the compile cache), then every
 * measured run is spawn, poll /healthz every 10 ms until 200, read CPU time, `kill -9` (the first start is
 * killed once it has written the compile cache, a little after ready).
 * Prints a table of medians and writes everything to bench/results/startup-<time>.json.
 *
 * Environment: BENCH_RUNS (default 10), BENCH_BASELINE_REF (none), BENCH_NO_BUILD=1 (use dist as is),
 * BENCH_SCENARIOS (default "defaults,persisted state"), BENCH_VARIANTS (default all: a comma-separated list
 * of the names above, "baseline" for the baseline).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PERSISTED_STATE, writePersistedState } from './persisted-state.js';
import { installedNodeFlags, startRuntime } from './runtime-process.js';
import { machineFacts, median } from './stats.js';
import { freePort } from '../test/free-port.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const BASELINE_REF = process.env.BENCH_BASELINE_REF;
const NO_BUILD = process.env.BENCH_NO_BUILD === '1';
const SCENARIOS = (process.env.BENCH_SCENARIOS ?? 'defaults,persisted state').split(',').map((s) => s.trim()).filter(Boolean);
const ONLY = process.env.BENCH_VARIANTS?.split(',').map((s) => s.trim()).filter(Boolean);
const GOAL_MS = 2000;
const TIMEOUT_MS = 60_000;
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

interface Variant {
  name: string;
  how: string;
  command: string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
}

interface Run {
  scenario: string;
  variant: string;
  run: number;
  /** Spawn to the first byte on stdout (the first log line), ms; null when nothing was written before ready. */
  first_output_ms: number | null;
  /** Spawn to the first `/healthz` 200, ms. */
  ready_ms: number;
  /** User + system CPU time of the process at the first `/healthz` 200, ms. */
  cpu_ms: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function round(n: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** User + system CPU time of a live process, ms (fields 14 and 15 of /proc/<pid>/stat, after the command name). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** tsc, then the validators' precompile step where the tree has one (what `npm run build` does for the runtime). */
function build(root: string): void {
  log(`building the runtime in ${root} (tsc -p tsconfig.build.json) ...`);
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'ignore' });
  } catch {
    // tsc still emits when other files have type errors; what matters is that main.js is there.
  }
  if (!existsSync(path.join(root, 'dist/app/main.js'))) throw new Error(`the build in ${root} produced no dist/app/main.js`);
  const precompile = path.join(root, 'bin/precompile-validators.js');
  if (existsSync(precompile)) execFileSync(process.execPath, [precompile], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}

/** The tree of `ref` in `<scratch>/baseline`, with this checkout's node_modules, built. */
function buildBaseline(ref: string, scratch: string): { dir: string; commit: string } {
  const commit = execFileSync('git', ['rev-parse', '--short', ref], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dir = path.join(scratch, 'baseline');
  mkdirSync(dir);
  execFileSync('bash', ['-c', `git archive ${commit} | tar -x -C '${dir}'`], { cwd: ROOT });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  build(dir);
  return { dir, commit };
}

/** This checkout's built runtime without its precompiled validators, in `<scratch>/no-precompiled`. */
function copyWithoutPrecompiled(scratch: string): string {
  const dir = path.join(scratch, 'no-precompiled');
  mkdirSync(dir);
  for (const item of ['bin', 'dist', 'package.json']) cpSync(path.join(ROOT, item), path.join(dir, item), { recursive: true });
  rmSync(path.join(dir, 'dist/runtime/operations/precompiled'), { recursive: true, force: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

/** This checkout's built runtime bundled by bin/bundle.js (what the OS image runs), in `<scratch>/bundled`. */
function copyBundled(scratch: string): string {
  const dir = path.join(scratch, 'bundled');
  mkdirSync(dir);
  for (const item of ['bin', 'dist', 'package.json']) cpSync(path.join(ROOT, item), path.join(dir, item), { recursive: true });
  // As in the image: no tsc build info, so bin/clawbox.js takes the bundle.
  rmSync(path.join(dir, 'dist/.tsbuildinfo'), { force: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  execFileSync(process.execPath, [path.join(dir, 'bin/bundle.js'), dir], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  return dir;
}

const FLOOR_SCRIPT = `require('node:http').createServer((q, s) => { s.writeHead(q.url === '/healthz' ? 200 : 404); s.end('{"status":"serving"}'); }).listen(Number(process.env.CLAWBOX_HTTP_PORT), '127.0.0.1', () => console.log('listening'));`;

function healthz(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? null);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Files in the state dir's compile cache (bin/compile-cache.js). */
function compileCacheFiles(stateDir: string): number {
  const dir = path.join(stateDir, 'cache', 'node-compile');
  return existsSync(dir) ? readdirSync(dir, { recursive: true }).length : 0;
}

/**
 * One start: spawn, poll /healthz until 200, read the CPU time, then kill -9. With `fillCache` (a first
 * start on an empty state dir), the kill waits (up to 10 s) until the runtime has written Node's compile
 * cache, which it does a little after ready.
 */
async function startOnce(variant: Variant, stateDir: string, fillCache = false): Promise<Omit<Run, 'scenario' | 'variant' | 'run'>> {
  const httpPort = await freePort();
  const t0 = performance.now();
  const child = spawn(variant.command[0]!, variant.command.slice(1), {
    cwd: variant.cwd,
    env: {
      ...process.env,
      ...variant.env,
      CLAWBOX_CONFIG: '',
      CLAWBOX_STATE_DIR: stateDir,
      CLAWBOX_BROKER_PORT: '0',
      CLAWBOX_HTTP_PORT: String(httpPort),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let firstOutput: number | null = null;
  let stderr = '';
  child.stdout!.once('data', () => {
    firstOutput ??= performance.now() - t0;
  });
  child.stdout!.resume();
  child.stderr!.on('data', (chunk: Buffer) => {
    if (stderr.length < 4000) stderr += chunk.toString();
  });
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${variant.name} exited (${child.exitCode ?? child.signalCode}) before /healthz said 200: ${stderr.trim()}`);
      }
      if (performance.now() - t0 > TIMEOUT_MS) throw new Error(`${variant.name}: no /healthz 200 after ${TIMEOUT_MS} ms`);
      if ((await healthz(httpPort)) === 200) {
        const ready = performance.now() - t0;
        const result = { first_output_ms: firstOutput === null ? null : round(firstOutput), ready_ms: round(ready), cpu_ms: round(cpuMs(child.pid!)) };
        const usesCache = variant.name !== 'floor' && variant.env?.NODE_DISABLE_COMPILE_CACHE !== '1';
        for (const until = performance.now() + 10_000; fillCache && usesCache && performance.now() < until; ) {
          if (compileCacheFiles(stateDir) > 0) break;
          await sleep(50);
        }
        return result;
      }
      await sleep(10);
    }
  } finally {
    await killHard(child);
  }
}

/** Realistic state written once through this checkout's runtime, killed -9 afterwards; without its compile cache. */
async function persistedStateTemplate(scratch: string): Promise<string> {
  const dir = path.join(scratch, 'persisted-state-template');
  log('writing the persisted state (1,000 retained, 200 sessions x 20 queued, 500 audited commands) ...');
  const rt = await startRuntime({ stateDir: dir });
  try {
    await writePersistedState(rt.mqttPort);
  } finally {
    await rt.kill();
  }
  rmSync(path.join(dir, 'cache'), { recursive: true, force: true });
  return dir;
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg().map((n) => round(n, 2));
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'clawbox-bench-startup-'));
  try {
    if (!NO_BUILD) build(ROOT);
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    const at = `${head}${dirty ? ' + working tree' : ''}`;
    const flags = installedNodeFlags();
    const installed = (root: string): string[] => [process.execPath, ...flags, path.join(root, 'bin/clawbox.js'), 'start'];
    const noPrecompiled = copyWithoutPrecompiled(scratch);
    const variants: Variant[] = [
      { name: 'clawbox', how: `node ${flags.join(' ')} bin/clawbox.js start at ${at}`, command: installed(ROOT), cwd: ROOT },
      {
        name: 'no compile cache',
        how: `the same with NODE_DISABLE_COMPILE_CACHE=1`,
        command: installed(ROOT),
        cwd: ROOT,
        env: { NODE_DISABLE_COMPILE_CACHE: '1' },
      },
      { name: 'no precompiled validators', how: 'the same build without dist/runtime/operations/precompiled', command: installed(noPrecompiled), cwd: noPrecompiled },
    ];
    if (existsSync(path.join(ROOT, 'bin/bundle.js'))) {
      const bundled = copyBundled(scratch);
      variants.push({ name: 'bundled', how: 'the same build bundled by bin/bundle.js (as the OS image runs it)', command: installed(bundled), cwd: bundled });
    }
    const baseline = BASELINE_REF ? buildBaseline(BASELINE_REF, scratch) : undefined;
    if (baseline) {
      variants.push({
        name: `baseline ${baseline.commit}`,
        how: `node ${installedNodeFlags(path.join(baseline.dir, 'bin/clawbox.js')).join(' ')} bin/clawbox.js start at ${baseline.commit}`,
        command: [process.execPath, ...installedNodeFlags(path.join(baseline.dir, 'bin/clawbox.js')), path.join(baseline.dir, 'bin/clawbox.js'), 'start'],
        cwd: baseline.dir,
      });
    }
    variants.push({ name: 'floor', how: 'node -e with a bare http server answering /healthz', command: [process.execPath, '-e', FLOOR_SCRIPT], cwd: scratch });

    if (ONLY) variants.splice(0, variants.length, ...variants.filter((v) => ONLY.includes(v.name) || (v.name.startsWith('baseline ') && ONLY.includes('baseline'))));
    const template = SCENARIOS.includes('persisted state') ? await persistedStateTemplate(scratch) : undefined;
    const stateDirOf = (scenario: string, variant: Variant): string => path.join(scratch, 'state', `${scenario}-${variant.name}`.replace(/[^a-z0-9-]+/gi, '_'));

    const runs: Run[] = [];
    const failures: { scenario: string; variant: string; run: number; error: string }[] = [];
    for (const scenario of SCENARIOS) {
      // First starts create the state dirs (copied from the template for persisted state), fill the
      // compile cache and warm the page cache; not measured.
      for (const variant of variants) {
        const stateDir = stateDirOf(scenario, variant);
        if (scenario === 'persisted state') cpSync(template!, stateDir, { recursive: true });
        else mkdirSync(stateDir, { recursive: true });
        await startOnce(variant, stateDir, true).catch((error: unknown) => {
          log(`first start of ${variant.name} failed (${error instanceof Error ? error.message : String(error)}); trying once more`);
          return startOnce(variant, stateDir, true);
        });
      }
      for (let run = 1; run <= RUNS; run++) {
        // Rotate the order so no variant always runs right after another one's kill.
        for (let i = 0; i < variants.length; i++) {
          const variant = variants[(run + i) % variants.length]!;
          try {
            const result = await startOnce(variant, stateDirOf(scenario, variant));
            runs.push({ scenario, variant: variant.name, run, ...result });
            log(`${scenario}, run ${run}, ${variant.name}: /healthz 200 at ${result.ready_ms} ms, CPU ${result.cpu_ms} ms`);
          } catch (error) {
            // A start that never got to 200 is reported, not hidden, and left out of the figures.
            const text = error instanceof Error ? error.message : String(error);
            failures.push({ scenario, variant: variant.name, run, error: text });
            log(`${scenario}, run ${run}, ${variant.name}: FAILED: ${text}`);
          }
        }
      }
    }

    const summary = SCENARIOS.flatMap((scenario) =>
      variants.map((variant) => {
        const mine = runs.filter((r) => r.scenario === scenario && r.variant === variant.name);
        const ready = mine.map((r) => r.ready_ms);
        const cpu = mine.map((r) => r.cpu_ms);
        const first = mine.map((r) => r.first_output_ms).filter((n): n is number => n !== null);
        return {
          scenario,
          variant: variant.name,
          how: variant.how,
          ready_median_ms: ready.length ? round(median(ready)) : null,
          ready_min_ms: ready.length ? Math.min(...ready) : null,
          ready_max_ms: ready.length ? Math.max(...ready) : null,
          cpu_median_ms: cpu.length ? round(median(cpu)) : null,
          cpu_min_ms: cpu.length ? Math.min(...cpu) : null,
          cpu_max_ms: cpu.length ? Math.max(...cpu) : null,
          first_output_median_ms: first.length ? round(median(first)) : null,
          within_goal: ready.filter((n) => n <= GOAL_MS).length,
          failed: failures.filter((f) => f.scenario === scenario && f.variant === variant.name).length,
        };
      }),
    );
    const machine = { hostname: os.hostname(), ...machineFacts(loadBefore) };
    const table = [
      `| scenario | variant | CPU time at ready, median (min-max) | spawn to /healthz 200, median (min-max) | first log line, median | within ${GOAL_MS / 1000} s | failed |`,
      '|---|---|---:|---:|---:|---:|---:|',
      ...summary.map(
        (s) =>
          `| ${s.scenario} | ${s.variant} | ${s.cpu_median_ms} ms (${s.cpu_min_ms}-${s.cpu_max_ms}) | ${s.ready_median_ms} ms (${s.ready_min_ms}-${s.ready_max_ms}) | ${s.first_output_median_ms ?? '-'} ms | ${s.within_goal}/${RUNS} | ${s.failed} |`,
      ),
    ].join('\n');
    process.stdout.write(`\nStartup benchmark: ${RUNS} restarts after kill -9 per variant and scenario, no model configured, variants alternating\n`);
    process.stdout.write(
      `Machine: ${machine.hostname}, ${machine.cpus} vCPU ${machine.cpu_model}, ${machine.memory_gb} GB, Node ${machine.node}; ` +
        `load average ${machine.load_average_before.join(' ')} before, ${machine.load_average_after.join(' ')} after\n\n`,
    );
    process.stdout.write(`${table}\n\n${variants.map((v) => `- ${v.name}: ${v.how}`).join('\n')}\n`);
    const outDir = path.join(ROOT, 'bench/results');
    mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, `startup-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(
      file,
      `${JSON.stringify(
        { when: new Date().toISOString(), machine, baseline: baseline?.commit ?? null, settings: { RUNS, GOAL_MS, SCENARIOS, persisted_state: PERSISTED_STATE }, summary, runs, failures, table },
        null,
        2,
      )}\n`,
    );
    process.stdout.write(`\nResults: ${path.relative(ROOT, file)}\n`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
