/**
 * No message lost: a message accepted by a real runtime process (persisted, handed to the agent) whose
 * process is then killed with SIGKILL before it replies is answered by the next runtime on the same
 * state directory. The crashing runtime is a child process (test-fixtures/crash-gateway.ts: createApp +
 * gateway, an agent that never answers); the restarted one runs here with the real agent.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { lineClient, startAppWithGateway } from './test-helpers.js';

const fixture = fileURLToPath(new URL('./test-fixtures/crash-gateway.ts', import.meta.url));

function waitForLine(child: ChildProcess, match: RegExp, timeoutMs = 20000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`child never printed ${match}; got: ${seen}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      const found = match.exec(seen);
      if (found) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve(found);
      }
    };
    child.stdout?.on('data', onData);
  });
}

t.test('a message accepted before a kill -9 is answered after the restart', async (t) => {
  const scratch = mkdtempSync(path.join(tmpdir(), 'clawbox-chat-crash-'));
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
  const stateDir = path.join(scratch, 'state');

  const child = spawn(process.execPath, ['--import', 'tsx', fixture, stateDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const port = Number((await waitForLine(child, /PORT (\d+)\n/))[1]);
  const bob = await lineClient(port);
  t.teardown(() => bob.close());
  bob.say('/nick bob');
  t.equal(await bob.next(), '* you are bob');
  const handling = waitForLine(child, /HANDLING\n/);
  bob.say('turn on the lamp');
  await handling;
  child.kill('SIGKILL');
  t.equal(await exited, 'SIGKILL', 'the runtime died by SIGKILL before replying');
  bob.close();

  const inbox = JSON.parse(readFileSync(path.join(stateDir, 'chat-inbox.json'), 'utf8')) as { pending: { text: string; session: string }[] };
  t.same(
    inbox.pending.map((p) => [p.session, p.text]),
    [['line-chat:bob', 'turn on the lamp']],
    'the accepted message was on disk before the crash',
  );

  const env = await startAppWithGateway({
    stateDir,
    channels: { line_chat: { enabled: true, port: 0 }, allowlist: ['line-chat:bob'] },
  });
  t.teardown(() => env.stop());
  const lamp = () => (env.app.devices.get('lamp')?.state as { state?: string } | undefined)?.state;
  const port2 = env.gateway.channel<import('./line-chat.js').LineChatChannel>('line-chat')?.port ?? 0;
  const again = await lineClient(port2);
  t.teardown(() => again.close());
  again.say('/nick bob');
  t.equal(await again.next(), '* you are bob');
  const reply = await again.next(10000);
  t.match(reply, /lamp/i, `the replayed message is answered on its channel: ${reply}`);
  t.equal(lamp(), 'ON', 'and acted on');
  t.equal(env.gateway.figures().pending_messages, 0, 'and leaves the inbox');
});
