/**
 * `npm run bench:startup`: how long the compiled runtime takes from spawn to `/healthz` answering 200,
 * restarted after `kill -9` (the goal is 2 s), with no model configured.
 *
 * - clawbox: this checkout, built first (`npm run build`), run as the installed command runs it:
 *   `node <flags> bin/clawbox.js start` (the node flags on bin/clawbox.js's first line), temp state dir (CLAWBOX_STATE_DIR), broker on port 0, HTTP on a free
 *   loopback port, no config file.
 * - baseline (optional, BENCH_BASELINE_REF=<git ref>): clawbox as it was at that commit (`git archive`
 *   into a temp folder, this checkout's node_modules linked, built there), run the same way.
 * - floor: `node -e` with a bare http server answering /healthz: what spawning Node and listening costs
 *   on this machine, with no clawbox code at all.
 *
 * Each variant keeps one state dir: an unmeasured first start creates it, then every measured run is a
 * spawn, poll /healthz every 10 ms until 200, `kill -9` (so the next run restarts from what a kill
 * leaves). Variants alternate run by run so load on the machine falls on all of them alike. Per run it
 * records the first stdout line (the first log line: module loading is done by then) and /healthz 200.
 * Prints medians and writes everything to bench/results/startup-<time>.json.
 *
 * Environment: BENCH_RUNS (default 10), BENCH_BASELINE_REF (none), BENCH_NO_BUILD=1 (use dist as is).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineFacts, median } from './stats.js';
import { installedNodeFlags } from './runtime-process.js';
import { freePort } from '../test/free-port.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const BASELINE_REF = process.env.BENCH_BASELINE_REF;
const NO_BUILD = process.env.BENCH_NO_BUILD === '1';
const GOAL_MS = 2000;
const TIMEOUT_MS = 60_000;

interface Variant {
  name: string;
  how: string;
  command: string[];
  cwd: string;
  stateDir: string;
}

interface Run {
  variant: string;
  run: number;
  /** Spawn to the first byte on stdout (the first log line), ms; null when nothing was written before ready. */
  first_output_ms: number | null;
  /** Spawn to the first `/healthz` 200, ms. */
  ready_ms: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function round(n: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function tsc(root: string): void {
  log(`building the runtime in ${root} (tsc -p tsconfig.build.json) ...`);
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
      cwd: root,
      stdio: 'ignore',
    });
  } catch {
    // tsc still emits when other files have type errors; what matters is that main.js is there.
  }
  if (!existsSync(path.join(root, 'dist/app/main.js'))) throw new Error(`the build in ${root} produced no dist/app/main.js`);
}

