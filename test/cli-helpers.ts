/** Runs the CLI from the TypeScript sources in a child process, as a user would run `clawbox`. */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '..');
const ENTRY = path.join(ROOT, 'app', 'main.ts');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Environment for a child runtime: no inherited CLAWBOX_* settings, no systemd variables, no NODE_OPTIONS (test/unhook-children.ts keeps tap's hooks out of children). */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('CLAWBOX_') && !['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'STATE_DIRECTORY', 'NODE_OPTIONS'].includes(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

export function spawnCli(args: string[], options: { env?: Record<string, string>; cwd?: string; input?: string } = {}): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
    cwd: options.cwd ?? ROOT,
    env: cleanEnv(options.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin!.end(options.input ?? '');
  return child;
}

export function runCli(args: string[], options: { env?: Record<string, string>; cwd?: string; input?: string } = {}): Promise<CliResult> {
  const child = spawnCli(args, options);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export interface PtyResult {
  /** Everything the terminal showed: prompts, echo (if any) and output, with \r\n line ends. */
  output: string;
  code: number | null;
  signal: number | null;
  /** Whether the terminal echoed input again once the command had ended (restored from raw mode). */
  echoAfter: boolean | null;
  timedOut: boolean;
}

/**
 * Drives the CLI on a pseudo-terminal through python3's pty module (no native Node module needed): for
 * each step, waits until `expect` has appeared in the output, then types `send`. Then waits for the exit.
 */
const PTY_DRIVER = `
import json, os, pty, select, sys, termios, time
spec = json.loads(sys.stdin.read())
pid, fd = pty.fork()
if pid == 0:
    os.chdir(spec['cwd'])
    os.execve(spec['argv'][0], spec['argv'], spec['env'])
out = b''
deadline = time.monotonic() + spec['timeout']
eof = False
def pump():
    global out, eof
    ready, _, _ = select.select([fd], [], [], max(0, deadline - time.monotonic()))
    if not ready:
        return
    try:
        data = os.read(fd, 4096)
    except OSError:
        data = b''
    if not data:
        eof = True
    out += data
pos = 0
timed_out = False
for step in spec['steps']:
    want = step['expect'].encode()
    while out.find(want, pos) < 0 and not eof and time.monotonic() < deadline:
        pump()
    found = out.find(want, pos)
    if found < 0:
        timed_out = not eof
        break
    pos = found + len(want)
    os.write(fd, step['send'].encode())
while not eof and time.monotonic() < deadline:
    pump()
echo_after = None
try:
    echo_after = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
except termios.error:
    pass
if not eof:
    timed_out = True
    os.kill(pid, 9)
_, status = os.waitpid(pid, 0)
print(json.dumps({
    'output': out.decode('utf-8', 'replace'),
    'code': os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
    'signal': os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
    'echoAfter': echo_after,
    'timedOut': timed_out,
}))
`;

export function runCliInPty(
  args: string[],
  steps: Array<{ expect: string; send: string }>,
  options: { env?: Record<string, string>; timeoutSeconds?: number } = {},
): Promise<PtyResult> {
  const spec = {
    argv: [process.execPath, '--import', 'tsx', ENTRY, ...args],
    env: cleanEnv(options.env),
    cwd: ROOT,
    steps,
    timeout: options.timeoutSeconds ?? 60,
  };
  const child = spawn('python3', ['-c', PTY_DRIVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.end(JSON.stringify(spec));
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`pty driver exited ${code}: ${stdout}`));
      else resolve(JSON.parse(stdout) as PtyResult);
    });
  });
}

/** Why the pseudo-terminal tests cannot run here, or false when they can. */
export function ptySkipReason(): string | false {
  const probe = spawnSync('python3', ['-c', 'import pty, termios'], { stdio: 'ignore' });
  return probe.status === 0 ? false : 'python3 with the pty module is needed to drive a terminal';
}

/**
 * Runs the CLI's execute() in this process with stdout and stderr captured. For long tables of error
 * cases, where spawning costs seconds each on a loaded machine; the spawned tests cover the entry and
 * process.exit. Reads process.env, so the caller's CLAWBOX_* settings apply.
 */
export async function runInProcess(args: string[]): Promise<CliResult> {
  const { execute } = await import('../app/cli.js');
  let stdout = '';
  let stderr = '';
  const realOut = process.stdout.write;
  const realErr = process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await execute(args);
    return { code, signal: null, stdout, stderr };
  } finally {
    process.stdout.write = realOut;
    process.stderr.write = realErr;
  }
}
