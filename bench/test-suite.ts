/**
 * `npm run bench:test-suite`: how long the tap suite (or the files given) takes, and where its time goes,
 * under a few settings run one after another on the same machine, so the settings can be compared:
 * - current: tap as .taprc sets it up.
 * - hooked children: the same with `--node-arg=--import=tsx` only, i.e. without test/unhook-children.ts:
 *   every Node process a test starts carries tap's processinfo loader again (the baseline for that file).
 * - jobs N: the current settings with `--jobs=N` (e.g. "jobs 3": do test files waiting on child processes
 *   and timers leave the CPUs idle enough that one more job helps on this machine?).
 * Per setting: wall time of the whole `tap` run, CPU time of it and everything it started (user + system,
 * from /usr/bin/time), pass/fail counts, and every file's own time from tap's TAP output (the file's
 * `# time=`, which starts once its imports are loaded, so a file's process start is not in it: the gap
 * between the wall time × jobs and the sum of file times is what starting test processes costs).
 * Prints a table per setting, the 20 slowest files with their share of the summed file time, and writes
 * everything to bench/results/test-suite-<time>.json. On a shared machine CPU time is the steadier figure.
 *
 *   tsx bench/test-suite.ts [FILE...]
 *
 * Environment: BENCH_SETTINGS (default "current,hooked children"; a comma list of the names above, e.g.
 * "current,jobs 3"), BENCH_ROUNDS (default 1; settings take turns round by round).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineFacts, median } from './stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface FileTime {
  file: string;
  ms: number;
  ok: boolean;
}

interface RunResult {
  setting: string;
  round: number;
  wall_s: number;
  cpu_s: number;
  load_average_before: number[];
  pass: number;
  fail: number;
  files: FileTime[];
}

/** The tap arguments of a setting; unknown names are refused before anything runs. */
function settingArgs(name: string): string[] {
  if (name === 'current') return [];
  if (name === 'hooked children') return ['--node-arg=--import=tsx'];
  const jobs = /^jobs (\d+)$/.exec(name);
  if (jobs) return [`--jobs=${jobs[1]}`];
  throw new Error(`unknown setting "${name}" (current, hooked children, jobs N)`);
}

/** Top-level test points of tap's TAP output: one per file, with the file's own time. */
function fileTimes(tap: string): FileTime[] {
  const files: FileTime[] = [];
  for (const match of tap.matchAll(/^(ok|not ok) \d+ - (\S+) # time=([\d.]+)ms/gm)) {
    files.push({ file: match[2]!, ms: Number(match[3]), ok: match[1] === 'ok' });
  }
  return files;
}

function runOnce(setting: string, round: number, files: string[]): RunResult {
  const load = os.loadavg();
  // /usr/bin/time reports the CPU time of tap and of every process it waited for (test files and theirs).
  const result = spawnSync('/usr/bin/time', ['-f', 'TIME %e %U %S', 'npx', 'tap', '--reporter=tap', ...settingArgs(setting), ...files], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 1024 * 1024 * 1024,
  });
  const times = /TIME ([\d.]+) ([\d.]+) ([\d.]+)\s*$/.exec(result.stderr);
  if (!times) throw new Error(`no timing from /usr/bin/time (status ${result.status}): ${result.stderr.slice(-2000)}`);
  const summary = /^# \{ total: \d+, pass: (\d+)(?:, fail: (\d+))?/m.exec(result.stdout);
  return {
    setting,
    round,
    wall_s: Number(times[1]),
    cpu_s: Math.round((Number(times[2]) + Number(times[3])) * 100) / 100,
    load_average_before: load.map((n) => Math.round(n * 100) / 100),
    pass: Number(summary?.[1] ?? 0),
    fail: Number(summary?.[2] ?? 0),
    files: fileTimes(result.stdout),
  };
}

function main(): void {
  const files = process.argv.slice(2);
  const settings = (process.env.BENCH_SETTINGS ?? 'current,hooked children').split(',').map((s) => s.trim()).filter(Boolean);
  settings.forEach(settingArgs);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 1);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('BENCH_ROUNDS must be a positive integer');
  const loadBefore = os.loadavg();
  const runs: RunResult[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const setting of settings) {
      process.stderr.write(`test-suite: round ${round}, ${setting}: running tap ${files.length ? files.join(' ') : '(whole suite)'}\n`);
      const run = runOnce(setting, round, files);
      process.stderr.write(`test-suite: round ${round}, ${setting}: ${run.wall_s} s wall, ${run.cpu_s} CPU-s, ${run.pass} pass, ${run.fail} fail\n`);
      runs.push(run);
    }
  }

  console.log('\nsetting            wall s (median)  CPU s (median)  sum of file times s  files  fail');
  for (const setting of settings) {
    const mine = runs.filter((r) => r.setting === setting);
    const summed = median(mine.map((r) => r.files.reduce((n, f) => n + f.ms, 0) / 1000));
    console.log(
      `${setting.padEnd(18)} ${median(mine.map((r) => r.wall_s)).toFixed(1).padStart(15)}  ${median(mine.map((r) => r.cpu_s)).toFixed(1).padStart(14)}  ${summed.toFixed(1).padStart(19)}  ${String(mine[0]!.files.length).padStart(5)}  ${mine.reduce((n, r) => n + r.fail, 0)}`,
    );
  }
  const first = runs.find((r) => r.setting === settings[0])!;
  const total = first.files.reduce((n, f) => n + f.ms, 0);
  console.log(`\n20 slowest files (${settings[0]}, round 1): own time s, share of the summed file time`);
  for (const f of [...first.files].sort((a, b) => b.ms - a.ms).slice(0, 20)) {
    console.log(`${(f.ms / 1000).toFixed(1).padStart(7)}  ${((100 * f.ms) / total).toFixed(1).padStart(5)} %  ${f.file}${f.ok ? '' : '  (failed)'}`);
  }

  const report = { bench: 'test-suite', files: files.length ? files : 'whole suite', settings, rounds, machine: machineFacts(loadBefore), runs };
  const outDir = path.join(ROOT, 'bench/results');
  mkdirSync(outDir, { recursive: true });
  const out = path.join(outDir, `test-suite-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\n${JSON.stringify({ machine: report.machine, summary: runs.map(({ files: _files, ...rest }) => rest) })}`);
  console.log(`results: ${path.relative(ROOT, out)}`);
}

main();