/** The tree of `ref` in `<scratch>/baseline`, with this checkout's node_modules, built. */
function buildBaseline(ref: string, scratch: string): { dir: string; commit: string } {
  const commit = execFileSync('git', ['rev-parse', '--short', ref], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dir = path.join(scratch, 'baseline');
  mkdirSync(dir);
  execFileSync('bash', ['-c', `git archive ${commit} | tar -x -C '${dir}'`], { cwd: ROOT });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  tsc(dir);
  return { dir, commit };
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

/** One start: spawn, poll /healthz until 200, then kill -9. */
async function startOnce(variant: Variant): Promise<{ first_output_ms: number | null; ready_ms: number }> {
  const httpPort = await freePort();
  const t0 = performance.now();
  const child = spawn(variant.command[0]!, variant.command.slice(1), {
    cwd: variant.cwd,
    env: {
      ...process.env,
      CLAWBOX_CONFIG: '',
      CLAWBOX_STATE_DIR: variant.stateDir,
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
      if ((await healthz(httpPort)) === 200) return { first_output_ms: firstOutput, ready_ms: performance.now() - t0 };
      await sleep(10);
    }
  } finally {
    await killHard(child);
  }
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg().map((n) => round(n, 2));
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'clawbox-bench-startup-'));
  try {
    if (!NO_BUILD) tsc(ROOT);
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    const variants: Variant[] = [
      {
        name: 'clawbox',
        how: `node ${installedNodeFlags().join(' ')} bin/clawbox.js start at ${head}${dirty ? ' + working tree' : ''}`,
        command: [process.execPath, ...installedNodeFlags(), path.join(ROOT, 'bin/clawbox.js'), 'start'],
        cwd: ROOT,
        stateDir: path.join(scratch, 'clawbox-state'),
      },
    ];
    const baseline = BASELINE_REF ? buildBaseline(BASELINE_REF, scratch) : undefined;
    if (baseline) {
      variants.push({
        name: 'baseline',
        how: `node bin/clawbox.js start at ${baseline.commit}`,
        command: [process.execPath, path.join(baseline.dir, 'bin/clawbox.js'), 'start'],
        cwd: baseline.dir,
        stateDir: path.join(scratch, 'baseline-state'),
      });
    }
    variants.push({
      name: 'floor',
      how: 'node -e with a bare http server answering /healthz',
      command: [process.execPath, '-e', FLOOR_SCRIPT],
      cwd: scratch,
      stateDir: path.join(scratch, 'floor-state'),
    });

    // First starts create the state dirs (and warm the page cache); not measured.
    for (const variant of variants) {
      await startOnce(variant).catch((error: unknown) => {
        log(`first start of ${variant.name} failed (${error instanceof Error ? error.message : String(error)}); trying once more`);
        return startOnce(variant);
      });
    }

    const runs: Run[] = [];
    const failures: { variant: string; run: number; error: string }[] = [];
    for (let run = 1; run <= RUNS; run++) {
      // Rotate the order so no variant always runs right after another one's kill.
      for (let i = 0; i < variants.length; i++) {
        const variant = variants[(run + i) % variants.length]!;
        try {
          const result = await startOnce(variant);
          runs.push({ variant: variant.name, run, first_output_ms: round(result.first_output_ms ?? Number.NaN), ready_ms: round(result.ready_ms) });
          log(`run ${run} ${variant.name}: first output ${round(result.first_output_ms ?? Number.NaN)} ms, /healthz 200 at ${round(result.ready_ms)} ms`);
        } catch (error) {
          // A start that never got to 200 is reported, not hidden, and left out of the figures.
          const text = error instanceof Error ? error.message : String(error);
          failures.push({ variant: variant.name, run, error: text });
          log(`run ${run} ${variant.name}: FAILED: ${text}`);
        }
      }
    }

    const summary = variants.map((variant) => {
      const mine = runs.filter((r) => r.variant === variant.name);
      const ready = mine.map((r) => r.ready_ms);
      if (ready.length === 0) ready.push(Number.NaN);
      const first = mine.map((r) => r.first_output_ms).filter((n): n is number => n !== null && Number.isFinite(n));
      return {
        variant: variant.name,
        how: variant.how,
        ready_median_ms: round(median(ready)),
        ready_min_ms: Math.min(...ready),
        ready_max_ms: Math.max(...ready),
        first_output_median_ms: first.length ? round(median(first)) : null,
        within_goal: ready.filter((n) => n <= GOAL_MS).length,
        failed: failures.filter((f) => f.variant === variant.name).length,
      };
    });
    const machine = { ...{ hostname: os.hostname() }, ...machineFacts(loadBefore) };
    const table = [
      `| variant | spawn to /healthz 200, median (min-max) | spawn to first log line, median | within ${GOAL_MS / 1000} s | failed | how |`,
      '|---|---|---|---|---|---|',
      ...summary.map(
        (s) =>
          `| ${s.variant} | ${s.ready_median_ms} ms (${s.ready_min_ms}-${s.ready_max_ms}) | ${s.first_output_median_ms ?? '-'} ms | ${s.within_goal}/${RUNS} | ${s.failed} | ${s.how} |`,
      ),
    ].join('\n');
    process.stdout.write(`\nStartup benchmark: ${RUNS} restarts after kill -9 per variant, no model configured, variants alternating\n`);
    process.stdout.write(
      `Machine: ${machine.hostname}, ${machine.cpus} vCPU ${machine.cpu_model}, ${machine.memory_gb} GB, Node ${machine.node}; ` +
        `load average ${machine.load_average_before.join(' ')} before, ${machine.load_average_after.join(' ')} after\n\n`,
    );
    process.stdout.write(`${table}\n`);
    const outDir = path.join(ROOT, 'bench/results');
    mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, `startup-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(
      file,
      `${JSON.stringify({ when: new Date().toISOString(), machine, baseline: baseline?.commit ?? null, settings: { RUNS, GOAL_MS }, summary, runs, failures, table }, null, 2)}\n`,
    );
    process.stdout.write(`\nResults: ${path.relative(ROOT, file)}\n`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
