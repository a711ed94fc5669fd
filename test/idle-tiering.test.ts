/**
 * The installed command's `--invocation-count-for-turbofan` (bin/clawbox.js's `#!` line) keeps a start with
 * embedded defaults, and the idle box after it, out of V8's optimising compiler: no function is marked for
 * TurboFan until the first memory-settling collection after ready (a positive marker that the idle window
 * passed). A control start with V8's default threshold shows that the same start does mark functions, so
 * the check proves the flag's effect; when a later Node stops doing that, the control says the flag is no
 * longer needed. The runtime runs from dist/ (what the installed command runs), without tap's hooks
 * (test/unhook-children.ts: they turn source maps on, whose parsing would be traced too).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { installedCommandLine } from '../bench/runtime-process.js';
import { ROOT, cleanEnv } from './cli-helpers.js';

const TIERING_FLAG = /^--invocation-count-for-turbofan=/;

/** Starts the runtime with these node flags and --trace-opt; resolves with the functions marked for TurboFan up to the first settle. */
function markedUntilSettled(flags: string[], env: Record<string, string>): Promise<string[]> {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'clawbox-tiering-'));
  const child = spawn(process.execPath, [...flags, '--trace-opt', path.join(ROOT, 'bin', 'clawbox.js'), 'start'], {
    cwd: ROOT,
    env: {
      ...cleanEnv(),
      ...env,
      CLAWBOX_STATE_DIR: stateDir,
      CLAWBOX_BROKER_PORT: '0',
      CLAWBOX_HTTP_PORT: '0',
      CLAWBOX_LOG_LEVEL: 'debug',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    const marked: string[] = [];
    let output = '';
    const timer = setTimeout(() => finish(new Error(`no 'memory settled' line within 120 s:\n${output.slice(-2000)}`)), 120_000);
    const finish = (error?: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      if (error) reject(error);
      else resolve(marked);
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      output += chunk;
      const lines = output.split('\n');
      output = lines.pop() ?? '';
      for (const line of lines) {
        const mark = /^\[marking .*<JSFunction ([^ >]*).* for optimization to TURBOFAN/.exec(line);
        if (mark) marked.push(mark[1] || "(anonymous)");
        if (line.includes('"msg":"memory settled"')) return finish();
      }
    });
    child.stderr.resume();
    child.once('exit', (code, signal) => finish(new Error(`the runtime exited (${code ?? signal}) before settling`)));
  });
}

t.test('an idle runtime started as installed never reaches TurboFan', { skip: existsSync(path.join(ROOT, 'dist', 'app', 'main.js')) ? false : 'dist/ is not built' }, async (t) => {
  const { env, flags } = installedCommandLine();
  t.ok(flags.some((flag) => TIERING_FLAG.test(flag)), 'the #! line sets the TurboFan threshold');
  const marked = await markedUntilSettled(flags, env);
  t.same(marked, [], 'no function marked for TurboFan from the start to the first settle');

  const control = await markedUntilSettled(
    flags.filter((flag) => !TIERING_FLAG.test(flag)),
    env,
  );
  t.ok(control.length > 0, `with V8's default threshold the same start marks functions (${control.length}: ${control.slice(0, 5).join(', ')}); if this fails, Node no longer needs the flag`);
});
