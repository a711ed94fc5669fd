/**
 * A runtime (createApp + gateway) whose agent never answers: prints `PORT <line-chat port>` when ready and
 * `HANDLING` once a message has been persisted and handed to the agent, so the test can kill -9 it
 * between accept and reply. argv[2]: the state dir.
 */
import { startAppWithGateway } from '../test-helpers.js';

const stateDir = process.argv[2];
if (!stateDir) throw new Error('usage: crash-gateway.ts <state dir>');
const env = await startAppWithGateway({
  stateDir,
  channels: { line_chat: { enabled: true, port: 0 }, allowlist: ['line-chat:bob'] },
  agent: () => () => {
    process.stdout.write('HANDLING\n');
    return new Promise(() => {}); // never answers: the process dies first
  },
});
process.stdout.write(`PORT ${env.gateway.channel<import('../line-chat.js').LineChatChannel>('line-chat')?.port}\n`);
