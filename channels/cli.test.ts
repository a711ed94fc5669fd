/**
 * `clawbox channels pairings | approve` against a real composed runtime (appliance mode, so the API needs
 * the token) with the line-chat channel: a stranger gets a code, the CLI lists and approves it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { freePort } from '../test/free-port.js';
import { loadConfig } from '../app/config.js';
import { runChannelsCommand } from './cli.js';
import type { LineChatChannel } from './line-chat.js';
import { lineClient, startAppWithGateway } from './test-helpers.js';

const TOKEN = 't'.repeat(32);

async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runChannelsCommand(args, loadConfig, { stdout: (s) => stdout.push(s), stderr: (s) => stderr.push(s), env });
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}

t.test('pairings are listed and approved from the command line', async (t) => {
  const env = await startAppWithGateway({ mode: 'appliance', config: { http: { token: TOKEN }, broker: { anonymous: 'never' } } });
  t.teardown(() => env.stop());
  const url = `http://127.0.0.1:${env.app.http.port}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-channels-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The config a `clawbox start` on this box would read: its address and token are all the CLI needs.
  const config = path.join(dir, 'config.yaml');
  writeFileSync(config, `mode: appliance\nhttp:\n  port: ${env.app.http.port}\n  token: ${TOKEN}\nbroker:\n  anonymous: never\n`);

  t.match(await cli(['pairings', '--config', config]), { code: 0, stdout: 'no senders are waiting for approval\n' });

  const port = env.gateway.channel<LineChatChannel>('line-chat')?.port ?? 0;
  const bob = await lineClient(port);
  t.teardown(() => bob.close());
  bob.say('/nick bob');
  await bob.next();
  bob.say('turn on the lamp');
  const code = /Pairing code: ([A-Z0-9]{6})/.exec(await bob.next())?.[1];
  t.ok(code, 'bob was given a code');

  const listed = await cli(['pairings', '--config', config]);
  t.equal(listed.code, 0);
  t.match(listed.stdout, new RegExp(`^${code}  line-chat:bob  since \\d{4}-`));
  const json = await cli(['pairings', '--url', url, '--json'], { CLAWBOX_TOKEN: TOKEN });
  t.match(JSON.parse(json.stdout), [{ code, sender: { channel: 'line-chat', sender_id: 'bob' } }], '--url with $CLAWBOX_TOKEN');

  const wrongToken = await cli(['pairings', '--url', url, '--token', 'x'.repeat(32)]);
  t.equal(wrongToken.code, 1);
  t.match(wrongToken.stderr, /UNAUTHORIZED: .*--token/);
  const unknown = await cli(['approve', 'NOPE99', '--config', config]);
  t.match(unknown, { code: 1, stderr: /NOT_FOUND: no pending pairing with code "NOPE99"/ });

  t.match(await cli(['approve', code!.toLowerCase(), '--config', config]), { code: 0, stdout: 'approved line-chat:bob\n' });
  bob.say('turn on the lamp');
  t.notOk((await bob.next()).startsWith('*'), 'bob is answered now');
  t.match(await cli(['pairings', '--config', config]), { stdout: 'no senders are waiting for approval\n' });
});

t.test('clear errors without a runtime or with bad arguments', async (t) => {
  const url = `http://127.0.0.1:${await freePort()}`;
  const down = await cli(['pairings', '--url', url, '--token', TOKEN]);
  t.match(down, { code: 69, stderr: /cannot reach the clawbox runtime at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\); is it running\?/ });
  t.match(await cli(['approve', '--url', url, '--token', TOKEN]), { code: 64, stderr: /needs the pairing code/ });
  t.match(await cli(['frobnicate', '--url', url, '--token', TOKEN]), { code: 64, stderr: /unknown channels command/ });
  t.match(await cli(['pairings', '--bogus']), { code: 64, stderr: /USAGE: .*bogus/ });
  t.match(await cli(['--help']), { code: 0, stdout: /clawbox channels approve <code>/ });
});
