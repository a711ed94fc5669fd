/**
 * The shell scripts that run under `set -o pipefail` (the image build and boot tests, .ci/run) must not
 * pipe into a reader that stops early (head, grep -q / -m, sed's q, awk's exit): once the reader has gone,
 * a writer still writing gets SIGPIPE, the pipeline fails with 141 and `set -e` ends the script although
 * nothing was wrong. Whether it happens depends on how much is written and on the pipe's buffer, so it
 * passes on one machine and fails on another. Reading a file or a here-string instead is safe.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';

const IMAGE_DIR = import.meta.dirname;
const ROOT = path.dirname(IMAGE_DIR);

/** The scripts that set pipefail, and lib/'s, which only they source. */
function pipefailScripts(): string[] {
  const shellsIn = (dir: string) =>
    readdirSync(dir)
      .filter((name) => name.endsWith('.sh'))
      .map((name) => path.join(dir, name));
  const setting = [...shellsIn(IMAGE_DIR), path.join(ROOT, '.ci/run')].filter((file) =>
    /set -[a-z]*o pipefail/.test(readFileSync(file, 'utf8')),
  );
  return [...setting, ...shellsIn(path.join(IMAGE_DIR, 'lib'))];
}

// A reader on the right of a pipe that may exit before its input ends.
const EARLY_READER = /^\s*(head\b|grep\s+(-[A-Za-z]*[qm]|--max-count|--quiet)|sed\s.*\bq'|awk\s.*\bexit\b)/;

/** Lines (1-based) with an early reader after a `|`, outside here-documents (scripts for elsewhere). */
function earlyReaders(source: string): number[] {
  const found: number[] = [];
  let heredocEnd: string | null = null;
  source.split('\n').forEach((line, index) => {
    if (heredocEnd !== null) {
      if (line.trim() === heredocEnd) heredocEnd = null;
      return;
    }
    if (/^\s*#/.test(line)) return;
    const code = line.replace(/\s#.*$/, '');
    const stages = code.split(/(?<!\|)\|(?!\|)/).slice(1);
    if (stages.some((stage) => EARLY_READER.test(stage))) found.push(index + 1);
    const opened = /<<-?\s*['"]?([A-Za-z_]+)['"]?/.exec(code);
    if (opened && !code.includes('<<<')) heredocEnd = opened[1] ?? null;
  });
  return found;
}

t.test('the finder flags an early reader on a pipe and leaves safe forms alone', async (t) => {
  t.same(earlyReaders("x=$(sed -n p /proc/cpuinfo | head -n 1)\n"), [1]);
  t.same(earlyReaders('vm_console | grep -Eq "$1" && return 0\n'), [1]);
  t.same(earlyReaders("printf '%s\\n' \"$r\" | awk '$1 == u { print; exit }' | node\n"), [1]);
  t.same(earlyReaders("grep -m1 '^Startup' <<<\"$1\" | node -e x\n"), []);
  t.same(earlyReaders('vm_console | grep -c marker >/dev/null || fail x\n'), []);
  t.same(earlyReaders('cat >f <<\'SH\'\nblame | head -n 25\nSH\n'), [], 'a here-document holds a script for elsewhere');
  t.same(earlyReaders('a || head -n 1 file\n'), [], '|| is not a pipe');
});

t.test('no pipefail script pipes into a reader that may stop early', async (t) => {
  const scripts = pipefailScripts();
  t.ok(scripts.some((file) => file.endsWith('boot-test.sh')), 'the boot test is among the scripts checked');
  t.ok(scripts.some((file) => file.endsWith('boot-vm.sh')), 'and the VM helpers it sources');
  for (const file of scripts) {
    t.same(earlyReaders(readFileSync(file, 'utf8')), [], path.relative(ROOT, file));
  }
});

t.test('the boot report parser reads a report longer than a pipe buffer under pipefail', async (t) => {
  const script = `set -euo pipefail
fail() { echo "$*" >&2; exit 1; }
source "$1"
report="Startup finished in 8.402s (kernel) + 30.794s (userspace) = 39.196s
$(for i in $(seq 1 4000); do echo "[    2.369704] a dmesg line of the boot report, number $i"; done)"
total=$(vm_startup_seconds "$report" total)
userspace=$(vm_startup_seconds "$report" userspace)
echo "total=$total userspace=$userspace"`;
  const run = spawnSync('bash', ['-c', script, 'report', path.join(IMAGE_DIR, 'lib/boot-vm.sh')], { encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  t.equal(run.stdout.trim(), 'total=39.2 userspace=30.8');
});
